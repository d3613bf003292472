"""A webhook endpoint on 127.0.0.1 for the alert tests: real HTTP, every POST recorded."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET_PATH = "/services/T000/B000/secret-token"


class Receiver:
    """Records every POSTed JSON body in `bodies`. It answers 500 to the first `failures` posts
    and 503 while `down` is set (an outage); `delivered` holds the bodies it accepted."""

    def __init__(self, failures: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []
        self.failures = failures
        self.down = False
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    receiver.bodies.append(body)
                    failing = len(receiver.bodies) <= receiver.failures or receiver.down
                    if not failing:
                        receiver.delivered.append(body)
                self.send_response((503 if receiver.down else 500) if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kinds(self) -> list[tuple[str, str, str]]:
        """(kind, model, field) of every alert accepted, in arrival order."""
        with self._lock:
            return [(b["kind"], b["details"]["model"], b["details"]["field"])
                    for b in self.delivered]  # fmt: skip

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def running_receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()
