"""The demo's backend stream: synthetic backend events pushed to a real redis-server, drained by
the real readers (`ReaderPool`) into chunks, loaded and typed by the demo project's models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console

from anchorflow.config import load_project
from anchorflow.config.exports import Exports
from anchorflow.dev.demo_backend import feed_backend
from anchorflow.dev.synth.backend import backend_events
from anchorflow.run import Pipeline
from anchorflow.warehouse import connect
from tests.builders import ENV
from tests.conftest import START, available_at
from tests.test_cli import ANCHORFLOW

DEMO = Path(__file__).resolve().parents[1] / "examples" / "product_analytics"


@pytest.mark.unit
def test_backend_events_are_deterministic_json_of_three_models_for_the_demo_users() -> None:
    first = backend_events(10_000, START, 24, seed=7)
    assert first == backend_events(10_000, START, 24, seed=7)
    assert first != backend_events(10_000, START, 24, seed=8)
    assert (len(first.events), len(first.payments), first.count) == (8_000, 2_000, 10_000)
    records = [json.loads(e) for e in first.events + first.payments]
    assert Counter(r["type"] for r in records) == {
        "subscription_change": 5_000, "support_ticket": 3_000, "payment": 2_000,
    }  # fmt: skip
    assert {json.loads(p)["type"] for p in first.payments} == {"payment"}
    assert len({r["id"] for r in records}) == 10_000
    assert all(0 <= int(r["user_id"].removeprefix("user_")) < 60_000 for r in records)
    sizes = [len(e) for e in first.events + first.payments]
    assert 200 < sum(sizes) / len(sizes) < 350
    times = sorted(r["occurred_at"] for r in records)
    assert (
        f"{START:%Y-%m-%d %H}" <= times[0]
        and times[-1] < f"{START + timedelta(hours=24):%Y-%m-%d %H}"
    )
    changes = [r for r in records if r["type"] == "subscription_change"]
    assert all(r["from_plan"] != r["to_plan"] for r in changes)


@pytest.mark.integration
def test_the_demo_feeds_redis_drains_it_with_readers_and_types_each_event_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "demo"
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns("*.duckdb*", ".env", ".data",
                                                            ".anchorflow", "exports"))  # fmt: skip
    env = {**os.environ, **ENV}
    for name, value in ENV.items():  # the readers' processes read the project file with them
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    project = load_project(root, env=env)
    console = Console(file=open(os.devnull, "w"), width=200, force_terminal=True)  # noqa: SIM115
    drained = feed_backend(console, root / "anchorflow.yml", project, START, 24, 42, count=20_000)
    assert drained is not None
    assert drained.pushed == {"events": 16_000, "payments": 4_000}
    assert drained.records == 20_000 and drained.readers == 4 and drained.chunks >= 2
    assert "REDIS_URL" not in os.environ  # set for the readers only; Redis is stopped
    project = project.model_copy(update={"exports": Exports()})  # no marts without amplitude
    with Pipeline(project, now=available_at(24)) as pipeline:
        pipeline.run(["backend"], marts=False)
    with connect(project, read_only=True) as warehouse:
        counts = {name: warehouse.scalar(f"SELECT count(*) FROM staging.{name}")
                  for name in ("payments", "subscription_changes", "support_tickets")}  # fmt: skip
        raw = warehouse.scalar("SELECT count(*) FROM raw.backend_events")
        amounts = warehouse.scalar("SELECT count(*) FROM staging.payments WHERE amount > 0")
    assert counts == {"payments": 4_000, "subscription_changes": 10_000, "support_tickets": 6_000}
    assert raw == 16_000 and amounts == 4_000
    # A second demo pushes nothing: the backend's events are in raw.
    assert feed_backend(console, root / "anchorflow.yml", project, START, 24, 42) is None


@pytest.mark.e2e
@pytest.mark.slow
def test_make_demo_on_two_hours_prints_the_backend_lines(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns("*.duckdb*", ".env", ".data",
                                                            ".anchorflow", "exports"))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMPLITUDE_", "REDIS_"))}
    done = subprocess.run(
        [str(ANCHORFLOW), "demo", "--project", str(root), "--hours", "2",
         "--events-per-hour", "2000"],
        capture_output=True, text=True, env={**env, "COLUMNS": "200"}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert (
        "backend: 300,000 events pushed to a local redis-server (list bus:events 240,000, "
        "stream bus:payments 60,000)" in out
    )
    assert "drained by 4 readers into" in out and "(300,000 records)" in out
    assert "raw.backend_events 240,000, raw.backend_payments 60,000 records" in out
    for model in ("payments", "subscription_changes", "support_tickets"):
        assert f"│ {model} " in out
    landing = root / ".anchorflow" / "landing" / "backend"
    assert not [*landing.glob("*/*.ndjson*"), *landing.glob("*/*.arrow*")]  # loaded, deleted
    # The marketing traffic: loaded by the files sources, the rules run after the marts, the
    # report and the evaluation printed, and a re-run of the rules changed nothing.
    assert "marketing traffic: " in out and "fraud: 13 rule(s) ran" in out
    assert "anchorflow fraud report --top 8" in out
    assert "re-run of every rule over its last window: fraud.* unchanged" in out
