"""The steps' one shape: each says what is pending from the journal, runs it, and removes a load;
after a step runs, nothing is pending for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anchorflow.anchor.step import AnchorStep
from anchorflow.journal import utcnow
from anchorflow.marts import MartsStep
from anchorflow.stage.step import StageStep
from tests.anchor.harness import Harness
from tests.conftest import needs_staging
from tests.stage.helpers import LATER, commit, write_project

pytestmark = pytest.mark.integration
T = "2024-03-01 00:00:00"


def test_the_stage_step_takes_what_the_journal_says_is_untyped_and_can_give_it_back(
    engine: str, tmp_path: Path
) -> None:
    needs_staging()
    columns = {"event_uuid": {"path": "uuid", "type": "UUID"}}
    slow = {"source": "amplitude", "unique_key": "event_uuid",
            "thresholds": {"min_rows": 1000}, "columns": columns}  # fmt: skip
    project = write_project(tmp_path, {"slow": slow})
    commit(project, 0, [{"uuid": f"00000000-0000-0000-0000-00000000000{i}"} for i in range(3)])
    commit(project, 1, [{"uuid": "00000000-0000-0000-0000-000000000009"}])

    with _warehouse(project) as wh:
        step = StageStep(project, lambda: LATER, force=True)
        assert {m: [p.load_id for p in loads] for m, loads in step.pending(wh).items()} == {
            "slow": [1, 2]
        }
        (run,) = step.run(wh)
        assert (run.model, run.loads, run.rows) == ("slow", 2, 4)
        assert step.pending(wh) == {}
        assert step.remove(wh, [1]) == {"staging.slow": 3}
        assert [p.load_id for p in step.pending(wh)["slow"]] == [1]


def test_the_anchor_step_takes_what_staging_typed_and_the_marts_step_rebuilds_all(
    engine: str, tmp_path: Path
) -> None:
    needs_staging()
    h = Harness(tmp_path)
    try:
        h.deliver([{"user_id": "u1", "country": "DE", "t": T}])
        step = AnchorStep(h.project, h.plan, utcnow)
        pending = step.pending(h.wh)
        assert pending["User"] == [1] and pending["User_country"] == [1]
        result = step.run(h.wh)
        assert result is not None and result.inserted > 0
        assert step.pending(h.wh) == {}
        removed = step.remove(h.wh, [1], reattribute=False)
        assert removed["anchor.User_country"] == 1
        assert step.pending(h.wh)["User_country"] == [1]
        marts = MartsStep(h.project)
        assert marts.pending(h.wh) == [] and marts.run(h.wh) == []  # the harness has no marts
    finally:
        h.close()


def _warehouse(project: Any) -> Any:
    from tests.builders import open_warehouse

    return open_warehouse(project)
