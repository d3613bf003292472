"""The demo's marketing traffic and fraud: labelled clicks, registrations and events written as
daily files for the `files` sources, and what the demo prints after the rules ran (the report
of the top campaigns, the evaluation against the truth)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

from rich.console import Console

from anchorflow.config import Project
from anchorflow.console import print_table
from anchorflow.dev.synth.marketing import MarketingFiles, MarketingSpec, write_marketing
from anchorflow.errors import ConfigError
from anchorflow.fraud.evaluate import format_evaluation
from anchorflow.fraud.report import report_rows
from anchorflow.run import Pipeline

# Where the demo writes the traffic (read by the project's files sources) and the truth (read
# by no source: only `fraud evaluate` opens it).
TRAFFIC_DIR = Path(".data") / "marketing"
TRUTH_DIR = Path(".data") / "truth"


def write_traffic(
    console: Console, out: Path, truth: Path, start: str | date, days: int, clicks_per_day: int,
    seed: int,
) -> MarketingFiles:  # fmt: skip
    try:
        first = start if isinstance(start, date) else date.fromisoformat(start)
    except ValueError:
        raise ConfigError([f"--start: expected a day such as 2024-03-01, got {start!r}"]) from None
    spec = MarketingSpec(
        seed=seed, start=datetime(first.year, first.month, first.day, tzinfo=UTC), days=days,
        clicks_per_day=clicks_per_day,
    )  # fmt: skip
    started = time.perf_counter()
    with console.status(f"generating {days} days of labelled marketing traffic in {out}"):
        files = write_marketing(out, truth, spec)
    counts = ", ".join(f"{n:,} {name}" for name, n in files.counts.items())
    console.print(
        f"marketing traffic: {counts} in {out}, truth in {truth} "
        f"({time.perf_counter() - started:.1f}s)",
        highlight=False,
    )
    return files


def demo_traffic(console: Console, project: Project, start: datetime, days: int) -> None:
    """The demo project's marketing traffic, when it has the fraud section."""
    if project.fraud.configured:
        write_traffic(
            console, project.root / TRAFFIC_DIR, project.root / TRUTH_DIR, start.date(),
            days, 6_000, 42,
        )  # fmt: skip


def show_fraud(console: Console, pipeline: Pipeline, project: Project) -> None:
    """The report's top campaigns, and the evaluation against the truth."""
    if not project.fraud.configured:
        return
    columns, rows = report_rows(pipeline.warehouse, None, None, top=8)
    if not rows:
        return
    keep = ["country", "campaign", "sub_campaign", "clicks", "registrations",
            "fraud_registrations", "fraud_events", "fraud_rate"]  # fmt: skip
    picked = [columns.index(c) for c in keep]
    shown = [[row[i] if columns[i] != "fraud_rate" or row[i] is None else f"{row[i]:.1%}"
              for i in picked] for row in rows]  # fmt: skip
    print_table(console, "anchorflow fraud report --top 8 (the sub-campaigns with most fraud)",
                keep, shown)  # fmt: skip
    truth = project.root / TRUTH_DIR
    if (truth / "users.parquet").is_file():
        result = pipeline.fraud_evaluate(truth, rerun=True)
        console.print(f"anchorflow fraud evaluate --truth {TRUTH_DIR}:", highlight=False)
        lines = format_evaluation(result.evaluation)
        negatives = next((i for i, line in enumerate(lines) if line.startswith("false pos")), None)
        # The overall scores, and the hard negatives; the whole table per rule and the recall
        # matrix come with `anchorflow fraud evaluate`.
        summary = lines[:4] + (lines[negatives:] if negatives is not None else [])
        for line in summary:
            console.print(f"  {line}", highlight=False, markup=False)
        verdict = "unchanged" if result.unchanged else "CHANGED"
        console.print(f"  re-run of every rule over its last window: fraud.* {verdict}")
