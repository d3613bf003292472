"""What every emulator does with its server thread: stop, wait, and a `with` block."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Self


class ServerLifecycle:
    """Mixed into an emulator whose `start()` sets `_server` and starts `_thread` (its
    `serve_forever`)."""

    _server: ThreadingHTTPServer | None
    _thread: threading.Thread | None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop listening; requests already being answered finish in their daemon threads."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()

    def wait(self) -> None:
        """Block until the server stops; short joins keep Ctrl-C working in the main thread."""
        thread = self._thread
        while thread is not None and thread.is_alive():
            thread.join(0.2)

    def __enter__(self) -> Self:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
