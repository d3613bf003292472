"""Alerts go out in one batch per run within a time budget; a failing target is tried once per
run and backed off across runs, and keeps its alerts until it answers again."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from anchorflow.alerts import Alert, AlertSender
from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from anchorflow.errors import TerminalSourceError
from anchorflow.run import Pipeline
from tests.builders import amplitude_source, build_project, open_warehouse
from tests.conftest import available_at, table_rows
from tests.hostile.upstreams import Upstream
from tests.receiver import Receiver

pytestmark = [pytest.mark.hostile, pytest.mark.integration]
T0 = datetime(2030, 1, 1, 12)


def failing_project(root: Path, receiver: Receiver, base_url: str) -> Project:
    """A project whose every run fails (the API refuses its key) and alerts `receiver`."""
    source = amplitude_source(base_url, api_key="wrong-key-for-this-test")
    return build_project(root, sources={"amplitude": source},
                         alerts=[{"kind": "webhook", "url": receiver.url}])  # fmt: skip


def run_at(project: Project, clock: datetime) -> None:
    with (
        pytest.raises(TerminalSourceError),
        Pipeline(project, now=available_at(2), clock=lambda: clock) as pipeline,
    ):
        pipeline.run()


def test_a_failing_target_is_tried_once_per_run_backed_off_and_gets_its_alerts_back(
    tmp_path: Path, emulator: AmplitudeEmulator
) -> None:
    receiver = Receiver()
    try:
        receiver.down = True
        project = failing_project(tmp_path, receiver, emulator.base_url)
        path = project.warehouse_path

        run_at(project, T0)  # a healthy target: its post is retried at once, then it backs off
        assert len(receiver.bodies) == 3
        assert table_rows(path, "SELECT failures, next_attempt_at FROM meta.alert_targets") == [
            (1, T0 + timedelta(minutes=1))
        ]

        run_at(project, T0 + timedelta(seconds=30))  # within the backoff: not tried at all
        assert len(receiver.bodies) == 3

        run_at(project, T0 + timedelta(minutes=2))  # past it: one post, and a longer backoff
        assert len(receiver.bodies) == 4
        assert table_rows(path, "SELECT failures, next_attempt_at FROM meta.alert_targets") == [
            (2, T0 + timedelta(minutes=4))
        ]
        assert table_rows(path, "SELECT count(*) FROM meta.alert_outbox") == [(3,)]
        with Pipeline(project, clock=lambda: T0) as pipeline:
            (state,) = pipeline.status().alerts
        assert (state.target, state.pending, state.failures) == ("webhook#0", 3, 2)

        receiver.down = False
        run_at(project, T0 + timedelta(minutes=10))  # recovered: every kept alert, in order
        assert [b["kind"] for b in receiver.delivered] == ["run_failed"] * 4
        assert len(receiver.bodies) == 4 + 4
        assert table_rows(path, "SELECT count(*) FROM meta.alert_outbox") == [(0,)]
        assert table_rows(path, "SELECT failures FROM meta.alert_targets") == [(0,)]
        runs = table_rows(path, "SELECT count(*) FROM meta.alerts WHERE status = 'failed'")
        assert runs == [(2,)]  # one failed delivery per run that tried, not one per try
    finally:
        receiver.close()


def test_a_hanging_target_costs_one_deadline_per_run_not_one_per_alert(tmp_path: Path) -> None:
    hanging, receiver = Upstream("stall"), Receiver()
    try:
        targets = [{"kind": "slack", "url": f"{hanging.base_url}/hook", "timeout": "1s"},
                   {"kind": "webhook", "url": receiver.url}]  # fmt: skip
        project = build_project(tmp_path, alerts=targets)
        with open_warehouse(project) as warehouse:
            sender = AlertSender(project, warehouse, sleep=lambda seconds: None)
            for n in range(9):
                sender.queue(Alert("new_field", f"field {n}"))
            started = time.monotonic()
            sender.deliver()
            elapsed = time.monotonic() - started
            sender.deliver()  # the next run, at once: the hanging target is backed off
        assert len(hanging.arrived) == 3  # one alert's three tries, then it is backed off
        assert elapsed < 15, elapsed  # before: 31.5 s per alert, 283 s for nine
        assert [b["subject"] for b in receiver.delivered] == [f"field {n}" for n in range(9)]
        kept = table_rows(project.warehouse_path,
                          "SELECT target, count(*) FROM meta.alert_outbox GROUP BY 1")  # fmt: skip
        assert kept == [("slack#0", 9)]
    finally:
        hanging.close()
        receiver.close()


def test_the_batch_ends_when_its_budget_is_spent(tmp_path: Path) -> None:
    hanging = [Upstream("stall"), Upstream("stall")]
    try:
        targets = [{"kind": "webhook", "url": f"{h.base_url}/hook", "timeout": "60s"}
                   for h in hanging]  # fmt: skip
        project = build_project(tmp_path, alerts=targets)
        with open_warehouse(project) as warehouse:
            sender = AlertSender(project, warehouse, sleep=lambda seconds: None, budget=2.0)
            sender.queue(Alert("run_failed", "x"))
            started = time.monotonic()
            sender.deliver()
            elapsed = time.monotonic() - started
        assert elapsed < 15, elapsed  # each target alone would hang for three minutes
        kept = table_rows(project.warehouse_path, "SELECT count(*) FROM meta.alert_outbox")
        assert kept == [(2,)]
    finally:
        for h in hanging:
            h.close()
