"""Amplitude's hourly raw export as a source of `LandBatch`es, one per closed hour.

Only closed, available hours are due: hour H is exportable once `H + 1h + availability_delay`
has passed. Catching up asks for `hours_per_request` hours per call (halving on HTTP 400) but hands
them over hour by hour, in order, so the caller commits and advances the watermark per hour. A
corrupt ZIP or gzip member is downloaded again from the failing hour on; after
`download_attempts` tries it fails with the watermark still at that hour.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

from anchorflow.errors import TerminalSourceError
from anchorflow.project import AmplitudeSource, format_hour
from anchorflow.sources.amplitude.archive import CorruptExport, DecodedHour, ExportArchive
from anchorflow.sources.amplitude.client import Download, ExportClient, RangeTooLarge
from anchorflow.sources.base import RECORD_SCHEMA, LandBatch

log = logging.getLogger(__name__)
HOUR = timedelta(hours=1)


def last_available_hour(now: datetime, delay: timedelta) -> datetime:
    """The newest hour whose export is complete at `now` (naive UTC)."""
    closed = now - delay - HOUR
    return closed.replace(minute=0, second=0, microsecond=0)


def due_hours(first: datetime, now: datetime, delay: timedelta) -> list[datetime]:
    last = last_available_hour(now, delay)
    count = int((last - first) / HOUR) + 1
    return [first + i * HOUR for i in range(max(0, count))]


class AmplitudeExport:
    """Downloads and decodes hours of one Amplitude project."""

    def __init__(self, name: str, config: AmplitudeSource, client: ExportClient | None = None):
        self.name = name
        self.config = config
        self.client = client or ExportClient(name, config)
        self._hours_per_request = config.hours_per_request
        workers = config.decompress_workers or os.cpu_count() or 2
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="inflate")

    def close(self) -> None:
        self.client.close()
        self._pool.shutdown(wait=True)

    def batches(self, hours: list[datetime]) -> Iterator[LandBatch]:
        """One batch per hour, in order; re-downloads from a corrupt hour on."""
        pending = list(hours)
        failures = 0
        with tempfile.TemporaryDirectory(prefix="anchorflow-amplitude-") as tmp:
            while pending:
                chunk = pending[: self._hours_per_request]
                download = self._download(chunk, Path(tmp) / "export.zip")
                try:
                    for batch in self._decode(download, chunk):
                        yield batch
                        pending.remove(batch.window_start)
                        failures = 0
                except CorruptExport as error:
                    failures += 1
                    hour = format_hour(pending[0])
                    if failures >= self.config.download_attempts:
                        raise TerminalSourceError(
                            f"{self.name}: the export of hour {hour} is still corrupt after "
                            f"{failures} downloads ({error}); the watermark stays at {hour}"
                        ) from None
                    log.warning("%s: %s; downloading again from %s", self.name, error, hour)

    def _download(self, chunk: list[datetime], dest: Path) -> Download:
        """Download `chunk`, halving the hours per request while the API answers 400."""
        while True:
            end = chunk[-1]
            try:
                return self.client.download(chunk[0], end, dest)
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
        """Hours of `download`, decoding hour i+1 while the caller commits hour i."""
        covered = [h for h in chunk if h <= download.end]
        if download.path is None:  # 404: no data in the whole range
            for hour in covered:
                yield self._batch(hour, download, _empty(), 0.0)
            return
        archive = ExportArchive(download.path)
        try:
            stray = sorted(archive.hours() - set(covered))
            if stray:
                raise TerminalSourceError(
                    f"{self.name}: {download.request} returned files for hour "
                    f"{format_hour(stray[0])}, outside the requested range"
                )
            with ThreadPoolExecutor(1, thread_name_prefix="prefetch") as ahead:
                upcoming: Future[tuple[DecodedHour, float]] = ahead.submit(
                    self._timed_decode, archive, covered[0]
                )
                for i, hour in enumerate(covered):
                    decoded, seconds = upcoming.result()
                    if i + 1 < len(covered):
                        upcoming = ahead.submit(self._timed_decode, archive, covered[i + 1])
                    yield self._batch(hour, download, decoded, seconds)
        finally:
            archive.close()

    def _timed_decode(self, archive: ExportArchive, hour: datetime) -> tuple[DecodedHour, float]:
        started = time.perf_counter()
        return archive.decode_hour(hour, self._pool), time.perf_counter() - started

    def _batch(
        self, hour: datetime, download: Download, decoded: DecodedHour, seconds: float
    ) -> LandBatch:
        return LandBatch(
            source=self.name,
            stream=self.config.stream,
            window_start=hour,
            window_end=hour + HOUR,
            origin=download.request,
            records=decoded.records,
            files=decoded.files,
            bytes=decoded.bytes,
            rejected=decoded.rejected,
            timings={"decode": seconds},
        )


def _empty() -> DecodedHour:
    return DecodedHour(RECORD_SCHEMA.empty_table(), 0, 0, [])
