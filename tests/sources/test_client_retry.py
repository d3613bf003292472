"""The Export API client against the emulator on loopback: retries, backoff, 404, secrets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, Fault
from anchorflow.errors import SourceError, TerminalSourceError, TransientSourceError
from anchorflow.sources.amplitude.archive import ExportArchive
from anchorflow.sources.amplitude.client import ExportClient, RangeTooLarge
from anchorflow.sources.amplitude.config import AmplitudeConfig
from tests.conftest import SECRET_KEY, hour

pytestmark = pytest.mark.integration


class Sleeps(list[float]):
    """Records the delays the client asks for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(
    make_project: Callable[..., Any], sleeps: Sleeps
) -> Iterator[Callable[..., ExportClient]]:
    clients: list[ExportClient] = []

    def make(base_url: str, **source: Any) -> ExportClient:
        config = make_project(base_url, **source).sources["amplitude"]
        assert isinstance(config, AmplitudeConfig)
        client = ExportClient("amplitude", config, sleep=sleeps)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def retry(attempts: int, base: str = "10ms", cap: str = "50ms") -> dict[str, Any]:
    return {"retry": {"attempts": attempts, "base_delay": base, "max_delay": cap}}


def test_retry_after_zero_is_honoured_without_backoff(
    emulator: AmplitudeEmulator, make_client: Callable[..., ExportClient], sleeps: Sleeps,
    tmp_path: Path,
) -> None:  # fmt: skip
    emulator.faults.add(Fault("rate_limit", times=1, retry_after=0))
    client = make_client(emulator.base_url, **retry(4))
    download = client.download(hour(0), hour(1), tmp_path / "export.zip")
    assert sleeps == [0.0]
    assert [r.status for r in emulator.requests] == [429, 200]
    assert download.path == tmp_path / "export.zip"
    assert download.bytes == download.path.stat().st_size > 0
    assert download.request == "export?start=20240301T00&end=20240301T01"
    archive = ExportArchive(download.path)
    try:
        assert archive.hours() == {hour(0), hour(1)}
    finally:
        archive.close()


def test_retry_after_seconds_are_waited_instead_of_the_backoff(
    emulator: AmplitudeEmulator, make_client: Callable[..., ExportClient], sleeps: Sleeps,
    tmp_path: Path,
) -> None:  # fmt: skip
    emulator.faults.add(Fault("rate_limit", times=2, retry_after=7))
    client = make_client(emulator.base_url, **retry(4, base="10ms", cap="60s"))
    client.download(hour(0), hour(0), tmp_path / "export.zip")
    assert sleeps == [7.0, 7.0]
    assert [r.status for r in emulator.requests] == [429, 429, 200]


def test_backoff_grows_exponentially_with_jitter_within_bounds(
    emulator: AmplitudeEmulator, make_client: Callable[..., ExportClient], sleeps: Sleeps,
    tmp_path: Path,
) -> None:  # fmt: skip
    base, cap, attempts, downloads = 0.010, 0.050, 6, 6
    client = make_client(emulator.base_url, **retry(attempts, "10ms", "50ms"))
    per_download: list[list[float]] = []
    for _ in range(downloads):
        emulator.faults.clear()
        emulator.faults.add(Fault("error_500", times=attempts - 1))  # succeeds on the last try
        sleeps.clear()
        assert client.download(hour(0), hour(0), tmp_path / "export.zip").path is not None
        per_download.append(list(sleeps))
    for delays in per_download:
        assert len(delays) == attempts - 1
        for n, delay in enumerate(delays, start=1):
            ceiling = min(cap, base * 2 ** (n - 1))
            assert ceiling / 2 <= delay <= ceiling, (n, delay)
    firsts = [d[0] for d in per_download]
    assert len(set(firsts)) > 1  # jitter: a crowd of clients does not retry in lockstep


def test_attempts_are_bounded(
    emulator: AmplitudeEmulator, make_client: Callable[..., ExportClient], sleeps: Sleeps,
    tmp_path: Path,
) -> None:  # fmt: skip
    emulator.faults.add(Fault("error_504"))  # every request, forever
    client = make_client(emulator.base_url, **retry(3))
    with pytest.raises(TransientSourceError) as raised:
        client.download(hour(0), hour(0), tmp_path / "export.zip")
    assert len(emulator.requests) == 3
    assert len(sleeps) == 2  # no sleep after the last attempt
    message = str(raised.value)
    assert "export?start=20240301T00&end=20240301T00" in message
    assert "after 3 attempts" in message and "HTTP 504" in message


def test_a_refused_connection_is_retried_then_fails(
    make_client: Callable[..., ExportClient], sleeps: Sleeps, tmp_path: Path
) -> None:
    client = make_client("http://127.0.0.1:9", **retry(2))  # discard port: nothing listens
    with pytest.raises(TransientSourceError, match="after 2 attempts"):
        client.download(hour(0), hour(0), tmp_path / "export.zip")
    assert len(sleeps) == 1


def test_no_data_is_a_download_without_a_path(
    emulator: AmplitudeEmulator, make_client: Callable[..., ExportClient], sleeps: Sleeps,
    tmp_path: Path,
) -> None:  # fmt: skip
    client = make_client(emulator.base_url, **retry(3))
    download = client.download(hour(100), hour(101), tmp_path / "export.zip")  # after the store
    assert download.path is None
    assert download.bytes == 0
    assert (download.start, download.end) == (hour(100), hour(101))
    assert [r.status for r in emulator.requests] == [404]
    assert sleeps == []  # 404 is an answer, not a failure


def test_a_range_the_api_refuses_is_range_too_large_without_retrying(
    emulator: AmplitudeEmulator, make_client: Callable[..., ExportClient], sleeps: Sleeps,
    tmp_path: Path,
) -> None:  # fmt: skip
    client = make_client(emulator.base_url, **retry(3))
    with pytest.raises(RangeTooLarge, match="range too large"):
        client.download(hour(0), hour(30), tmp_path / "export.zip")  # the emulator allows 24
    assert len(emulator.requests) == 1
    assert sleeps == []


def test_bad_credentials_are_terminal(
    emulator: AmplitudeEmulator, make_client: Callable[..., ExportClient], sleeps: Sleeps,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("AMPLITUDE_SECRET_KEY", "wrong-secret-7f3a9c")
    client = make_client(emulator.base_url, **retry(3))
    with pytest.raises(TerminalSourceError, match="HTTP 401") as raised:
        client.download(hour(0), hour(0), tmp_path / "export.zip")
    assert "wrong-secret-7f3a9c" not in repr(raised.value) + str(raised.value)
    assert len(emulator.requests) == 1 and sleeps == []


@pytest.mark.parametrize(
    ("fault", "start", "end"),
    [
        (Fault("error_500"), 0, 0),  # retries exhausted
        (Fault("rate_limit", retry_after=0), 0, 0),  # retries exhausted after 429s
        (None, 0, 40),  # 400 from the API
    ],
    ids=["5xx", "429", "400"],
)
def test_the_secret_key_never_appears_in_a_raised_message(
    emulator: AmplitudeEmulator, make_client: Callable[..., ExportClient], tmp_path: Path,
    fault: Fault | None, start: int, end: int,
) -> None:  # fmt: skip
    if fault:
        emulator.faults.add(fault)
    client = make_client(emulator.base_url, **retry(2))
    with pytest.raises(SourceError) as raised:
        client.download(hour(start), hour(end), tmp_path / "export.zip")
    error: BaseException | None = raised.value
    while error is not None:  # the message and everything chained to it
        assert SECRET_KEY not in str(error)
        assert SECRET_KEY not in repr(error)
        error = error.__cause__ or error.__context__
