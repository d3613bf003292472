"""The demo's grading exports: the MaestroQA emulator in a thread of the demo, a few thousand
grades over the demo's days, loaded by the project's `async_export` source (`qa`) in a run of
its own, and the wide grading mart they feed.

The source exports whole days, due an hour (its `delay`) after each ends; the demo's clock
follows the last Amplitude hour, so a short demo would have no complete day yet. The grading run
takes its own clock: the end of the demo's last day plus the delay. A second demo asks for
nothing: the source's cursor is past those days.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from datetime import time as clock_time

from rich.console import Console

from anchorflow.config import Project
from anchorflow.config.exports import Exports
from anchorflow.dev.emulators.maestroqa import MaestroQAEmulator
from anchorflow.dev.synth.maestroqa import GradingSpec
from anchorflow.run import Pipeline
from anchorflow.sources.async_export.config import AsyncExportConfig
from anchorflow.warehouse import Warehouse

SOURCE = "qa"
TOKEN = "demo-maestroqa-token"
AGENTS = 40
GRADED_PER_DAY = 1_000
URL_ENV, TOKEN_ENV = "MAESTROQA_BASE_URL", "MAESTROQA_API_TOKEN"


def grading_config(project: Project) -> AsyncExportConfig | None:
    config = project.sources.get(SOURCE)
    return config if isinstance(config, AsyncExportConfig) else None


@contextmanager
def grading_emulator(console: Console, project: Project) -> Iterator[MaestroQAEmulator | None]:
    """The emulator on a free loopback port while the block runs, its URL in the variable the
    project file reads (restored after); None when the project has no `qa` source."""
    if grading_config(project) is None:
        yield None
        return
    os.environ.setdefault(TOKEN_ENV, TOKEN)
    spec = GradingSpec(seed=42, agents=AGENTS, graded_per_day=GRADED_PER_DAY)
    previous = os.environ.get(URL_ENV)
    with MaestroQAEmulator(os.environ[TOKEN_ENV], spec) as emulator:
        os.environ[URL_ENV] = emulator.base_url
        console.print(
            f"MaestroQA emulator: {emulator.base_url} ({AGENTS} agents, "
            f"{GRADED_PER_DAY:,} grades a day)"
        )
        try:
            yield emulator
        finally:
            if previous is None:
                os.environ.pop(URL_ENV, None)
            else:
                os.environ[URL_ENV] = previous


def grading_clock(config: AsyncExportConfig, end: datetime) -> datetime:
    """When every day the demo's hours touch is due: the midnight after the last one, plus the
    source's delay."""
    last = end - timedelta(microseconds=1)
    return datetime.combine(last.date() + timedelta(days=1), clock_time()) + config.delay


def load_grading(console: Console, project: Project, end: datetime) -> None:
    """Load the due grading exports (groups, then total scores), staged, in a run of its own."""
    config = grading_config(project)
    if config is None:
        return
    alone = project.model_copy(update={"exports": Exports()})  # no marts to export yet
    clock, started = grading_clock(config, end), time.perf_counter()
    with Pipeline(alone, now=clock) as pipeline, console.status("exporting MaestroQA's grades"):
        summary = pipeline.run([SOURCE], marts=False)
    exports = len(summary.windows)
    console.print(
        f"grading: {exports} exports requested, polled, downloaded and staged in "
        f"{time.perf_counter() - started:.1f}s"
        if exports
        else "grading: every day's exports already loaded earlier"
    )


def grading_line(warehouse: Warehouse, project: Project) -> str | None:
    """What the grading exports put in raw and staging, for the demo's summary."""
    if grading_config(project) is None:
        return None
    counts = [
        warehouse.scalar(f"SELECT count(*) FROM {name}")
        for name in (f"raw.{SOURCE}_groups", f"raw.{SOURCE}_total_scores", "staging.grades",
                     "staging.agent_groups", "marts.grading")
    ]  # fmt: skip
    return (
        f"grading (MaestroQA exports → raw → staging → marts.grading): raw.qa_groups "
        f"{counts[0]:,} and raw.qa_total_scores {counts[1]:,} records, {counts[2]:,} grades and "
        f"{counts[3]:,} agent ids staged, {counts[4]:,} rows in marts.grading"
    )


# A few rows of the wide mart: one graded ticket each, with its agent's team and country.
GRADING_SAMPLE = (
    "SELECT gradable_id, agent_id, team, country, graded_day, grader, rubric_score, "
    "max_rubric_score, score_pct FROM marts.grading ORDER BY gradable_id LIMIT 5"
)
