"""Downloading and decoding hours of Amplitude's export, one `LandBatch` per hour, in order.

Catching up asks for `hours_per_request` hours per call (halving on HTTP 400) but hands
them over hour by hour, in order, so the caller commits and advances the watermark per hour. A
corrupt ZIP or gzip member is downloaded again from the failing hour on; after
`download_attempts` tries it fails with the watermark still at that hour.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from anchorflow.errors import TerminalSourceError, TransientSourceError
from anchorflow.project_types import format_hour
from anchorflow.sources.amplitude.archive import CorruptExport, ExportArchive
from anchorflow.sources.amplitude.client import Cancelled, Download, ExportClient, RangeTooLarge
from anchorflow.sources.amplitude.config import AmplitudeConfig
from anchorflow.sources.base import RECORD_SCHEMA, LandBatch, Window
from anchorflow.sources.lines import Piece
from anchorflow.sources.prefetch import Prefetch

log = logging.getLogger(__name__)
HOUR = timedelta(hours=1)
PREFETCH_HOURS = 2  # hours (or parts) decoded or decoding ahead of the one the caller holds
EMPTY_ARCHIVE = (
    "the export was an empty archive (HTTP 200); the real API answers 404 for no data, "
    "so the hour may be missing: check it in Amplitude, then backfill it"
)


class AmplitudeExport:
    """Downloads and decodes hours of one Amplitude project."""

    def __init__(
        self,
        name: str,
        config: AmplitudeConfig,
        work_dir: Path,
        client: ExportClient | None = None,
    ):
        """`work_dir` is the project's scratch space: downloads go there, never to /tmp."""
        self.name = name
        self.config = config
        self.work_dir = work_dir
        self.client = client or ExportClient(name, config)
        self._hours_per_request = config.hours_per_request
        self._download_seconds = 0.0

    def close(self) -> None:
        self.client.close()

    def batches(self, hours: list[datetime]) -> Prefetch[LandBatch]:
        """One batch per hour, in order, while the next hours download and decode.

        A producer thread downloads and decodes ahead of the caller, across request boundaries,
        holding at most `PREFETCH_HOURS` decoded hours (or parts) beyond the caller's; an error
        reaches the caller after the hours decoded before it, so those still commit. The
        export's HTTP client is closed when the batches end or are closed.
        """
        return Prefetch(partial(self._produce, hours), PREFETCH_HOURS, "amplitude")

    def _produce(self, hours: list[datetime], stop: threading.Event) -> Iterator[LandBatch]:
        try:
            yield from self._download_and_decode(hours, stop)
        except Cancelled:  # the caller stopped: nobody waits for the rest
            return
        finally:
            self.close()

    def _download_and_decode(
        self, hours: list[datetime], stop: threading.Event
    ) -> Iterator[LandBatch]:
        """Hours in order; a corrupt hour is downloaded again, from that hour on."""
        pending = list(hours)
        failures = 0
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"{self.name}-", dir=self.work_dir) as tmp:
            while pending:
                chunk = pending[: self._hours_per_request]
                started = time.perf_counter()
                download = self._download(chunk, Path(tmp) / "export.zip", stop)
                self._download_seconds = time.perf_counter() - started
                in_parts = False  # parts of the current hour were handed over already
                try:
                    for batch in self._decode(download, chunk):
                        yield batch
                        in_parts = not batch.last
                        if batch.last:
                            pending.remove(batch.window.start)  # type: ignore[arg-type]  # an hour's window has a start
                            failures = 0
                except CorruptExport as error:
                    failures += 1
                    hour = format_hour(pending[0])
                    if in_parts:  # its parts cannot be landed twice: the hour rolls back
                        raise TransientSourceError(
                            f"{self.name}: {error}; hour {hour}, in parts, was not committed "
                            f"and the watermark stays at {hour}: run again"
                        ) from None
                    if failures >= self.config.download_attempts:
                        raise TerminalSourceError(
                            f"{self.name}: the export of hour {hour} is still corrupt after "
                            f"{failures} downloads ({error}); the watermark stays at {hour}"
                        ) from None
                    log.warning("%s: %s; downloading again from %s", self.name, error, hour)

    def _download(self, chunk: list[datetime], dest: Path, stop: threading.Event) -> Download:
        """Download `chunk`, halving the hours per request while the API answers 400."""
        while True:
            end = chunk[-1]
            try:
                return self.client.download(chunk[0], end, dest, stop)
            except RangeTooLarge:
                if len(chunk) == 1:
                    raise
                self._hours_per_request = (len(chunk) + 1) // 2  # 6 → 3 → 2: round up
                chunk = chunk[: self._hours_per_request]
                log.warning(
                    "%s: range too large, asking for %d hours per request",
                    self.name,
                    self._hours_per_request,
                )

    def _decode(self, download: Download, chunk: list[datetime]) -> Iterator[LandBatch]:
        covered = [h for h in chunk if h <= download.end]
        if download.path is None:  # 404: no data in the whole range
            for hour in covered:
                yield self._batch(hour, download, Piece(RECORD_SCHEMA.empty_table()), 0, True)
            return
        archive = ExportArchive(download.path)
        try:
            stray = sorted(archive.hours() - set(covered))
            if stray:
                raise TerminalSourceError(
                    f"{self.name}: {download.request} returned files for hour "
                    f"{format_hour(stray[0])}, outside the requested range"
                )
            # An archive with no member at all is not how the API says "no data" (404):
            # the hours still commit (they may be empty), with a note in their load records.
            note = None if archive.hours() else EMPTY_ARCHIVE
            for hour in covered:
                parts = archive.hour_parts(hour, self.config.limits)
                for number in itertools.count():
                    started = time.perf_counter()
                    item = next(parts, None)
                    if item is None:
                        break
                    piece, last = item
                    batch = self._batch(hour, download, piece, number, last, note)
                    batch.timings["decode"] = time.perf_counter() - started
                    yield batch
        finally:
            archive.close()

    def _batch(
        self,
        hour: datetime,
        download: Download,
        piece: Piece,
        part: int,
        last: bool,
        note: str | None = None,
    ) -> LandBatch:
        return LandBatch(
            source=self.name,
            window=hour_window(self.config.stream, hour),
            origin=download.request,
            records=piece.records,
            files=piece.files,
            bytes=piece.bytes,
            rejected=piece.rejected,
            timings={"download": self._take_download_seconds()},
            part=part,
            last=last,
            note=note,
        )

    def _take_download_seconds(self) -> float:
        """The chunk's download time, reported once: with the first hour of the chunk."""
        seconds, self._download_seconds = self._download_seconds, 0.0
        return seconds


def hour_window(stream: str, hour: datetime) -> Window:
    """The window of one hour: its key is the hour as YYYYMMDDTHH."""
    return Window(stream, format_hour(hour), hour, hour + HOUR)
