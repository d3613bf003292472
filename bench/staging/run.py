"""One staging run per invocation: `python -m bench.staging.run PROJECT_DIR`.

Opens the project's warehouse (a fresh copy of the generated raw), times
`Pipeline.stage(force=True)` over all five models, closes it (the checkpoint is timed apart), and
prints one JSON line. The parent measures peak memory with wait4.

The steps of each batch are timed by wrapping the functions `stage.runner` calls (nothing in
anchorflow is changed): build the typed batch, insert it into staging, the transfer log, field
statistics, drift, and the commit. Their overhead is a few clock reads per batch.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from anchorflow.config import load_project
from anchorflow.run import Pipeline
from anchorflow.stage import runner

STEPS: defaultdict[str, float] = defaultdict(float)
NOW = datetime(2024, 6, 1)


def _timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            STEPS[name] += time.perf_counter() - started

    return wrapper


def instrument() -> None:
    original_typed_batch = runner.typed_batch

    @contextmanager
    def typed_batch(*args: Any, **kwargs: Any) -> Iterator[Any]:
        started = time.perf_counter()
        with original_typed_batch(*args, **kwargs) as columns:
            STEPS["typed_batch"] += time.perf_counter() - started
            yield columns
            started = time.perf_counter()
        STEPS["typed_batch"] += time.perf_counter() - started  # the DROP of the temp table

    runner.typed_batch = typed_batch  # type: ignore[assignment]
    wrapped = ["clear_partial", "next_batch_id", "stage_batch", "record_transfers",
               "record_field_stats", "detect_drift", "record_events", "pending_loads"]  # fmt: skip
    for name in wrapped:
        setattr(runner, name, _timed(name, getattr(runner, name)))
    marks: dict[str, float] = {}

    def crash_point(name: str) -> None:  # the commit runs between these two points
        if name == "stage_before_commit":
            marks["before"] = time.perf_counter()
        elif name == "stage_after_commit":
            STEPS["commit"] += time.perf_counter() - marks.pop("before")

    runner.crash_point = crash_point


def main(root: str, patch: list[str]) -> dict[str, Any]:
    instrument()
    project = load_project(root, env={})
    started = time.perf_counter()
    pipeline = Pipeline(project, now=NOW)
    opened = time.perf_counter()
    runs = pipeline.stage(force=True)
    staged_at = time.perf_counter()
    wh = pipeline.warehouse
    per_model = {
        run.model: {
            "rows": run.rows,
            "batches": run.batches,
            "loads": run.loads,
            "type_errors": run.type_errors,
            "quarantined": run.quarantined,
            "table_rows": wh.scalar(f'SELECT count(*) FROM staging."{run.model}"'),
        }
        for run in runs
    }
    checks = {
        "field_stats_rows": wh.scalar("SELECT count(*) FROM meta.field_stats"),
        "sampled_rows": wh.scalar("SELECT coalesce(sum(sampled), 0) FROM "
                                  "(SELECT DISTINCT batch_id, sampled FROM meta.field_stats)"),
        "schema_events": wh.scalar("SELECT count(*) FROM meta.schema_events"),
        "type_errors": wh.scalar("SELECT count(*) FROM meta.type_errors"),
        "quarantined": wh.scalar("SELECT count(*) FROM meta.quarantine"),
        "transfers": wh.scalar("SELECT count(*) FROM meta.transfers"),
    }  # fmt: skip
    checked = time.perf_counter()
    pipeline.close()
    closed = time.perf_counter()
    return {
        "staged": sum(m["rows"] for m in per_model.values()),
        "seconds": staged_at - opened,
        "open_seconds": opened - started,
        "close_seconds": closed - checked,
        "models": per_model,
        "checks": checks,
        "steps": dict(STEPS),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2:]), default=str))
