"""Where a `files` source's files live: a local directory or an object store, through fsspec.

A file is named by its *key*, its path below the glob's fixed prefix (`exports/*.csv` →
`2024-03-01.csv`; `s3://bucket/in/**/*.json` → `2024/03/01.json`), so the project directory or
the bucket's endpoint can move without every file looking new. Its *version* is its size and
modification time (local) or its ETag (object stores): a file whose version changes is loaded
again.

An object store's listing and each file read have a total deadline (`s3.deadline`): botocore's
timeouts bound each connect and read, so a store that drips a byte every few seconds would
otherwise keep a call, and the warehouse lock, alive for ever. The call runs as s3fs's own
coroutine on fsspec's event loop and is cancelled there when the deadline passes, which closes
its connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import glob
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import fsspec

from anchorflow.deadline import describe
from anchorflow.errors import SourceError, TerminalSourceError, TransientSourceError
from anchorflow.sources.files.config import FilesConfig

GLOB_CHARS = re.compile(r"[*?\[]")
# Seconds a call cancelled at its deadline is given to wind down before the caller stops
# waiting for it anyway (a coroutine that ignored its cancellation is left to the loop's
# daemon thread, which dies with the process).
_GRACE = 5.0
_EXPIRED = object()
T = TypeVar("T")


@dataclass(frozen=True)
class StoredFile:
    key: str  # the path below the glob's fixed prefix
    path: str  # the path as the filesystem names it
    version: str
    size: int
    modified: float | None  # seconds since the epoch, when the store says


class FileStore:
    def __init__(self, name: str, config: FilesConfig, root: Path) -> None:
        self.name = name
        self.config = config
        self.remote = remote = "://" in config.path
        relative = not remote and not Path(config.path).is_absolute()
        # The project's directory is a place, not a pattern: a `[` in it must not glob.
        url = f"{glob.escape(str(root))}/{config.path}" if relative else config.path
        self.fs, self.pattern = fsspec.core.url_to_fs(url, **self._options(remote))
        # The directory (or bucket prefix) above the first glob character of the configured
        # path; for a path without one, its directory: a key is never empty.
        fixed = GLOB_CHARS.split(config.path, maxsplit=1)[0].rpartition("/")[0]
        if relative:
            fixed = str(root / fixed) if fixed else str(root)
        self.base = self.fs._strip_protocol(fixed) if remote else fixed

    def _options(self, remote: bool) -> dict[str, Any]:
        if not remote:
            return {}
        try:
            import s3fs  # noqa: F401  (fsspec finds it by the URL's scheme)
        except ImportError:
            raise TerminalSourceError(
                f"sources.{self.name}: reading s3:// needs s3fs; install anchorflow[s3]"
            ) from None
        s3 = self.config.s3
        seconds = s3.timeout.total_seconds()
        options: dict[str, Any] = {
            "anon": s3.anon,
            "config_kwargs": {
                "connect_timeout": seconds,
                "read_timeout": seconds,
                "retries": {"max_attempts": 3, "mode": "standard"},
            },
            "skip_instance_cache": True,
        }
        if s3.endpoint_url:
            options["endpoint_url"] = s3.endpoint_url
        if s3.region:
            options["client_kwargs"] = {"region_name": s3.region}
        if s3.key and s3.secret:
            options["key"] = s3.key.get_secret_value()
            options["secret"] = s3.secret.get_secret_value()
        return options

    def list(self) -> list[StoredFile]:
        """Every file the glob matches, by key. A directory or bucket that is not there is an
        error, not an empty listing: a typo must not look like a quiet source."""
        try:
            found, exists = self._glob() if self.remote else self._local_glob()
            if not found and not exists:
                raise TerminalSourceError(
                    f"sources.{self.name}: cannot list {self.config.path} "
                    f"({self.container} does not exist)"
                )
        except SourceError:
            raise
        except Exception as error:  # network, permissions, the store's own client errors
            raise TransientSourceError(
                f"sources.{self.name}: cannot list {self.config.path} ({_reason(error)})"
            ) from None
        if found and all(info.get("type") == "directory" for info in found.values()):
            raise TerminalSourceError(
                f"sources.{self.name}: {self.config.path} names a directory, not files; "
                "add a glob such as /* or /**/*.csv"
            )
        files = [
            self._stored(path, info)
            for path, info in found.items()
            if info.get("type", "file") != "directory"
        ]
        return sorted(files, key=lambda f: f.key)

    @property
    def container(self) -> str:
        """What must exist for the glob to mean anything: the bucket, or the local directory."""
        return self.base.split("/", 1)[0] if self.remote else self.base

    def read(self, file: StoredFile) -> bytes | None:
        """The file's bytes, or None when it vanished since it was listed."""
        try:
            if self.remote:

                async def whole() -> bytes:
                    data: bytes = await self.fs._cat_file(file.path)
                    return data

                return self._within(f"cannot read {file.key}", whole)
            with self.fs.open(file.path, "rb") as handle:
                data: bytes = handle.read()
                return data
        except FileNotFoundError:
            return None
        except SourceError:
            raise
        except Exception as error:  # network, permissions, the store's own client errors
            raise TransientSourceError(
                f"sources.{self.name}: cannot read {file.key} ({_reason(error)})"
            ) from None

    def _local_glob(self) -> tuple[dict[str, dict[str, Any]], bool]:
        found: dict[str, dict[str, Any]] = self.fs.glob(self.pattern, detail=True)
        return found, bool(found) or self.fs.exists(self.container)

    def _glob(self) -> tuple[dict[str, dict[str, Any]], bool]:
        """The remote listing (and, when it is empty, whether the bucket is there), under one
        deadline for all its pages."""

        async def listing() -> tuple[dict[str, dict[str, Any]], bool]:
            found: dict[str, dict[str, Any]] = await self.fs._glob(self.pattern, detail=True)
            return found, bool(found) or await self.fs._exists(self.container)

        return self._within(f"cannot list {self.config.path}", listing)

    def _within(self, what: str, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run one of s3fs's coroutines on its event loop, cancelled when `s3.deadline` passes;
        then the call fails with one line naming what it was doing. The calling thread waits a
        little longer than the deadline, so even a coroutine that swallowed its cancellation
        cannot keep the run (and the warehouse) waiting."""
        seconds = self.config.s3.deadline.total_seconds()

        async def bounded() -> object:
            scope = asyncio.timeout(seconds)
            try:
                async with scope:
                    return await call()
            except TimeoutError:
                if scope.expired():
                    return _EXPIRED
                raise  # the store's own timeout, reported as any other failure

        future = asyncio.run_coroutine_threadsafe(bounded(), self.fs.loop)
        done, _ = concurrent.futures.wait([future], timeout=seconds + _GRACE)
        if not done:
            future.cancel()
        result = future.result() if done else _EXPIRED
        if result is _EXPIRED:
            raise TransientSourceError(
                f"sources.{self.name}: {what} (no complete answer within the "
                f"{describe(seconds)} deadline of sources.{self.name}); run again later"
            )
        return result  # type: ignore[return-value]

    def _stored(self, path: str, info: dict[str, Any]) -> StoredFile:
        key = path[len(self.base) :].lstrip("/") if path.startswith(self.base) else path
        size = int(info.get("size") or 0)
        etag = info.get("ETag") or info.get("etag")
        modified = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
        if isinstance(modified, datetime):
            modified = modified.timestamp()
        stamp = float(modified) if modified is not None else None
        if etag:
            version = f"{size}:{str(etag).strip(chr(34))}"
        else:  # a rewrite that keeps size and mtime (cp -p, rsync -t) still changes ctime
            version = f"{size}:{stamp}:{info.get('created')}"
        return StoredFile(key, path, version, size, stamp)


def _reason(error: BaseException) -> str:
    """An error's first line, never longer than a line: store errors can be long XML."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]
