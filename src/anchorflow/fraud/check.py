"""`fraud evaluate`: the fraud tables against the truth of labelled traffic, and a checksum of
`fraud.*` before and after running every rule again over its last window (it must not change:
a re-run of the same window adds nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anchorflow.fraud.evaluate import Evaluation, evaluate
from anchorflow.fraud.results import fraud_checksum
from anchorflow.fraud.step import FraudStep
from anchorflow.warehouse import Warehouse


@dataclass(frozen=True)
class FraudEvaluation:
    evaluation: Evaluation
    checksum_before: str
    checksum_after: str
    reran: int  # rules run again over their last window

    @property
    def unchanged(self) -> bool:
        return self.checksum_before == self.checksum_after


def evaluate_fraud(
    warehouse: Warehouse, step: FraudStep, truth: Path, rerun: bool
) -> FraudEvaluation:
    before = fraud_checksum(warehouse)
    reran = 0
    if rerun:
        windows = step.last_windows(warehouse)
        reran = len(step.run(warehouse, windows=windows).runs) if windows else 0
    after = fraud_checksum(warehouse)
    users = warehouse.query_arrow("SELECT * FROM fraud.fraud_user")
    events = warehouse.query_arrow("SELECT * FROM fraud.fraud_event")
    return FraudEvaluation(evaluate(users, events, truth), before, after, reran)
