"""Alerts over real HTTP to a receiver on loopback: delivered, retried, recorded, never fatal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anchorflow.alerts import Alert, AlertSender
from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from anchorflow.errors import ConfigError, TerminalSourceError
from anchorflow.run import Pipeline
from tests.builders import amplitude_source, build_project
from tests.conftest import available_at, table_rows
from tests.receiver import SECRET_PATH, Receiver, running_receiver

pytestmark = pytest.mark.integration
receiver = pytest.fixture(running_receiver)


def project_with_alerts(root: Path, base_url: str, alerts: list[dict[str, Any]]) -> Project:
    source = amplitude_source(base_url, api_key="wrong-key")  # every run fails with HTTP 401
    return build_project(root, sources={"amplitude": source}, alerts=alerts)


def test_a_failed_run_sends_one_slack_alert_and_records_it(
    emulator: AmplitudeEmulator, receiver: Receiver, tmp_path: Path
) -> None:
    project = project_with_alerts(tmp_path / "p", emulator.base_url,
                                  [{"kind": "slack", "url": receiver.url}])  # fmt: skip
    with pytest.raises(TerminalSourceError), Pipeline(project, now=available_at(2)) as pipeline:
        pipeline.run()
    assert len(receiver.bodies) == 1
    text = receiver.bodies[0]["text"]
    assert text.startswith("*test*: `anchorflow run` failed")
    assert "HTTP 401" in text
    rows = table_rows(
        project.warehouse_path, "SELECT kind, target, status, attempts FROM meta.alerts"
    )
    assert rows == [("run_failed", "slack#0", "delivered", 1)]


def test_a_generic_webhook_gets_the_alert_as_json(receiver: Receiver, tmp_path: Path) -> None:
    project = project_with_alerts(tmp_path / "p", "http://127.0.0.1:9",
                                  [{"kind": "webhook", "url": receiver.url}])  # fmt: skip
    with Pipeline(project) as pipeline:
        AlertSender(project, pipeline.warehouse).send(Alert("drift", "new field", {"field": "x"}))
    assert receiver.bodies == [
        {"project": "test", "kind": "drift", "subject": "new field", "details": {"field": "x"}}
    ]


def test_delivery_is_retried_until_the_receiver_accepts(tmp_path: Path) -> None:
    flaky = Receiver(failures=2)
    try:
        project = project_with_alerts(tmp_path / "p", "http://127.0.0.1:9",
                                      [{"kind": "slack", "url": flaky.url}])  # fmt: skip
        sleeps: list[float] = []
        with Pipeline(project) as pipeline:
            sender = AlertSender(project, pipeline.warehouse, sleep=sleeps.append)
            (delivery,) = sender.send(Alert("run_failed", "x"))
        assert (delivery.delivered, delivery.attempts, len(flaky.bodies)) == (True, 3, 3)
        assert sleeps == [0.5, 1.0]
    finally:
        flaky.close()


def test_an_undeliverable_alert_never_hides_the_error_and_is_recorded(
    emulator: AmplitudeEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    closed = f"http://127.0.0.1:9{SECRET_PATH}"  # the discard port: nothing listens
    project = project_with_alerts(tmp_path / "p", emulator.base_url,
                                  [{"kind": "slack", "url": closed}, {"kind": "log"}])  # fmt: skip
    with pytest.raises(TerminalSourceError), Pipeline(project, now=available_at(2)) as pipeline:
        pipeline.run()
    rows = table_rows(
        project.warehouse_path, "SELECT target, status, attempts, error FROM meta.alerts ORDER BY 1"
    )
    assert rows == [("log#1", "delivered", 1, None), ("slack#0", "failed", 3, "ConnectError")]
    assert "secret-token" not in caplog.text


def test_an_alert_target_without_its_url_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        project_with_alerts(tmp_path / "p", "http://127.0.0.1:9", [{"kind": "slack"}])
    assert raised.value.problems == [
        "anchorflow.yml: alerts.0: a slack alert needs url: an http(s) URL"
    ]


def test_a_malformed_alert_url_is_a_config_error_that_does_not_echo_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        project_with_alerts(tmp_path / "p", "http://127.0.0.1:9",
                            [{"kind": "webhook", "url": "https://[::1/secret-token"}])  # fmt: skip
    assert raised.value.problems == [
        "anchorflow.yml: alerts.0: a webhook alert needs url: an http(s) URL"
    ]
