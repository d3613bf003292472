"""DynamoDB on loopback for the tests: moto's server mode, and a throttling proxy before it.

`MotoDynamo` is a real HTTP server speaking DynamoDB's API on 127.0.0.1. `ThrottleProxy` is a
real HTTP server in front of it that answers the next N Scan calls with DynamoDB's own
throttling error (HTTP 400 and its JSON body), holds the next N unanswered, or damages the
next N answers under their original CRC32, then passes calls through, counting them.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import httpx
from moto.server import ThreadedMotoServer

from tests.sources.s3 import free_port

ACCESS_KEY, SECRET = "anchorflow-dynamo-key", "anchorflow-dynamo-secret-value"
REGION = "eu-west-1"


class MotoDynamo:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def __enter__(self) -> MotoDynamo:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def client(self, **options: Any) -> Any:
        return boto3.client(
            "dynamodb",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET,
            region_name=REGION,
            **options,
        )

    def create_table(self, name: str, items: list[dict[str, Any]]) -> None:
        """A table keyed by the string `id`, holding `items` (AttributeValue form)."""
        client = self.client()
        existing = client.list_tables()["TableNames"]
        if name in existing:
            client.delete_table(TableName=name)
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.put(name, items)

    def put(self, name: str, items: list[dict[str, Any]]) -> None:
        client = self.client()
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            client.batch_write_item(RequestItems={name: requests})


class ThrottleProxy:
    """Forwards to `target`, answering the next `throttles` calls with a throttling error."""

    def __init__(
        self,
        target: str,
        error: str = "ProvisionedThroughputExceededException",
        message: str = "Rate of requests exceeds the allowed throughput.",
    ) -> None:
        self.target = target
        self.error = error
        self.message = message
        self.throttles = 0
        self.throttled = 0
        self.stalls = 0  # calls held unanswered until the proxy stops (a server gone quiet)
        self.stalled = 0
        self.damages = 0  # answers passed on with a byte changed, under the original CRC32
        self.damaged = 0
        self._released = threading.Event()
        self.passed = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ThrottleProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def _take_stall(self) -> bool:
        with self._lock:
            if self.stalls > 0:
                self.stalls -= 1
                self.stalled += 1
                return True
            return False

    def _take_damage(self) -> bool:
        with self._lock:
            if self.damages > 0:
                self.damages -= 1
                self.damaged += 1
                return True
            return False

    def _take_throttle(self) -> bool:
        with self._lock:
            if self.throttles > 0:
                self.throttles -= 1
                self.throttled += 1
                return True
            self.passed += 1
            return False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if proxy._take_stall():
                    proxy._released.wait()  # the client's deadline must cut this call
                    return
                if proxy._take_throttle():
                    kind = f"com.amazonaws.dynamodb.v20120810#{proxy.error}"
                    error = json.dumps({"__type": kind, "message": proxy.message})
                    self._answer(400, error.encode())
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = httpx.post(proxy.target + self.path, content=body, headers=headers)
                content, crc = answer.content, answer.headers.get("x-amz-crc32")
                if proxy._take_damage():
                    content = content.replace(b'"S"', b'"s"', 1)
                self._answer(answer.status_code, content, crc)

            def _answer(self, status: int, body: bytes, crc: str | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                if crc is not None:
                    self.send_header("x-amz-crc32", crc)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
