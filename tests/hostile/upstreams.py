"""Hostile HTTP servers on 127.0.0.1 for the network tests: real sockets, real HTTP.

- `echo`: answers 400 with a body that echoes the request's Authorization header and the
  credentials it decodes to (a proxy that reflects what it was sent);
- `drip`: answers 200 one byte every `interval` seconds, the status line included, so no read
  ever times out while the answer never ends;
- `stall`: accepts the request and answers nothing until the server is closed.

Every request is recorded in `arrived` when it arrives (before it is answered), so a test can
wait for a client to be in the middle of a call without sleeping.
"""

from __future__ import annotations

import base64
import binascii
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import quote

Behaviour = Literal["echo", "drip", "stall"]


class Upstream:
    def __init__(self, behaviour: Behaviour, interval: float = 1.0, length: int = 60) -> None:
        self.behaviour = behaviour
        self.interval = interval
        self.length = length  # bytes of a dripped answer: length * interval seconds in all
        self.arrived: list[str] = []  # "METHOD path" of every request, in arrival order
        self.closing = threading.Event()
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                upstream._answer(self)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream._answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.arrived.append(f"{handler.command} {handler.path}")
        try:
            if self.behaviour == "echo":
                self._echo(handler)
            elif self.behaviour == "drip":
                self._drip(handler)
            else:
                self.closing.wait()
        except OSError:  # the client gave up: that is what the tests want to see
            pass

    @staticmethod
    def _echo(handler: BaseHTTPRequestHandler) -> None:
        header = handler.headers.get("Authorization") or ""
        try:
            decoded = base64.b64decode(header.partition(" ")[2]).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        secret = decoded.partition(":")[2]
        body = f"bad request; got {header} = {decoded} ({quote(secret, safe='')})".encode()
        handler.send_response(400)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _drip(self, handler: BaseHTTPRequestHandler) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {self.length}\r\n\r\n".encode()
        answer = head + b"x" * self.length
        # Never more than `length` drips in all: the status line and headers go at once only
        # when they alone would outlast the answer's budget.
        step = max(1, -(-len(answer) // self.length))
        for start in range(0, len(answer), step):
            if self.closing.wait(self.interval):
                return
            handler.wfile.write(answer[start : start + step])
            handler.wfile.flush()
        handler.close_connection = True

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
