"""A local HTTP server that speaks MaestroQA's export API, for tests and the demo (loopback).

- `POST /api/v1/request-raw-export` `{startDate, endDate, singleFileExport?}` (dates as
  `YYYY-MM-DDTHH:MM:SSZ`, the end exclusive): one CSV, or a ZIP of the five CSVs;
- `POST /api/v1/request-groups-export` `{includeUnavailable}`: the agents' groups CSV;
- `POST /api/v1/request-audit-log-export` `{startDate, endDate}`;
- each answers `{"exportId": ...}`; `GET /api/v1/get-export-data?exportId=` answers
  `{"status": requested | in_progress | complete | errored, "dataUrl": ...}`: an export is
  complete after `polls_to_complete` status calls, with a fresh presigned-like `dataUrl`
  (`/files/<id>?signature=<n>`, no token needed) each time it is asked.

Every API call needs the `apitoken` header. Data comes from `dev.synth.maestroqa` (the same
seed, the same files). Faults (`Fault`, a count each): `errored` (exports end errored),
`rate_limit` (429 with `Retry-After`), `server_error` (503), `expired` (a download link
answers 403 "Request has expired"), `slow` (each downloaded MiB waits `seconds`).
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import threading
import time
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from anchorflow.dev.emulators.lifecycle import ServerLifecycle
from anchorflow.dev.synth import maestroqa as synth
from anchorflow.dev.synth.maestroqa import GradingSpec

log = logging.getLogger(__name__)
API = "/api/v1"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
FAULT_KINDS = ("errored", "rate_limit", "server_error", "expired", "slow")
MIB = 1 << 20


@dataclass
class Fault:
    kind: str
    times: int = 1
    seconds: float = 0.0  # Retry-After of a 429; the wait per MiB of `slow`

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; known: {', '.join(FAULT_KINDS)}")


def parse_fault(text: str) -> Fault:
    """`errored`, `rate_limit:times=3,seconds=1`, `expired:times=2`, `slow:seconds=0.5`."""
    kind, _, rest = text.partition(":")
    options = dict(item.split("=", 1) for item in rest.split(",") if "=" in item)
    return Fault(kind, int(options.get("times", 1)), float(options.get("seconds", 0)))


@dataclass(frozen=True)
class Call:
    """One request the emulator answered, for tests to count."""

    method: str
    path: str
    body: dict[str, Any]
    status: int


@dataclass
class Export:
    id: str
    kind: str  # raw | groups | audit_log
    body: dict[str, Any]
    polls: int = 0
    errored: bool = False
    links: int = 0  # dataUrls handed out
    data: bytes | None = None
    name: str = ""


@dataclass
class _Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    slow: float = 0.0


def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> _Answer:
    return _Answer(status, json.dumps(value).encode(), {"Content-Type": "application/json",
                                                        **(headers or {})})  # fmt: skip


class MaestroQAEmulator(ServerLifecycle):
    """MaestroQA's export API on a local port; `faults` may be added while it runs."""

    def __init__(
        self,
        token: str,
        spec: GradingSpec | None = None,
        polls_to_complete: int = 2,
        faults: list[Fault] | None = None,
        zip_single: bool = False,
    ) -> None:
        """`zip_single`: a `singleFileExport` answers a ZIP holding its one CSV (a benchmark's
        "CSV in a ZIP"); otherwise the CSV itself."""
        self._token = token.encode()  # never logged
        self.spec = spec or GradingSpec()
        self.polls_to_complete = polls_to_complete
        self.faults = list(faults or [])
        self.zip_single = zip_single
        self.exports: dict[str, Export] = {}
        self._requested = 0
        self._built: dict[str, tuple[str, bytes]] = {}  # the same request, the same file
        # (singleFileExport, day) -> the CSV served for a one-day export of that file instead of
        # generated rows: tests put their own records there, and change them.
        self.overrides: dict[tuple[str, date], bytes] = {}
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def requests_of(self, path: str) -> list[Call]:
        """The answered calls of one endpoint (`/request-raw-export`), oldest first."""
        return [c for c in self.calls if c.path == API + path]

    @property
    def root(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        return self.root + API

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = _Server((host, port), self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="maestroqa-emulator", daemon=True)  # fmt: skip
        self._thread.start()
        return self.base_url

    # -- answers --------------------------------------------------------------------------------

    def answer(self, method: str, target: str, token: str | None, raw_body: bytes) -> _Answer:
        url = urlsplit(target)
        try:
            body = json.loads(raw_body) if raw_body else {}
        except ValueError:
            body = None
        answer = self._route(method, url.path, parse_qs(url.query), token, body)
        with self._lock:
            self._calls.append(Call(method, url.path, body or {}, answer.status))
        return answer

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], token: str | None, body: Any
    ) -> _Answer:
        if path.startswith("/files/"):
            return self._file(path.removeprefix("/files/"))
        if not path.startswith(API + "/"):
            return _json(404, {"error": "not found"})
        if token is None or not hmac.compare_digest(token.encode(), self._token):
            return _json(401, {"error": "invalid apitoken"})
        if not isinstance(body, dict):
            return _json(400, {"error": "the body is not a JSON object"})
        if self._take("rate_limit"):
            return _json(429, {"error": "rate limited"}, {"Retry-After": f"{self._last_seconds}"})
        if self._take("server_error"):
            return _json(503, {"error": "unavailable"})
        endpoint = path.removeprefix(API)
        if method == "GET" and endpoint == "/get-export-data":
            return self._status(query.get("exportId", [""])[0])
        kinds = {"/request-raw-export": "raw", "/request-groups-export": "groups",
                 "/request-audit-log-export": "audit_log"}  # fmt: skip
        if method == "POST" and endpoint in kinds:
            return self._request(kinds[endpoint], body)
        return _json(404, {"error": f"no endpoint {method} {endpoint}"})

    def _request(self, kind: str, body: dict[str, Any]) -> _Answer:
        problem = _check_body(kind, body)
        if problem:
            return _json(400, {"error": problem})
        with self._lock:
            self._requested += 1
            export = Export(f"exp-{self.spec.seed}-{self._requested:05d}", kind, body)
            self.exports[export.id] = export
        return _json(200, {"exportId": export.id})

    def _status(self, export_id: str) -> _Answer:
        export = self.exports.get(export_id)
        if export is None:
            return _json(404, {"error": f"no export {export_id!r}"})
        export.polls += 1
        if export.polls == self.polls_to_complete and self._take("errored"):
            export.errored = True
        if export.errored:
            return _json(200, {"status": "errored", "dataUrl": None})
        if export.polls < self.polls_to_complete:
            state = "requested" if export.polls == 1 else "in_progress"
            return _json(200, {"status": state, "dataUrl": None})
        if export.data is None:
            export.name, export.data = self._cached(export)
        export.links += 1
        url = f"{self.root}/files/{export.id}?signature=s{export.links}&expires=900"
        return _json(200, {"status": "complete", "dataUrl": url})

    def _file(self, export_id: str) -> _Answer:
        export = self.exports.get(export_id)
        if export is None or export.data is None:
            return _Answer(404, b"<Error><Code>NoSuchKey</Code></Error>")
        if self._take("expired"):
            return _Answer(403, b"<Error><Code>AccessDenied</Code>"
                                b"<Message>Request has expired</Message></Error>")  # fmt: skip
        slow = self._last_seconds if self._take("slow") else 0.0
        headers = {"Content-Disposition": f'attachment; filename="{export.name}"'}
        return _Answer(200, export.data, headers, slow)

    def _cached(self, export: Export) -> tuple[str, bytes]:
        single, body = export.body.get("singleFileExport"), export.body
        if export.kind == "raw" and single and (single, _days(body)[0]) in self.overrides:
            first, last = _days(body)
            if first == last:
                return f"{single}.csv", self.overrides[(single, first)]
        key = json.dumps([export.kind, export.body], sort_keys=True)
        if key not in self._built:
            self._built[key] = self._build(export)
        return self._built[key]

    def _build(self, export: Export) -> tuple[str, bytes]:
        spec, body = self.spec, export.body
        if export.kind == "groups":
            return "groups.csv", synth.groups_csv(spec, bool(body.get("includeUnavailable")))
        first, last = _days(body)
        if export.kind == "audit_log":
            return "audit_log.csv", synth.audit_log(spec, first, last)
        files = synth.raw_export_files(spec, first, last)
        single = body.get("singleFileExport")
        if single:
            files = {f"{single}.csv": files[f"{single}.csv"]}
            if not self.zip_single:
                return f"{single}.csv", files[f"{single}.csv"]
        return f"{single or 'export'}.zip", _zipped(files)

    _last_seconds = 0.0

    def _take(self, kind: str) -> bool:
        """Use up one occurrence of a fault of `kind`, if one is left."""
        with self._lock:
            for fault in self.faults:
                if fault.kind == kind and fault.times > 0:
                    fault.times -= 1
                    self._last_seconds = fault.seconds
                    return True
        return False


def _zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def _check_body(kind: str, body: dict[str, Any]) -> str | None:
    if kind == "groups":
        return None
    for key in ("startDate", "endDate"):
        try:
            datetime.strptime(str(body.get(key)), DATE_FORMAT)
        except ValueError:
            return f"{key} must be a date as YYYY-MM-DDTHH:MM:SSZ, got {body.get(key)!r}"
    single = body.get("singleFileExport")
    if single is not None and single not in synth_files():
        return f"singleFileExport must be one of {', '.join(synth_files())}"
    first, last = _days(body)
    if last < first:
        return "endDate is before startDate"
    return None


def synth_files() -> tuple[str, ...]:
    return ("individual_answers", "section_scores", "total_scores", "annotations", "csat")


def _days(body: dict[str, Any]) -> tuple[date, date]:
    """The days the range covers: the end is exclusive (midnight ends the day before)."""
    start = datetime.strptime(str(body["startDate"]), DATE_FORMAT)
    end = datetime.strptime(str(body["endDate"]), DATE_FORMAT)
    return start.date(), (end - timedelta(seconds=1)).date()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: MaestroQAEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            answer = self.server.emulator.answer(method, self.path, self.headers.get("apitoken"),
                                                 raw)  # fmt: skip
        except Exception:
            log.exception("MaestroQA emulator failed to answer %s", self.path)
            answer = _json(500, {"error": "emulator error"})
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            for offset in range(0, len(answer.body), MIB):
                if answer.slow:
                    time.sleep(answer.slow)
                self.wfile.write(answer.body[offset : offset + MIB])
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client went away during %s", self.path)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def run_emulator(
    token: str, spec: GradingSpec, host: str, port: int, faults: list[Fault],
    polls_to_complete: int = 2, on_ready: Any = None,
) -> None:  # fmt: skip
    """Serve until Ctrl-C."""
    emulator = MaestroQAEmulator(token, spec, polls_to_complete, faults)
    emulator.start(host, port)
    try:
        if on_ready is not None:
            on_ready(emulator.base_url)
        emulator.wait()
    except KeyboardInterrupt:
        log.debug("MaestroQA emulator interrupted")
    finally:
        emulator.stop()
