"""The Amplitude Export API emulator, exercised over real HTTP on loopback."""

from __future__ import annotations

import gzip
import io
import json
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from anchorflow.dev.emulators.amplitude import (
    AmplitudeEmulator,
    ExportStore,
    Fault,
    FaultPlan,
    RequestRecord,
    parse_fault,
    run_emulator,
    write_export_files,
)
from anchorflow.dev.synth.amplitude import SynthSpec, hour_event_count, hour_files

pytestmark = pytest.mark.integration

SPEC = SynthSpec(events_per_hour=200)
PROJECT = SPEC.project_id
H4, H5, H6, H7 = (datetime(2024, 3, 1, h) for h in (4, 5, 6, 7))
STORE_END = datetime(2024, 3, 1, 8)  # the store holds hours 04..07
KEY, SECRET = "api-key", "secret-key"
BAD_DATA = (OSError, EOFError, zlib.error)  # what a damaged gzip member raises


@pytest.fixture(scope="module")
def store() -> ExportStore:
    # Shared so each hour is generated once for the whole module.
    return ExportStore(H4, STORE_END, spec=SPEC)


@pytest.fixture
def emulator(store: ExportStore) -> Iterator[AmplitudeEmulator]:
    with AmplitudeEmulator(store, KEY, SECRET) as running:
        yield running


@pytest.fixture
def client(emulator: AmplitudeEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.base_url, auth=(KEY, SECRET), timeout=30) as http:
        yield http


def export(client: httpx.Client, start: str, end: str) -> httpx.Response:
    return client.get("/api/2/export", params={"start": start, "end": end})


def members(response: httpx.Response) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def hour_members(response: httpx.Response, hour: datetime) -> dict[str, bytes]:
    prefix = f"{PROJECT}/{PROJECT}_{hour:%Y-%m-%d}_{hour.hour}#"
    return {name: data for name, data in members(response).items() if name.startswith(prefix)}


def lines(data: bytes) -> list[bytes]:
    return gzip.decompress(data).splitlines()


@cache
def expected_lines(hour: datetime) -> dict[str, list[bytes]]:
    """The hour's NDJSON lines by ZIP member name. Lines, not gzip bytes: gzip embeds the time."""
    return {f"{PROJECT}/{name}": lines(data) for name, data in hour_files(SPEC, hour).items()}


def member_lines(files: dict[str, bytes]) -> dict[str, list[bytes]]:
    return {name: lines(data) for name, data in files.items()}


Start = Callable[..., tuple[AmplitudeEmulator, httpx.Client]]


@pytest.fixture
def start(store: ExportStore) -> Iterator[Start]:
    """Start an emulator with the given faults and options, and a client for it."""
    with ExitStack() as stack:

        def _start(*faults: Fault, **options: Any) -> tuple[AmplitudeEmulator, httpx.Client]:
            emulator = AmplitudeEmulator(store, KEY, SECRET, faults=faults, **options)
            stack.enter_context(emulator)
            auth = (KEY, SECRET)
            client = httpx.Client(base_url=emulator.base_url, auth=auth, timeout=30)
            return emulator, stack.enter_context(client)

        yield _start


# --- the contract ---------------------------------------------------------------------------


def test_export_is_a_zip_of_gzip_ndjson_per_hour(client: httpx.Client, store: ExportStore) -> None:
    response = export(client, "20240301T04", "20240301T05")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    served = {f"{PROJECT}/{n}": d for h in (H4, H5) for n, d in store.files(h).items()}
    assert members(response) == served  # the store's gzip bytes, verbatim
    assert member_lines(served) == expected_lines(H4) | expected_lines(H5)
    assert f"{PROJECT}/{PROJECT}_2024-03-01_4#0.json.gz" in served  # hour not zero-padded
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
    for hour in (H4, H5):
        events = [
            json.loads(line) for d in hour_members(response, hour).values() for line in lines(d)
        ]
        assert len(events) == hour_event_count(SPEC, hour)
        assert len(hour_members(response, hour)) == 3


def test_bad_or_missing_credentials_get_401(emulator: AmplitudeEmulator) -> None:
    params = {"start": "20240301T04", "end": "20240301T04"}
    url = f"{emulator.base_url}/api/2/export"
    assert httpx.get(url, params=params, auth=(KEY, "wrong")).status_code == 401
    assert httpx.get(url, params=params).status_code == 401
    assert httpx.get(url, params=params, headers={"Authorization": "Basic !!!"}).status_code == 401
    assert [r.status for r in emulator.requests] == [401, 401, 401]


def test_range_without_data_is_404_and_missing_hours_are_absent(client: httpx.Client) -> None:
    assert export(client, "20240301T10", "20240301T12").status_code == 404

    response = export(client, "20240301T06", "20240301T09")
    assert response.status_code == 200
    hours = {name.split("_")[2].split("#")[0] for name in members(response)}
    assert hours == {"6", "7"}


def test_range_larger_than_the_limit_is_400(start: Start) -> None:
    _, client = start(max_hours_per_request=2)
    response = export(client, "20240301T04", "20240301T06")
    assert response.status_code == 400
    assert "range too large" in response.text
    assert export(client, "20240301T04", "20240301T05").status_code == 200


def test_default_limit_is_24_hours(client: httpx.Client) -> None:
    assert export(client, "20240301T00", "20240302T00").status_code == 400
    assert export(client, "20240301T00", "20240301T23").status_code == 200


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-03-01T04", "20240301T05"),
        ("20240301T4", "20240301T05"),
        ("20240301T05", "20240301T04"),
        ("20240301T24", "20240301T05"),
        ("", "20240301T05"),
    ],
)
def test_malformed_range_is_400(client: httpx.Client, start: str, end: str) -> None:
    assert export(client, start, end).status_code == 400


def test_missing_parameter_and_bad_path(client: httpx.Client) -> None:
    assert client.get("/api/2/export", params={"start": "20240301T04"}).status_code == 400
    assert client.get("/api/2/events", params={"start": "20240301T04"}).status_code == 404
    assert client.get("/").status_code == 404


def test_requests_are_logged_with_their_range(
    client: httpx.Client, emulator: AmplitudeEmulator
) -> None:
    export(client, "20240301T04", "20240301T05")
    export(client, "20240301T10", "20240301T10")
    export(client, "bad", "20240301T10")

    assert emulator.requests == [
        RequestRecord(H4, H5, 200),
        RequestRecord(datetime(2024, 3, 1, 10), datetime(2024, 3, 1, 10), 404),
        RequestRecord(None, None, 400),
    ]


def test_hours_become_available_after_the_delay(start: Start) -> None:
    now = datetime(2024, 3, 1, 8)  # with the 2 h delay, hours up to 05 are exported
    emulator, client = start(now=now)
    response = export(client, "20240301T04", "20240301T07")
    assert {name.split("_")[2].split("#")[0] for name in members(response)} == {"4", "5"}
    assert export(client, "20240301T06", "20240301T07").status_code == 404

    emulator.now = now + timedelta(hours=1)
    assert hour_members(export(client, "20240301T06", "20240301T07"), H6)
    assert not hour_members(export(client, "20240301T06", "20240301T07"), H7)


def test_availability_delay_is_configurable(start: Start) -> None:
    _, client = start(now=datetime(2024, 3, 1, 8), availability_delay=timedelta(0))
    response = export(client, "20240301T06", "20240301T07")
    assert {name.split("_")[2].split("#")[0] for name in members(response)} == {"6", "7"}


def test_concurrent_requests_generate_each_hour_once() -> None:
    fresh = ExportStore(H4, STORE_END, spec=SPEC)
    with (
        AmplitudeEmulator(fresh, KEY, SECRET) as emulator,
        httpx.Client(base_url=emulator.base_url, auth=(KEY, SECRET), timeout=60) as client,
        ThreadPoolExecutor(6) as pool,
    ):
        results = list(pool.map(lambda _: export(client, "20240301T04", "20240301T05"), range(6)))
    assert {r.status_code for r in results} == {200}
    assert len({r.content for r in results}) == 1
    assert fresh.generations == 2


# --- faults ---------------------------------------------------------------------------------


def test_rate_limit_sends_retry_after_for_the_first_times(start: Start) -> None:
    fault = Fault("rate_limit", times=2, retry_after=0)
    emulator, client = start(fault)

    first, second, third = (export(client, "20240301T04", "20240301T04") for _ in range(3))

    assert (first.status_code, first.headers["retry-after"]) == (429, "0")
    assert second.status_code == 429
    assert third.status_code == 200
    assert emulator.faults.uses(fault) == 2


def test_rate_limit_default_retry_after_is_one_second(start: Start) -> None:
    _, client = start(Fault("rate_limit"))
    for _ in range(2):  # no `times`: every request
        response = export(client, "20240301T04", "20240301T04")
        assert (response.status_code, response.headers["retry-after"]) == (429, "1")


@pytest.mark.parametrize(("kind", "status"), [("error_500", 500), ("error_504", 504)])
def test_server_errors(start: Start, kind: str, status: int) -> None:
    _, client = start(Fault(kind, times=1))
    assert export(client, "20240301T04", "20240301T04").status_code == status
    assert export(client, "20240301T04", "20240301T04").status_code == 200


def test_faults_with_hours_only_hit_requests_covering_them(start: Start) -> None:
    _, client = start(Fault("error_500", hours={H6}))
    assert export(client, "20240301T04", "20240301T05").status_code == 200
    assert export(client, "20240301T05", "20240301T06").status_code == 500


def test_slow_responds_normally_after_the_delay(start: Start) -> None:
    fault = Fault("slow", delay=0.05, times=1)
    emulator, client = start(fault)
    assert export(client, "20240301T04", "20240301T04").status_code == 200
    assert export(client, "20240301T04", "20240301T04").status_code == 200
    assert emulator.faults.uses(fault) == 1


def test_truncated_zip_cannot_be_opened(start: Start) -> None:
    _, client = start(Fault("truncated_zip", times=1))
    cut = export(client, "20240301T04", "20240301T05")
    whole = export(client, "20240301T04", "20240301T05")

    assert cut.status_code == 200
    assert len(cut.content) == int(cut.headers["content-length"]) == len(whole.content) // 2
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(cut.content))
    assert members(whole)


def test_corrupt_gzip_damages_one_member_of_the_hour(start: Start) -> None:
    _, client = start(parse_fault("corrupt_gzip:hours=20240301T05,times=1"))
    damaged = export(client, "20240301T04", "20240301T05")

    broken = []
    for name, data in members(damaged).items():
        assert data[:3] == b"\x1f\x8b\x08"  # still looks like gzip
        try:
            lines(data)
        except BAD_DATA:
            broken.append(name)
    assert broken == [f"{PROJECT}/{PROJECT}_2024-03-01_5#0.json.gz"]
    for data in members(export(client, "20240301T04", "20240301T05")).values():
        lines(data)  # `times=1`: the next download is clean


def test_malformed_line_breaks_line_3_every_time(start: Start) -> None:
    _, client = start(parse_fault("malformed_line:hours=20240301T05"))
    for _ in range(2):
        response = export(client, "20240301T04", "20240301T05")
        first, *rest = hour_members(response, H5).values()
        broken = lines(first)
        with pytest.raises(json.JSONDecodeError):
            json.loads(broken[2])
        assert len(broken[2]) == 40
        for line in broken[:2] + broken[3:] + [x for d in rest for x in lines(d)]:
            json.loads(line)
        for data in hour_members(response, H4).values():
            [json.loads(line) for line in lines(data)]


def test_reexport_repeats_events_of_the_previous_hour(start: Start) -> None:
    _, client = start(Fault("reexport", hours={H5}))
    response = export(client, "20240301T05", "20240301T05")

    files = hour_members(response, H5)
    extra = files.pop(f"{PROJECT}/{PROJECT}_2024-03-01_5#3.json.gz")
    assert len(files) == 3
    repeated = [json.loads(line) for line in lines(extra)]
    previous_first = next(iter(expected_lines(H4).values()))
    assert lines(extra) == previous_first[:5]  # verbatim
    h4_uuids = {json.loads(x)["uuid"] for ls in expected_lines(H4).values() for x in ls}
    assert {event["uuid"] for event in repeated} <= h4_uuids


def test_unavailable_hours_are_absent(start: Start) -> None:
    fault = parse_fault("unavailable:hours=20240301T05+20240301T06")
    _, client = start(fault)

    response = export(client, "20240301T04", "20240301T07")
    assert {name.split("_")[2].split("#")[0] for name in members(response)} == {"4", "7"}
    assert export(client, "20240301T05", "20240301T06").status_code == 404


def test_faults_can_be_added_and_cleared_while_running(
    client: httpx.Client, emulator: AmplitudeEmulator
) -> None:
    emulator.faults.add(Fault("error_504"))
    assert export(client, "20240301T04", "20240301T04").status_code == 504
    emulator.faults.clear()
    assert export(client, "20240301T04", "20240301T04").status_code == 200


def test_fault_plan_counts_uses_across_threads() -> None:
    fault = Fault("error_500", times=5)
    plan = FaultPlan([fault])
    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(lambda _: plan.take({"error_500"}, [H4]), range(50)))
    assert sum(len(t) for t in taken) == 5
    assert plan.uses(fault) == 5


# --- files on disk --------------------------------------------------------------------------


def test_write_export_files_is_complete_and_idempotent(tmp_path: Path) -> None:
    paths = write_export_files(SPEC, H4, H6, tmp_path, files_per_hour=3, workers=2)

    names = [n.split("/")[1] for h in (H4, H5) for n in expected_lines(h)]
    expected = [tmp_path / n for n in names]
    assert paths == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in expected)
    assert member_lines({f"{PROJECT}/{p.name}": p.read_bytes() for p in paths}) == (
        expected_lines(H4) | expected_lines(H5)
    )

    stamps = {p: p.stat().st_mtime_ns for p in paths}
    assert write_export_files(SPEC, H4, H6, tmp_path) == paths
    assert {p: p.stat().st_mtime_ns for p in paths} == stamps  # nothing rewritten


def test_directory_store_serves_the_same_export(tmp_path: Path) -> None:
    write_export_files(SPEC, H4, H6, tmp_path, workers=1)
    (tmp_path / ".leftover.tmp").write_bytes(b"partial")  # an interrupted write is ignored
    directory = ExportStore.from_directory(tmp_path)
    assert (directory.start, directory.end) == (H4, H6)
    with (
        AmplitudeEmulator(directory, KEY, SECRET) as emulator,
        httpx.Client(base_url=emulator.base_url, auth=(KEY, SECRET)) as client,
    ):
        response = export(client, "20240301T03", "20240301T06")
    assert member_lines(members(response)) == expected_lines(H4) | expected_lines(H5)


def test_store_needs_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ExportStore(H4, H5)
    with pytest.raises(ValueError, match="exactly one"):
        ExportStore(H4, H5, spec=SPEC, directory=tmp_path)


# --- running and parsing --------------------------------------------------------------------


def test_run_emulator_blocks_until_stopped(store: ExportStore) -> None:
    ready: list[str] = []
    stop = threading.Event()
    listening = threading.Event()

    def on_ready(url: str) -> None:
        ready.append(url)
        listening.set()

    server = threading.Thread(
        target=run_emulator, args=(store, KEY, SECRET), kwargs={"on_ready": on_ready, "stop": stop}
    )
    server.start()
    assert listening.wait(30)
    response = httpx.get(
        f"{ready[0]}/api/2/export", params={"start": "20240301T04", "end": "20240301T04"},
        auth=(KEY, SECRET),
    )  # fmt: skip
    stop.set()
    server.join(30)
    assert response.status_code == 200
    assert not server.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(ready[0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rate_limit", Fault("rate_limit")),
        ("rate_limit:times=2,retry_after=0", Fault("rate_limit", times=2, retry_after=0)),
        ("error_500:times=1", Fault("error_500", times=1)),
        ("error_504", Fault("error_504")),
        ("corrupt_gzip:hours=20240301T05,times=1", Fault("corrupt_gzip", hours={H5}, times=1)),
        ("malformed_line:hours=20240301T05+20240301T06", Fault("malformed_line", hours={H5, H6})),
        ("slow:delay=0.5,times=1", Fault("slow", delay=0.5, times=1)),
        ("reexport:count=3", Fault("reexport", count=3)),
        ("truncated_zip", Fault("truncated_zip")),
        ("unavailable:hours=20240301T07", Fault("unavailable", hours={H7})),
    ],
)
def test_parse_fault(text: str, expected: Fault) -> None:
    assert parse_fault(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("explode", "unknown fault kind"),
        ("", "unknown fault kind"),
        ("rate_limit:times", "key=value"),
        ("rate_limit:times=", "key=value"),
        ("rate_limit:times=two", "not a number"),
        ("rate_limit:times=0", "at least 1"),
        ("rate_limit:retry_after=-1", "negative"),
        ("rate_limit:retry_after=1.5", "not a number"),
        ("error_500:retry_after=1", "does not take"),
        ("slow:delay=nan", "finite"),
        ("slow:delay=1,delay=2", "given twice"),
        ("corrupt_gzip:hours=2024-03-01T05", "not an hour"),
        ("corrupt_gzip:hours=20240301T5", "not an hour"),
        ("malformed_line:hours=20240301T05+", "not an hour"),
        ("reexport:count=0", "count"),
    ],
)
def test_parse_fault_rejects_bad_input(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fault(text)
