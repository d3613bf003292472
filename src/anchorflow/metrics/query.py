"""What is asked of the semantic layer (`MetricQuery`) and what it answers (`MetricResult`).

Filters come from a command line or a URL as text (`country = DE`, `country in (DE, FR)`);
`parse_filter` reads one. A value is a number where it reads as one, else text; quotes keep a
value text (`code = '042'`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from anchorflow.errors import ConfigError

OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "in", "not in")
_FILTER = re.compile(
    r"^\s*(?P<dim>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*"
    r"(?P<op>!=|<>|>=|<=|=|>|<|(?i:not\s+in)\b|(?i:in)\b)\s*(?P<value>.*?)\s*$"
)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Filter:
    dimension: str  # a dimension name (or the time dimension's name)
    op: str  # one of OPERATORS
    value: object  # a scalar, or a tuple for in / not in

    def text(self) -> str:
        """The filter as `parse_filter` reads it back."""
        if isinstance(self.value, tuple):
            shown = "(" + ", ".join(_shown(v) for v in self.value) + ")"
        else:
            shown = _shown(self.value)
        return f"{self.dimension} {self.op} {shown}"


def _shown(value: object) -> str:
    if isinstance(value, str) and (_NUMBER.match(value) or "," in value or not value.strip()):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def _value(text: str, where: str) -> object:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].replace(text[0] * 2, text[0])
    if not text:
        raise ConfigError([f"{where}: a value is missing"])
    if text[0] in "=<>!":
        raise ConfigError([f"{where}: one operator, then the value (quote a value that starts "
                           "with =, <, > or !)"])  # fmt: skip
    if _NUMBER.match(text):
        number = float(text)
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else number
    return text


def _split_list(text: str) -> list[str]:
    """`a, 'b, c', d` → the three values, commas inside quotes kept."""
    parts, current, quote = [], "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ",":
            parts.append(current)
            current = ""
            continue
        current += char
    return [*parts, current]


def parse_filter(text: str) -> Filter:
    """`country = DE`, `country in (DE, FR)`, `revenue >= 10`, `platform != ios`. ConfigError
    (one line) if bad."""
    where = f"filter {text!r}"
    match = _FILTER.match(text)
    if not match:
        raise ConfigError([
            f"{where}: expected <dimension> <operator> <value>, operators "
            f"{', '.join(OPERATORS)} (e.g. country = DE, country in (DE, FR))"
        ])  # fmt: skip
    op = " ".join(match["op"].lower().split())
    op = "!=" if op == "<>" else op
    raw = match["value"]
    if op in ("in", "not in"):
        if not (raw.startswith("(") and raw.endswith(")")):
            raise ConfigError([f"{where}: {op} takes a list in parentheses, e.g. (DE, FR)"])
        values = tuple(_value(part, where) for part in _split_list(raw[1:-1]))
        return Filter(match["dim"], op, values)
    return Filter(match["dim"], op, _value(raw, where))


@dataclass(frozen=True)
class MetricQuery:
    metrics: tuple[str, ...]  # metric names from `metrics:`; all on the same model (or joinable)
    by: tuple[str, ...] = ()  # dimension names
    grain: str | None = None  # "hour" | "day" | "week" | "month" | "quarter" | "year" or None
    where: tuple[Filter, ...] = ()
    start: date | None = None  # inclusive, on the time dimension
    end: date | None = None  # exclusive
    limit: int | None = None
    order: str | None = None  # None: by time bucket then dims; or a metric name (descending)


@dataclass(frozen=True)
class MetricResult:
    columns: list[str]  # [grain] + list(by) + list(metrics): the bucket is named after the grain
    rows: list[tuple[Any, ...]]
    sql: str  # the compiled SQL in the engine's dialect (with placeholders)
    params: list[Any]  # bound values
    seconds: float
    metrics: list[str] = field(default_factory=list)  # the metric columns, in order

    def records(self) -> list[dict[str, Any]]:
        """The rows as {column: value}."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: {columns, rows (objects), sql, params, seconds}; dates as ISO text,
        decimals as numbers (what `metrics query --format json` prints)."""
        return {
            "columns": self.columns,
            "rows": [{k: _plain(v) for k, v in r.items()} for r in self.records()],
            "sql": self.sql,
            "params": [_plain(p) for p in self.params],
            "seconds": round(self.seconds, 6),
        }


def _plain(value: object) -> object:
    if isinstance(value, date):  # a datetime too
        return value.isoformat()
    return float(value) if isinstance(value, Decimal) else value
