"""A `files` source's listing and file reads on S3 end by `s3.deadline`: a store that drips one
byte a second (so botocore's read timeout never fires) cannot keep a run, and the warehouse
lock, alive. A proxy on loopback stands in front of moto's S3 server and drips what it forwards.

The elapsed-time bounds are generous (the dripping answer would take over a minute): they check
that the call ended, not how fast."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest

from anchorflow.config import Project
from anchorflow.errors import ConfigError, TransientSourceError
from anchorflow.journal.cursors import read_cursor
from anchorflow.run import Pipeline
from tests.builders import build_project
from tests.conftest import table_rows
from tests.sources.s3 import MotoS3

pytestmark = [pytest.mark.hostile, pytest.mark.integration]
ROWS = 40  # records in the dripped file
Drip = Literal["objects", "listings"] | None
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class DrippingProxy:
    """Forwards every request to `upstream`; the body of an object GET (`drip="objects"`) or of
    a bucket listing (`drip="listings"`) goes back one byte a second. Every request is recorded
    in `arrived` when it arrives, as "METHOD path"."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream).netloc
        self.drip: Drip = None
        self.only: str | None = None  # drip only the object GETs whose path ends so
        self.arrived: list[str] = []
        self.closing = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy._forward(self)

            do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    def _dripped(self, method: str, path: str) -> bool:
        if method != "GET" or self.drip is None:
            return False
        route, _, query = path.partition("?")
        is_object = "/" in route.strip("/") and "list-type" not in query
        if self.drip == "listings":
            return not is_object
        return is_object and (self.only is None or route.endswith(self.only))

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        method, path = handler.command, handler.path
        self.arrived.append(f"{method} {path}")
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            upstream.request(method, path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            answered = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP]
            status = answer.status
        finally:
            upstream.close()
        try:
            handler.send_response(status)
            for key, value in answered:
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if method == "HEAD":
                return
            if not self._dripped(method, path):
                handler.wfile.write(data)
                return
            for byte in data:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                if self.closing.wait(1.0):
                    return
        except OSError:  # the client gave up: that is what the tests want to see
            pass


@pytest.fixture
def s3() -> Iterator[MotoS3]:
    with MotoS3() as server:
        yield server


@pytest.fixture
def proxy(s3: MotoS3) -> Iterator[DrippingProxy]:
    front = DrippingProxy(s3.url)
    yield front
    front.close()


def files_project(root: Path, s3: MotoS3, proxy: DrippingProxy) -> Project:
    options = {**s3.options(), "endpoint_url": proxy.url, "deadline": "2s"}
    source = {"kind": "files", "path": f"s3://{s3.bucket}/*.ndjson", "s3": options}
    items = {"source": "src", "unique_key": "id", "columns": {"id": "VARCHAR", "v": "DOUBLE"}}
    return build_project(root, sources={"src": source}, staging={"items": items})


def ndjson(rows: int) -> bytes:
    return b"".join(b'{"id": "r%03d", "v": %d}\n' % (i, i) for i in range(rows))


def run_failing(project: Project) -> tuple[str, float]:
    started = time.monotonic()
    with Pipeline(project) as pipeline, pytest.raises(TransientSourceError) as raised:
        pipeline.run()
    return str(raised.value), time.monotonic() - started


def nothing_committed(project: Project) -> None:
    rows = table_rows(project.warehouse_path, "SELECT count(*) FROM meta.loads")
    assert rows == [(0,)]
    with Pipeline(project) as pipeline:
        assert read_cursor(pipeline.warehouse, "src", "records") is None
    runs = table_rows(project.warehouse_path, "SELECT status FROM meta.runs")
    assert runs == [("failed",)]


def test_a_dripping_object_read_fails_at_the_deadline_and_loads_once_the_store_answers(
    tmp_path: Path, s3: MotoS3, proxy: DrippingProxy
) -> None:
    s3.put("a.ndjson", ndjson(ROWS))  # 840 bytes: the drip would take 14 minutes
    project = files_project(tmp_path / "p", s3, proxy)
    proxy.drip = "objects"
    message, elapsed = run_failing(project)
    assert message == (
        "sources.src: cannot read a.ndjson (no complete answer within the 2s deadline of "
        "sources.src); run again later"
    )
    assert elapsed < 20, elapsed
    assert f"GET /{s3.bucket}/a.ndjson" in proxy.arrived  # it did reach the dripping read
    nothing_committed(project)

    proxy.drip = None
    with Pipeline(project) as pipeline:
        summary = pipeline.run()
    assert [w.window_key for w in summary.windows] == ["a.ndjson"]
    loaded = table_rows(project.warehouse_path, "SELECT count(*), max(id) FROM staging.items")
    assert loaded == [(ROWS, f"r{ROWS - 1:03d}")]


def test_the_files_read_before_the_dripping_one_stay_committed(
    tmp_path: Path, s3: MotoS3, proxy: DrippingProxy
) -> None:
    s3.put("a.ndjson", ndjson(3))
    s3.put("b.ndjson", b"".join(b'{"id": "b%d", "v": 1}\n' % i for i in range(10)))
    project = files_project(tmp_path / "p", s3, proxy)
    proxy.drip, proxy.only = "objects", "/b.ndjson"
    message, elapsed = run_failing(project)
    assert message.startswith("sources.src: cannot read b.ndjson (no complete answer within")
    assert elapsed < 20, elapsed
    assert table_rows(project.warehouse_path, "SELECT count(*) FROM staging.items") == [(3,)]
    with Pipeline(project) as pipeline:
        cursor = read_cursor(pipeline.warehouse, "src", "records")
    assert cursor is not None and list(cursor["files"]) == ["a.ndjson"]

    proxy.drip = None
    with Pipeline(project) as pipeline:
        assert [w.window_key for w in pipeline.run().windows] == ["b.ndjson"]
    assert table_rows(project.warehouse_path, "SELECT count(*) FROM staging.items") == [(13,)]


def test_a_dripping_listing_fails_at_the_deadline(
    tmp_path: Path, s3: MotoS3, proxy: DrippingProxy
) -> None:
    s3.put("a.ndjson", ndjson(3))
    project = files_project(tmp_path / "p", s3, proxy)
    proxy.drip = "listings"
    message, elapsed = run_failing(project)
    assert message == (
        f"sources.src: cannot list s3://{s3.bucket}/*.ndjson (no complete answer within the "
        "2s deadline of sources.src); run again later"
    )
    assert elapsed < 20, elapsed
    assert any("list-type" in request for request in proxy.arrived)
    nothing_committed(project)


@pytest.mark.parametrize("deadline", ["0s", "0ms"])
def test_the_deadline_must_be_longer_than_zero(tmp_path: Path, deadline: str) -> None:
    source = {"kind": "files", "path": "s3://b/*.ndjson", "s3": {"deadline": deadline}}
    with pytest.raises(ConfigError) as raised:
        build_project(tmp_path, sources={"src": source})
    assert "sources.src.s3.deadline" in str(raised.value)
    assert "expected a duration longer than 0s" in str(raised.value)
