"""What every source hands to the land stage: a window of records as Arrow, plus where from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

# The columns of `LandBatch.records`: the file (or chunk) a record came from, its 1-based line
# number there, and its text exactly as it arrived (a string view into the inflated file).
RECORD_SCHEMA = pa.schema(
    [("origin", pa.string()), ("line_no", pa.int64()), ("record", pa.string_view())]
)


@dataclass(frozen=True)
class Rejected:
    """A record that never became a string of text (for example invalid UTF-8)."""

    origin: str
    line_no: int
    reason: str
    text: str


@dataclass
class LandBatch:
    """One window of a source stream, committed as one load."""

    source: str
    stream: str
    window_start: datetime
    window_end: datetime
    origin: str  # the request or object that delivered the window
    records: pa.Table
    files: int = 0
    bytes: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(self.records.num_rows)
