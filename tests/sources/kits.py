"""Source kits: one per source kind, so that the same contract tests run against every kind.

A kit writes windows of records where its source reads them (export files served by the
Amplitude emulator; files in a local directory or an S3 bucket on moto's server), builds a
project with that source and a catch-all staging model, and says what a window is called and
when it is due.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore
from anchorflow.dev.emulators.maestroqa import MaestroQAEmulator
from anchorflow.project_types import format_hour
from tests.builders import build_project
from tests.conftest import API_KEY, SECRET_KEY, START

Records = list[dict[str, Any]]
ITEMS_MODEL = {
    "source": "src",
    "unique_key": "id",
    "columns": {"id": "VARCHAR", "v": "BIGINT", "name": "VARCHAR"},
}


class Kit(Protocol):
    kind: str

    def project(self, root: Path) -> Project:
        """A project with this source as `src`, and `staging.items` typing every record."""
        ...

    def write(self, window: int, records: Records) -> None:
        """Make `records` the content of window `window` at the source (again, to change it)."""
        ...

    def key(self, window: int) -> str:
        """The window's key in the journal."""
        ...

    def now(self, windows: int) -> datetime:
        """A clock at which windows 0..windows-1 are due (for kinds whose windows are times)."""
        ...

    @property
    def raw_table(self) -> str: ...

    def serving(self) -> Any:
        """A context in which the source can be read (a server started, if it needs one)."""
        ...


class AmplitudeKit:
    """Windows are hours after START: export files served by the Amplitude emulator."""

    kind = "amplitude"
    raw_table = "raw.src_events"

    def __init__(self, root: Path) -> None:
        self.dir = root / "export"
        self.dir.mkdir(parents=True)
        self.store = ExportStore(START, START + timedelta(hours=24), directory=self.dir)
        self.emulator = AmplitudeEmulator(self.store, API_KEY, SECRET_KEY)
        self.emulator.start()

    def project(self, root: Path) -> Project:
        source = {
            "kind": "amplitude",
            "base_url": self.emulator.base_url,
            "api_key": "${AMPLITUDE_API_KEY}",
            "secret_key": "${AMPLITUDE_SECRET_KEY}",
            "start": format_hour(START),
            "retry": {"attempts": 2, "base_delay": "10ms", "max_delay": "20ms"},
        }
        return build_project(root, sources={"src": source}, staging={"items": ITEMS_MODEL})

    def write(self, window: int, records: Records) -> None:
        hour = START + timedelta(hours=window)
        lines = "".join(json.dumps(r) + "\n" for r in records).encode()
        name = f"187520_{hour:%Y-%m-%d}_{hour.hour}#0.json.gz"
        (self.dir / name).write_bytes(gzip.compress(lines, mtime=0))
        self.store.rescan()

    def key(self, window: int) -> str:
        return format_hour(START + timedelta(hours=window))

    def now(self, windows: int) -> datetime:
        return START + timedelta(hours=windows + 2)  # the default availability delay: 2h

    @contextmanager
    def serving(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        self.emulator.stop()


class FilesKit:
    """Windows are files `part-<n>.jsonl.gz` in a local directory, or in an S3 bucket."""

    kind = "files"
    raw_table = "raw.src_records"

    def __init__(self, root: Path, s3: Any = None) -> None:
        self.s3 = s3  # a running moto server (tests.sources.s3.MotoS3), or None: local files
        self.dir = root / "landing"
        self.dir.mkdir(parents=True)
        self.written: dict[int, int] = {}

    def project(self, root: Path) -> Project:
        source: dict[str, Any] = {"kind": "files", "path": "", "format": "ndjson"}
        if self.s3 is None:
            source["path"] = str(self.dir / "*.jsonl.gz")
        else:
            source["path"] = f"s3://{self.s3.bucket}/landing/*.jsonl.gz"
            source["s3"] = self.s3.options()
        return build_project(root, sources={"src": source}, staging={"items": ITEMS_MODEL})

    def write(self, window: int, records: Records) -> None:
        lines = "".join(json.dumps(r) + "\n" for r in records).encode()
        data = gzip.compress(lines, mtime=0)
        if self.s3 is None:
            path = self.dir / self.key(window)
            path.write_bytes(data)
            # A rewrite within the file system's time resolution must still look changed.
            count = self.written[window] = self.written.get(window, 0) + 1
            os.utime(path, (1_700_000_000 + count, 1_700_000_000 + count))
        else:
            self.s3.put(f"landing/{self.key(window)}", data)

    def key(self, window: int) -> str:
        return f"part-{window:03d}.jsonl.gz"

    def now(self, windows: int) -> datetime:
        return START + timedelta(days=365)  # files are due as soon as they are there

    @contextmanager
    def serving(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        pass


class AsyncExportKit:
    """Windows are days after START: one-day `total_scores` exports of the MaestroQA emulator,
    whose CSV the kit writes (values land as text; staging types them)."""

    kind = "async_export"
    raw_table = "raw.src_total_scores"
    token = "kit-maestroqa-token"

    def __init__(self, root: Path) -> None:
        self.emulator = MaestroQAEmulator(self.token, polls_to_complete=2)
        self.emulator.start()

    def project(self, root: Path) -> Project:
        source = {
            "kind": "async_export",
            "preset": "maestroqa",
            "base_url": self.emulator.base_url,
            "token": "${MAESTROQA_API_TOKEN}",
            "start": f"{START:%Y-%m-%d}",
            "streams": {"total_scores": {}},
            "poll": {"interval": "10ms", "max_interval": "20ms"},
            "retry": {"attempts": 2, "base_delay": "10ms", "max_delay": "20ms"},
        }
        return build_project(root, sources={"src": source}, staging={"items": ITEMS_MODEL},
                             env={"MAESTROQA_API_TOKEN": self.token})  # fmt: skip

    def write(self, window: int, records: Records) -> None:
        rows = ["id,v,name", *(f"{r['id']},{r['v']},{r['name']}" for r in records)]
        day = (START + timedelta(days=window)).date()
        self.emulator.overrides[("total_scores", day)] = ("\n".join(rows) + "\n").encode()

    def key(self, window: int) -> str:
        return f"{START + timedelta(days=window):%Y-%m-%d}"

    def now(self, windows: int) -> datetime:
        return START + timedelta(days=windows, hours=1)  # the default delay: 1h

    @contextmanager
    def serving(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        self.emulator.stop()
