"""Every HTTP call ends by its total deadline: a server that drips one byte a second (so no read
ever times out) cannot keep a download or an alert delivery, and the warehouse lock, alive.

The elapsed-time bounds are generous (the dripping answer would take about a minute): they check
that the call ended, not how fast."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from anchorflow.alerts import Alert, AlertSender
from anchorflow.errors import TransientSourceError
from anchorflow.sources.amplitude.client import Cancelled, ExportClient
from anchorflow.sources.amplitude.config import AmplitudeConfig
from tests.builders import amplitude_source, build_project, open_warehouse
from tests.conftest import hour, table_rows
from tests.hostile.upstreams import Upstream

pytestmark = [pytest.mark.hostile, pytest.mark.integration]
DRIP_SECONDS = 60  # what the dripping server's answer takes in all


@pytest.fixture
def dripping() -> Iterator[Upstream]:
    upstream = Upstream("drip", interval=1.0, length=DRIP_SECONDS)
    yield upstream
    upstream.close()


def export_client(root: Path, base_url: str, **settings: object) -> ExportClient:
    source = amplitude_source(base_url, **settings)
    config = build_project(root, sources={"amplitude": source}).sources["amplitude"]
    assert isinstance(config, AmplitudeConfig)
    return ExportClient("amplitude", config, sleep=lambda seconds: None)


def test_a_dripping_export_download_fails_at_its_deadline(
    tmp_path: Path, dripping: Upstream
) -> None:
    fast = {"attempts": 2, "base_delay": "10ms", "max_delay": "10ms"}
    client = export_client(tmp_path, dripping.base_url, timeout="5s", deadline="2s", retry=fast)
    started = time.monotonic()
    with pytest.raises(TransientSourceError) as raised:
        client.download(hour(0), hour(0), tmp_path / "export.zip")
    elapsed = time.monotonic() - started
    client.close()
    message = str(raised.value)
    assert "\n" not in message
    assert "still failing after 2 attempts" in message
    assert "no complete answer within the 2s deadline of sources.amplitude" in message
    assert len(dripping.arrived) == 2
    assert elapsed < 15, elapsed  # two attempts of 2 s; the answer alone would take 60 s


def test_a_stop_ends_a_stalled_download_at_once(tmp_path: Path) -> None:
    stalled = Upstream("stall")
    try:
        client = export_client(tmp_path, stalled.base_url, timeout="60s", deadline="60s")
        stop = threading.Event()
        outcome: list[BaseException] = []

        def download() -> None:
            try:
                client.download(hour(0), hour(0), tmp_path / "export.zip", stop)
            except BaseException as error:
                outcome.append(error)

        worker = threading.Thread(target=download)
        started = time.monotonic()
        worker.start()
        while not stalled.arrived and worker.is_alive():
            worker.join(0.01)
        stop.set()
        worker.join(30)
        assert not worker.is_alive()
        assert [type(e) for e in outcome] == [Cancelled]
        assert time.monotonic() - started < 15  # the read timeout alone is 60 s
        client.close()
    finally:
        stalled.close()


def test_a_dripping_alert_target_fails_at_its_deadline(tmp_path: Path, dripping: Upstream) -> None:
    target = {"kind": "webhook", "url": f"{dripping.base_url}/hook", "timeout": "2s"}
    project = build_project(tmp_path, alerts=[target])
    with open_warehouse(project) as warehouse:
        sender = AlertSender(project, warehouse, sleep=lambda seconds: None)
        started = time.monotonic()
        deliveries = sender.send(Alert("run_failed", "x"))
        elapsed = time.monotonic() - started
    assert [(d.delivered, d.error) for d in deliveries] == [
        (False, "no answer within the 2s deadline")
    ]
    assert elapsed < 15, elapsed  # three tries of 2 s; the answer alone would take 60 s
    rows = table_rows(project.warehouse_path, "SELECT status, error FROM meta.alerts")
    assert rows == [("failed", "no answer within the 2s deadline")]
