"""The MaestroQA emulator over loopback HTTP: an export's life, its files, auth and faults."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import httpx
import pytest

from anchorflow.dev.emulators.maestroqa import Fault, MaestroQAEmulator, parse_fault
from anchorflow.dev.synth.maestroqa import GradingSpec

pytestmark = pytest.mark.integration

TOKEN = "emulator-token-1"
DAY = {"startDate": "2024-03-01T00:00:00Z", "endDate": "2024-03-02T00:00:00Z"}


@pytest.fixture
def api() -> Iterator[tuple[MaestroQAEmulator, httpx.Client]]:
    spec = GradingSpec(seed=3, agents=6, graded_per_day=10)
    with MaestroQAEmulator(TOKEN, spec, 3) as running:
        headers = {"apitoken": TOKEN}
        with httpx.Client(base_url=running.base_url, headers=headers) as client:
            yield running, client


def statuses(client: httpx.Client, export_id: str, count: int) -> list[dict[str, str]]:
    return [client.get("/get-export-data", params={"exportId": export_id}).json()
            for _ in range(count)]  # fmt: skip


def test_an_export_is_requested_then_in_progress_then_complete_with_a_fresh_link_each_time(
    api: tuple[MaestroQAEmulator, httpx.Client],
) -> None:
    _, client = api
    export_id = client.post("/request-raw-export", json=DAY).json()["exportId"]
    answers = statuses(client, export_id, 4)
    assert [a["status"] for a in answers] == ["requested", "in_progress", "complete", "complete"]
    assert answers[2]["dataUrl"] != answers[3]["dataUrl"]
    data = httpx.get(answers[3]["dataUrl"]).content  # no token: the link is presigned
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["annotations.csv", "csat.csv",
            "individual_answers.csv", "section_scores.csv", "total_scores.csv"]  # fmt: skip
        total = archive.read("total_scores.csv").decode().splitlines()
    assert total[0].replace('"', "").split(",")[:8] == ["gradable_id", "agent_id", "agent_name",
        "agent_email", "grader", "date_graded", "rubric_score", "max_rubric_score"]  # fmt: skip
    assert len(total) == 11


def test_the_same_seed_gives_the_same_files_and_bad_requests_are_refused(
    api: tuple[MaestroQAEmulator, httpx.Client],
) -> None:
    emulator, client = api
    body = {**DAY, "singleFileExport": "csat"}
    first, second = (client.post("/request-raw-export", json=body).json()["exportId"]
                     for _ in range(2))  # fmt: skip
    links = [statuses(client, e, 3)[-1]["dataUrl"] for e in (first, second)]
    assert httpx.get(links[0]).content == httpx.get(links[1]).content
    assert client.post("/request-raw-export", json={**DAY, "singleFileExport": "x"}).status_code \
        == 400  # fmt: skip
    assert client.post("/request-raw-export", json={"startDate": "2024-03-01"}).status_code == 400
    stranger = httpx.post(emulator.base_url + "/request-groups-export", json={})
    assert stranger.status_code == 401


def test_faults_are_used_up_one_by_one(api: tuple[MaestroQAEmulator, httpx.Client]) -> None:
    emulator, client = api
    emulator.faults += [parse_fault("rate_limit:times=1,seconds=2"), Fault("errored")]
    limited = client.post("/request-groups-export", json={"includeUnavailable": False})
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "2.0")
    export_id = client.post("/request-groups-export", json={}).json()["exportId"]
    assert [a["status"] for a in statuses(client, export_id, 4)] == [
        "requested", "in_progress", "errored", "errored"]  # fmt: skip
    with pytest.raises(ValueError, match="unknown fault 'nope'"):
        parse_fault("nope")
