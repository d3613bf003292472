"""The Amplitude source's producer thread: it stops when the caller stops, even mid-retry."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore, Fault
from anchorflow.sources.amplitude.export import AmplitudeExport
from tests.conftest import API_KEY, SECRET_KEY, SMALL, START, hour

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def test_closing_the_batches_stops_a_producer_waiting_to_retry(
    make_project: Callable[..., Project],
) -> None:
    store = ExportStore(START, START + timedelta(hours=12), spec=SMALL)
    failing = frozenset(hour(n) for n in range(6, 12))
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY, [Fault("error_500", hours=failing)]) as em:
        project = make_project(
            em.base_url, hours_per_request=6,
            retry={"attempts": 5, "base_delay": "60s", "max_delay": "60s"},
        )  # fmt: skip
        export = AmplitudeExport("amplitude", project.sources["amplitude"], project.work_path)
        batches = export.batches([hour(n) for n in range(12)])
        first_request = [next(batches).window.start for _ in range(6)]
        assert first_request == [hour(n) for n in range(6)]
        for _ in range(400):  # until the producer got its 500 and sits in a 60 s backoff
            if any(r.status == 500 for r in em.requests):
                break
            time.sleep(0.05)
        batches.close()  # what a failed commit or Ctrl-C does
        export.close()
        alive = [t for t in threading.enumerate() if t.name == "amplitude" and t.is_alive()]
        assert alive == []
        assert [r.status for r in em.requests] == [200, 500]
