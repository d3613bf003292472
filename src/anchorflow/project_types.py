"""Value types shared by the project file's sections and by every source kind's config model.

Pure: pydantic and sqlglot only. The config layer and each `sources/<kind>/config.py` build on
these, so a source kind's settings read like every other section's.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

import sqlglot
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlglot import exp

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
JSON_KEY = re.compile(r"^[A-Za-z0-9_$@\- ]{1,128}$")
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
HOUR_FORMAT = "%Y%m%dT%H"
MEMORY_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*[KMGT]i?B\s*$")  # DuckDB's: 3GB, 512MiB


class Strict(BaseModel):
    """A section of the project file: unknown keys are errors, values never change after load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _identifier(value: Any) -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise ValueError(f"expected a name of letters, digits and _ (not first), got {value!r}")
    return value


Identifier = Annotated[str, BeforeValidator(_identifier)]


def check_json_path(value: Any) -> str:
    """A dotted path of plain JSON keys (`event_properties.amount`), as the engine reads it."""
    parts = value.split(".") if isinstance(value, str) else [None]
    if not all(isinstance(p, str) and JSON_KEY.match(p) for p in parts):
        raise ValueError(f"expected a dotted JSON path of plain keys, got {value!r}")
    return str(value)


JsonPath = Annotated[str, BeforeValidator(check_json_path)]


def check_memory_size(value: Any) -> str:
    """A memory size as DuckDB reads it: `3GB`, `512MB`, `1.5GiB`."""
    if not isinstance(value, str) or not MEMORY_SIZE.match(value):
        raise ValueError(f"expected a memory size such as 3GB or 512MB, got {value!r}")
    return value.strip()


MemorySize = Annotated[str, BeforeValidator(check_memory_size)]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B|bytes)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "bytes": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}  # fmt: skip


def size_bytes(size: str) -> int:
    """Bytes of a memory size ("3GB", "512MiB", "18.6 GiB" as DuckDB prints it); ValueError
    when it is none."""
    found = _SIZE.match(size)
    if not found:
        raise ValueError(f"not a memory size: {size!r} (expected e.g. 3GB or 512MB)")
    return int(float(found.group(1)) * _UNITS[(found.group(2) or "").lower()])


def smaller_size(first: str | None, second: str | None) -> str | None:
    """The lower of two memory sizes; None stands for no limit."""
    if first is None or second is None:
        return first or second
    return first if size_bytes(first) <= size_bytes(second) else second


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
    """A SQL type as DuckDB spells it, or ValueError naming what is wrong.

    The type is read the way the engine will read it, inside `CAST(NULL AS <type>)`: anything
    after the type (`VARCHAR); DROP TABLE x; --`), a comment, a type the engine does not know
    or a DECIMAL it cannot hold is refused, never cut off or passed on.
    """
    cast = _parsed_cast(value)
    for node in cast.to.find_all(exp.DataType):
        if node.this in {exp.DataType.Type.USERDEFINED, exp.DataType.Type.NULL}:
            raise ValueError(f"expected a SQL type such as VARCHAR or TIMESTAMP, got {value!r}")
        if node.this == exp.DataType.Type.DECIMAL:
            _check_decimal(value, node)
    sql = cast.to.sql("duckdb")
    # sqlglot spells DuckDB's VARCHAR (and its aliases) TEXT; keep the name DuckDB and the
    # rest of anchorflow use (statistics, messages, the default type).
    return "VARCHAR" if sql == "TEXT" else sql


def _parsed_cast(value: Any) -> exp.Cast:
    """`value` as the type of `SELECT CAST(NULL AS <value>)`: one statement, one cast, nothing
    else (no trailing clause, statement or comment)."""
    expected = f"expected a SQL type such as VARCHAR or TIMESTAMP, got {value!r}"
    if not isinstance(value, str) or not value.strip():
        raise ValueError(expected)
    try:
        statements = sqlglot.parse(f"SELECT CAST(NULL AS {value})", dialect="duckdb")
    except Exception:  # sqlglot raises several kinds for text that is no type
        raise ValueError(expected) from None
    (select, *rest) = statements or [None]
    alone = isinstance(select, exp.Select) and not rest and len(select.expressions) == 1
    cast = select.expressions[0] if alone and select else None
    clauses = [k for k, v in (select.args.items() if select else []) if v and k != "expressions"]
    if not isinstance(cast, exp.Cast) or not isinstance(cast.this, exp.Null) or clauses:
        raise ValueError(f"{expected}: only the type may be written, nothing after it")
    if any(node.comments for node in select.walk()):  # type: ignore[union-attr]
        raise ValueError(f"{expected}: a comment is not part of a type")
    return cast


def _check_decimal(value: str, node: exp.DataType) -> None:
    """DECIMAL(p, s) as DuckDB holds it: precision 1 to 38, scale 0 to the precision."""
    params = [p.this for p in node.expressions]
    if len(params) > 2 or not all(isinstance(p, exp.Literal) and p.is_int for p in params):
        raise ValueError(
            f"{value!r}: DECIMAL takes a precision and a scale, whole numbers: DECIMAL(18, 3)"
        )
    precision, scale = [int(p.name) for p in params] + [18, 3][len(params) :]
    scale = 0 if len(params) == 1 else scale
    if not 1 <= precision <= 38:
        raise ValueError(f"{value!r}: a DECIMAL's precision must be 1 to 38, not {precision}")
    if not 0 <= scale <= precision:
        raise ValueError(
            f"{value!r}: a DECIMAL's scale must be 0 to its precision ({precision}), not {scale}"
        )


def _cron_schedule(value: Any) -> str:
    from anchorflow.cron import Cron, CronError

    if not isinstance(value, str):
        raise ValueError("a schedule is cron text, e.g. '0 * * * *' (every hour)")
    try:
        Cron.parse(value)
    except CronError as error:
        raise ValueError(str(error)) from None
    return value


# A source's `schedule:` (five cron fields, UTC): when `anchorflow serve` runs its load.
CronSchedule = Annotated[str, BeforeValidator(_cron_schedule)]
