"""Value types shared by the project file's sections and by every source kind's config model.

Pure: pydantic and sqlglot only. The config layer and each `sources/<kind>/config.py` build on
these, so a source kind's settings read like every other section's.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlglot import exp

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
HOUR_FORMAT = "%Y%m%dT%H"


class Strict(BaseModel):
    """A section of the project file: unknown keys are errors, values never change after load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _identifier(value: Any) -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise ValueError(f"expected a name of letters, digits and _ (not first), got {value!r}")
    return value


Identifier = Annotated[str, BeforeValidator(_identifier)]


def parse_duration(value: Any) -> timedelta:
    """`90`, `90s`, `30m`, `2h`, `1d`, `250ms` as a timedelta."""
    if isinstance(value, timedelta):
        return value
    match = DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration such as 30s, 15m or 2h, got {value!r}")
    return timedelta(seconds=float(match.group(1)) * DURATION_UNITS[match.group(2)])


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def parse_hour(value: Any) -> datetime:
    """`YYYYMMDDTHH` (Amplitude's export format, and anchorflow's for hours) as a naive UTC
    datetime on the hour."""
    if isinstance(value, datetime):
        return value.replace(minute=0, second=0, microsecond=0, tzinfo=None)
    text = str(value)
    try:
        if not re.fullmatch(r"\d{8}T\d{2}", text):
            raise ValueError
        return datetime.strptime(text, HOUR_FORMAT)
    except ValueError:
        raise ValueError(f"expected YYYYMMDDTHH, got {text!r}") from None


def format_hour(hour: datetime) -> str:
    return hour.strftime(HOUR_FORMAT)


Hour = Annotated[datetime, BeforeValidator(parse_hour)]


def parse_instant(value: str) -> datetime:
    """A point in time for `--now`: `YYYYMMDDTHH` or ISO 8601, naive UTC."""
    if re.fullmatch(r"\d{8}T\d{2}", value):
        return parse_hour(value)
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"expected YYYYMMDDTHH or an ISO timestamp such as 2024-03-02T12:00, got {value!r}"
        ) from None
    if instant.tzinfo is not None:
        instant = (instant - instant.utcoffset()).replace(tzinfo=None)  # type: ignore[operator]
    return instant


class Retry(Strict):
    """Bounded exponential backoff with jitter, for 429, 5xx and timeouts."""

    attempts: int = Field(default=6, ge=1, le=50)
    base_delay: Duration = timedelta(seconds=1)
    max_delay: Duration = timedelta(seconds=60)


def canonical_type(value: str) -> str:
    """A SQL type as DuckDB spells it, or ValueError naming what is wrong."""
    try:
        sql = exp.DataType.build(value, dialect="duckdb").sql("duckdb")
    except Exception:  # sqlglot raises several kinds for a bad type
        raise ValueError(
            f"expected a SQL type such as VARCHAR or TIMESTAMP, got {value!r}"
        ) from None
    # sqlglot spells DuckDB's VARCHAR (and its aliases) TEXT; keep the name DuckDB and the
    # rest of anchorflow use (statistics, messages, the default type).
    return "VARCHAR" if sql == "TEXT" else sql
