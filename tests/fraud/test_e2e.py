"""The whole catalogue on labelled traffic that reaches the warehouse as any user's data would:
daily NDJSON files → the example project's files sources → raw → staging → `run` (which runs
the rules after the marts) → `fraud evaluate`. On PostgreSQL and Spark, the same flags as on
DuckDB."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from anchorflow.config import Project, load_project
from anchorflow.config.project import WarehouseSettings
from anchorflow.dev.demo import on_postgres
from anchorflow.dev.synth.marketing import MarketingSpec, write_marketing
from anchorflow.fraud.check import FraudEvaluation
from anchorflow.run import Pipeline
from tests import engines

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraud" / "anchorflow.yml"
SPEC = MarketingSpec(seed=5, start=datetime(2024, 3, 1, tzinfo=UTC), days=2, clicks_per_day=4000)


def loaded(root: Path, engine: str) -> Project:
    root.mkdir(parents=True)
    shutil.copy(EXAMPLE, root / "anchorflow.yml")
    write_marketing(root / ".data" / "marketing", root / ".data" / "truth", SPEC)
    project = load_project(root / "anchorflow.yml")
    if engine == "postgres":
        project = on_postgres(project, engines.database_for(root))
    if engine == "spark":
        settings = WarehouseSettings(**engines.warehouse_settings(root))
        project = project.model_copy(update={"warehouse": settings})
    return project


def run_and_evaluate(project: Project) -> tuple[FraudEvaluation, list[tuple[str, str]]]:
    with Pipeline(project) as pipeline:
        summary = pipeline.run()
        assert summary.fraud is not None and not summary.fraud.skipped
        result = pipeline.fraud_evaluate(project.root / ".data" / "truth", rerun=True)
        flags = pipeline.warehouse.query(
            "SELECT user_id, rule FROM fraud.fraud_user ORDER BY user_id, rule"
        )
    return result, [(str(u), str(r)) for u, r in flags]


def test_the_catalogue_catches_the_injected_fraud_and_spares_the_look_alikes(
    engine: str, tmp_path: Path
) -> None:
    result, flags = run_and_evaluate(loaded(tmp_path / engine, engine))
    overall = result.evaluation.overall.user
    assert result.unchanged and result.reran == 13  # a re-run of the same windows adds nothing
    assert overall.precision is not None and overall.precision >= 0.95
    assert overall.recall is not None and overall.recall >= 0.8
    spared = {n.group: n.flagged for n in result.evaluation.negatives if n.rule == "(any)"}
    assert spared and set(spared) >= {"cgnat", "vpn", "fast", "traveler"}
    assert all(flagged == 0 for flagged in spared.values()), spared
    caught = {c.pattern for c in result.evaluation.recall_matrix if (c.recall or 0) > 0}
    assert len(caught) == 13  # every pattern is caught, at least in part
    if engine != "duckdb":  # the same rules, translated, flag the same users
        _, on_duckdb = run_and_evaluate(loaded(tmp_path / "duckdb", "duckdb"))
        assert flags == on_duckdb


def test_forget_erases_a_flagged_user_from_fraud_too(tmp_path: Path) -> None:
    project = loaded(tmp_path / "p", "duckdb")  # user_entity: User in the example
    with Pipeline(project) as pipeline:
        pipeline.run()
        wh = pipeline.warehouse
        user = wh.scalar("SELECT min(user_id) FROM fraud.fraud_user")
        rules = wh.scalar("SELECT count(*) FROM fraud.fraud_user WHERE user_id = ?", [user])
        counts = pipeline.forget("User", [user])
        assert counts["fraud.fraud_user"] == rules and counts["fraud.fraud_event"] > 0
        assert "anchor.User" in counts and "raw.signups_registrations" in counts
        left = [
            name for (name,) in wh.query(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = 'fraud' "
                "AND column_name = 'user_id'"
            )
            if wh.scalar(f'SELECT count(*) FROM fraud."{name}" WHERE user_id = ?', [user])
        ]  # fmt: skip
        assert left == []
