"""The webhook intake over real HTTP: `anchorflow serve` in its own process on loopback."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from anchorflow.config import Project
from tests.serve.hooks import (
    ServeProcess,
    hooks_project,
    leftovers,
    published_records,
    signed,
    stored_lines,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, str]]:
    project = hooks_project(tmp_path_factory.mktemp("hooks"))
    with ServeProcess(project.root) as server:
        yield project, server.url


def intercom(notification: str | None = None) -> dict[str, object]:
    return {
        "type": "notification_event",
        "id": notification or f"notif_{uuid.uuid4()}",
        "topic": "conversation.user.created",
        "data": {"item": {"type": "conversation", "id": "123"}},
    }


def wistia(*uuids: str) -> dict[str, object]:
    return {
        "hook": {"uuid": "hook-1"},
        "events": [
            {"uuid": u, "type": "media.play", "payload": {"media": {"id": "abc"}}} for u in uuids
        ],
    }


def order(delivery: str | None = None) -> dict[str, object]:
    return {"delivery": {"id": delivery or str(uuid.uuid4())}, "order": {"total": 12.5}}


PAYLOADS = {"intercom": intercom, "wistia": lambda: wistia(str(uuid.uuid4())), "orders": order}


def post(url: str, source: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}/hooks/{source}", content=body, headers=headers, timeout=10)


def in_published(project: Project, source: str, key: str, value: object) -> bool:
    return any(record.get(key) == value for record in published_records(project, source))


@pytest.mark.parametrize("source", ["intercom", "wistia", "orders"])
def test_a_signed_delivery_is_stored_and_published(
    served: tuple[Project, str], source: str
) -> None:
    project, url = served
    payload = PAYLOADS[source]()
    response = post(url, source, *signed(project, source, payload))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "stored", "records": 1}
    if source == "wistia":
        event = payload["events"][0]  # type: ignore[index]
        wait_for(lambda: in_published(project, source, "uuid", event["uuid"]))
    else:
        wait_for(
            lambda: in_published(
                project,
                source,
                "id" if source == "intercom" else "delivery",
                payload["id" if source == "intercom" else "delivery"],
            )
        )


@pytest.mark.parametrize("source", ["intercom", "wistia", "orders"])
def test_a_bad_or_missing_signature_is_refused_and_nothing_stored(
    served: tuple[Project, str], source: str
) -> None:
    project, url = served
    before = stored_lines(project, source)
    body, headers = signed(project, source, PAYLOADS[source]())
    tampered = body.replace(b"}", b" }", 1)
    assert post(url, source, tampered, headers).status_code == 401
    unsigned = {"Content-Type": "application/json"}
    missing = post(url, source, body, unsigned)
    assert missing.status_code == 401
    assert "header" in missing.json()["error"]
    _, other = signed(project, source, {"something": "else"})
    assert post(url, source, body, other).status_code == 401
    assert stored_lines(project, source) == before


def test_a_replay_outside_the_tolerance_is_refused(served: tuple[Project, str]) -> None:
    project, url = served
    before = stored_lines(project, "orders")
    # A minute past the 300 s tolerance either way: a request signed 301 s ahead reached the
    # server inside the tolerance once the machine was slow (a CI run), which was no replay.
    for skew in (-360, 360):
        response = post(url, "orders", *signed(project, "orders", order(), time.time() + skew))
        assert response.status_code == 401
        assert "tolerance" in response.json()["error"]
    inside = post(url, "orders", *signed(project, "orders", order(), time.time() - 60))
    assert inside.status_code == 200
    assert stored_lines(project, "orders") == before + 1


def test_an_oversized_body_is_refused_with_413_and_nothing_stored(
    served: tuple[Project, str],
) -> None:
    project, url = served
    before = stored_lines(project, "orders")
    payload = {**order(), "padding": "x" * 5000}  # orders: max_body 4096
    assert post(url, "orders", *signed(project, "orders", payload)).status_code == 413
    body, headers = signed(project, "orders", payload)

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit cuts the read itself
        yield from (body[i : i + 1000] for i in range(0, len(body), 1000))

    response = httpx.post(f"{url}/hooks/orders", content=chunked(), headers=headers, timeout=10)
    assert response.status_code == 413
    assert stored_lines(project, "orders") == before
    before = stored_lines(project, "intercom")
    big = signed(project, "intercom", {**intercom(), "padding": "x" * (2 << 20)})  # 1 MiB max
    assert post(url, "intercom", *big).status_code == 413
    assert stored_lines(project, "intercom") == before


def test_a_wrong_content_type_gets_415_and_a_body_not_json_400(
    served: tuple[Project, str],
) -> None:
    project, url = served
    before = stored_lines(project, "intercom")
    body, headers = signed(project, "intercom", intercom())
    form = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    assert post(url, "intercom", body, form).status_code == 415
    not_json = post(url, "intercom", *signed(project, "intercom", b"{not json"))
    assert not_json.status_code == 400
    charset = {**headers, "Content-Type": "application/json; charset=utf-8"}
    assert post(url, "intercom", body, charset).status_code == 200
    assert stored_lines(project, "intercom") == before + 1
    assert post(url, "nowhere", body, headers).status_code == 404


def test_a_redelivery_is_answered_duplicate_and_stored_once(served: tuple[Project, str]) -> None:
    project, url = served
    payload = intercom()
    first = post(url, "intercom", *signed(project, "intercom", payload))
    again = post(url, "intercom", *signed(project, "intercom", payload))
    assert first.json()["status"] == "stored"
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "records": 0}
    wait_for(lambda: in_published(project, "intercom", "id", payload["id"]))
    ids = [r["id"] for r in published_records(project, "intercom")]
    assert ids.count(payload["id"]) == 1


def test_a_wistia_delivery_becomes_one_record_per_event(served: tuple[Project, str]) -> None:
    project, url = served
    uuids = [str(uuid.uuid4()) for _ in range(3)]
    response = post(url, "wistia", *signed(project, "wistia", wistia(*uuids)))
    assert response.json() == {"status": "stored", "records": 3}
    overlap = post(url, "wistia", *signed(project, "wistia", wistia(uuids[2], "fresh-" + uuids[0])))
    assert overlap.json() == {"status": "stored", "records": 1}
    wanted = {*uuids, "fresh-" + uuids[0]}

    def landed() -> list[str]:
        return [r["uuid"] for r in published_records(project, "wistia") if r["uuid"] in wanted]

    wait_for(lambda: len(landed()) == 4)
    assert sorted(landed()) == sorted(wanted)
    record = next(r for r in published_records(project, "wistia") if r["uuid"] == uuids[0])
    assert record == {"uuid": uuids[0], "type": "media.play", "payload": {"media": {"id": "abc"}}}


def test_concurrent_deliveries_are_all_stored_once(served: tuple[Project, str]) -> None:
    project, url = served
    payloads = [intercom() for _ in range(200)]
    payloads += payloads[:20]  # redeliveries racing their originals

    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
            requests = [signed(project, "intercom", p) for p in payloads]
            return await asyncio.gather(
                *(client.post("/hooks/intercom", content=b, headers=h) for b, h in requests)
            )

    responses = asyncio.run(send_all())
    assert all(r.status_code == 200 for r in responses)
    assert sum(r.json()["records"] for r in responses) == 200
    wanted = {p["id"] for p in payloads}

    def landed() -> list[object]:
        return [r["id"] for r in published_records(project, "intercom") if r["id"] in wanted]

    wait_for(lambda: len(landed()) >= 200)
    assert sorted(landed()) == sorted(wanted)  # type: ignore[type-var]


def test_health_answers_without_a_token_on_loopback(served: tuple[Project, str]) -> None:
    _, url = served
    health = httpx.get(url + "/health", timeout=5).json()
    assert health["status"] == "ok"
    assert set(health["sources"]) == {"intercom", "wistia", "orders"}


def test_sigterm_publishes_the_open_chunk_and_a_restart_still_drops_redeliveries(
    tmp_path: Path,
) -> None:
    project = hooks_project(tmp_path, intercom={"chunk_timeout": "1h"})
    payload = intercom()
    server = ServeProcess(project.root).start()
    assert post(server.url, "intercom", *signed(project, "intercom", payload)).status_code == 200
    assert published_records(project, "intercom") == []  # still in the open chunk
    stopped = server.stop()
    assert stopped.returncode == 0, stopped.stderr
    assert published_records(project, "intercom") == [payload]
    assert leftovers(project, "intercom") == []
    assert "hook-secret" not in stopped.stderr + stopped.stdout
    with ServeProcess(project.root) as again:
        response = post(again.url, "intercom", *signed(project, "intercom", payload))
        assert response.json() == {"status": "duplicate", "records": 0}
        redelivered = wistia("w-1")
        assert post(again.url, "wistia", *signed(project, "wistia", redelivered)).status_code == 200
    assert [r["id"] for r in published_records(project, "intercom")] == [payload["id"]]


def test_a_second_server_on_the_same_landing_is_refused(served: tuple[Project, str]) -> None:
    project, _ = served
    second = ServeProcess(project.root)
    with pytest.raises(RuntimeError, match="another `anchorflow serve`"):
        second.start(deadline=30)


def test_json_body_is_kept_as_it_arrived(served: tuple[Project, str]) -> None:
    project, url = served
    notification = f"notif_{uuid.uuid4()}"
    body = b'{"id": "%s",\n  "text": "caf\\u00e9"}' % notification.encode()
    assert post(url, "intercom", *signed(project, "intercom", body)).status_code == 200
    wait_for(lambda: in_published(project, "intercom", "id", notification))
    assert json.loads(body) in published_records(project, "intercom")
