"""Fraud rule files: their format, the built-in catalogue, and binding a rule to a window.

A rule is one SQL file: a header of `-- key: value` lines (YAML values) then one SELECT over
the inputs `clicks`, `registrations`, `events` and the data tables `dc_ranges`, `bot_agents`.
Everything a rule may read or bind is checked here, when the file is loaded, so a bad rule
fails with one line naming the file and the key before anything runs. Values reach the
engine as `?` parameters, never as SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlglot
import yaml
from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.qualify import qualify

from anchorflow.config.fraud import INPUT_COLUMNS as INPUT_TYPES
from anchorflow.errors import ConfigError
from anchorflow.project_types import IDENTIFIER, parse_duration

CATALOGUE = Path(__file__).parent / "catalogue"
DATA = Path(__file__).parent / "data"

# The contract's inputs: the only relations a rule reads besides the data tables.
INPUT_COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(columns) for name, columns in INPUT_TYPES.items()
}
DATA_COLUMNS: dict[str, tuple[str, ...]] = {
    "dc_ranges": ("start_ip", "end_ip", "provider", "category"),
    "bot_agents": ("pattern",),
}
WINDOW_PARAMS = ("window_start", "window_end", "lookback_start")
SEVERITIES = ("low", "medium", "high")
FLAGS = ("user", "event", "ip", "device")
# The output columns each flagged key needs (the contract's "Output columns").
FLAG_COLUMNS = {
    "user": ("user_id",),
    "event": ("event_id", "event_kind"),
    "ip": ("ip",),
    "device": ("device_id",),
}
KEYS = ("slug", "description", "version", "severity", "flags", "lookback", "inputs", "params")
HEADER_LINE = re.compile(r"^--\s*([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)$")
_MARKER = "anchorflow_param_"

Severity = Literal["low", "medium", "high"]
ParamValue = int | float | str | bool


@dataclass(frozen=True)
class Rule:
    """One rule file, checked: what it flags, what it reads, its parameters' defaults."""

    slug: str
    description: str
    version: int
    severity: Severity
    flags: tuple[str, ...]
    lookback: timedelta
    inputs: dict[str, tuple[str, ...]] = field(hash=False)
    params: dict[str, ParamValue] = field(hash=False)
    sql: str
    path: Path
    tables: tuple[str, ...]


class _Problem(Exception):
    """One thing wrong with a rule file: the key it is about and what is wrong."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


# -- loading -----------------------------------------------------------------------------------


def load_rule(path: Path) -> Rule:
    """The rule in `path`, or ConfigError with one line naming the file and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{path}: cannot read the rule file: {error}"]) from None
    try:
        return _rule(path, text)
    except _Problem as problem:
        raise ConfigError([f"{path}: {problem.key}: {problem}"]) from None


def _rule(path: Path, text: str) -> Rule:
    header, sql = _split(text)
    missing = [key for key in KEYS if key not in header]
    if missing:
        raise _Problem(missing[0], "missing from the header (every rule names all of "
                       f"{', '.join(KEYS)})")  # fmt: skip
    slug = _slug(header["slug"], path)
    inputs = _inputs(header["inputs"])
    params = _params(header["params"])
    flags = _flags(header["flags"])
    tree = _parse_select(sql)
    tables = _check_tables(tree, inputs)
    _check_columns_read(tree, inputs)
    _check_placeholders(tree, params)
    _check_output(tree, flags)
    return Rule(
        slug=slug,
        description=_text(header["description"], "description"),
        version=_version(header["version"]),
        severity=_severity(header["severity"]),
        flags=flags,
        lookback=_lookback(header["lookback"]),
        inputs=inputs,
        params=params,
        sql=sql,
        path=path,
        tables=tables,
    )


def _split(text: str) -> tuple[dict[str, Any], str]:
    """The header's keys with their YAML values, and the SQL after the header (the leading run
    of `--` and blank lines; a `--` line without `key:` is a comment)."""
    lines = text.splitlines()
    header: dict[str, Any] = {}
    end = 0
    for end, line in enumerate([*lines, "SELECT"]):  # noqa: B007  (a sentinel ends the header)
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            break
        match = HEADER_LINE.match(stripped)
        if not match:
            continue
        key, value = match.group(1), match.group(2)
        if key not in KEYS:
            raise _Problem(key, f"unknown key (the header takes {', '.join(KEYS)})")
        if key in header:
            raise _Problem(key, "given twice")
        if key == "description":  # a sentence, colons and all, unless written as YAML text
            header[key] = _description(value)
            continue
        try:
            header[key] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as error:
            problem = str(error).splitlines()[0]
            raise _Problem(key, f"not a YAML value: {problem}") from None
    return header, "\n".join(lines[end:]).strip()


def _description(value: str) -> str:
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = None
    return parsed if isinstance(parsed, str) else value.strip()


def _slug(value: Any, path: Path) -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise _Problem("slug", f"expected a name of letters, digits and _, got {value!r}")
    if value != path.stem:
        raise _Problem("slug", f"{value!r} differs from the file's name {path.stem!r}")
    return value


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Problem(key, f"expected a line of text, got {value!r}")
    return value.strip()


def _version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Problem("version", f"expected a whole number from 1, got {value!r}")
    return value


def _severity(value: Any) -> Severity:
    if value not in SEVERITIES:
        raise _Problem("severity", f"expected one of {', '.join(SEVERITIES)}, got {value!r}")
    return cast(Severity, value)


def _flags(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or any(f not in FLAGS for f in items):
        raise _Problem("flags", f"expected a list of some of {', '.join(FLAGS)}, got {value!r}")
    return tuple(f for f in FLAGS if f in items)


def _lookback(value: Any) -> timedelta:
    try:
        lookback = parse_duration(value)
    except ValueError as error:
        raise _Problem("lookback", str(error)) from None
    if lookback < timedelta(0):
        raise _Problem("lookback", f"must not be negative, got {value!r}")
    return lookback


def _inputs(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict) or not value:
        raise _Problem("inputs", f"expected a mapping of input to its columns, got {value!r}")
    inputs: dict[str, tuple[str, ...]] = {}
    for name, columns in value.items():
        if name not in INPUT_COLUMNS:
            raise _Problem("inputs", f"{name!r} is not an input (the inputs are "
                           f"{', '.join(INPUT_COLUMNS)})")  # fmt: skip
        if not isinstance(columns, list) or not columns:
            raise _Problem("inputs", f"{name}: expected a list of columns, got {columns!r}")
        unknown = [c for c in columns if c not in INPUT_COLUMNS[name]]
        if unknown:
            raise _Problem("inputs", f"{name} has no column {unknown[0]!r} (its columns: "
                           f"{', '.join(INPUT_COLUMNS[name])})")  # fmt: skip
        inputs[name] = tuple(columns)
    return inputs


def _params(value: Any) -> dict[str, ParamValue]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Problem("params", f"expected a mapping of name to default, got {value!r}")
    for name, default in value.items():
        if not isinstance(name, str) or not IDENTIFIER.match(name) or name in WINDOW_PARAMS:
            raise _Problem("params", f"{name!r} cannot name a parameter (letters, digits and "
                           f"_, not one of {', '.join(WINDOW_PARAMS)})")  # fmt: skip
        if not isinstance(default, int | float | str | bool):
            raise _Problem("params", f"{name}: a default is a number, text or true/false, "
                           f"got {default!r}")  # fmt: skip
    return dict(value)


# -- the SELECT --------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _parsed(sql: str) -> exp.Query:
    statements = [s for s in sqlglot.parse(sql, dialect="duckdb") if s is not None]
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ValueError(f"expected exactly one SELECT, found {len(statements)} statement(s)")
    return statements[0]


def _parse_select(sql: str) -> exp.Query:
    try:
        return _parsed(sql)
    except sqlglot.errors.ParseError as error:
        first = str(error).splitlines()[0]
        raise _Problem("sql", f"not valid DuckDB SQL: {first}") from None
    except ValueError as error:
        raise _Problem("sql", str(error)) from None


def _check_tables(tree: exp.Query, inputs: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The data tables the rule reads; any other table it reads must be an input it declares or
    one of its own CTEs."""
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    data: list[str] = []
    for table in tree.find_all(exp.Table):
        name = table.name
        if (
            table.args.get("db")
            or table.args.get("catalog")
            or not isinstance(table.this, exp.Identifier)
        ):
            raise _Problem("sql", f"reads {table.sql('duckdb')}: a rule reads only its inputs "
                           "and the data tables, by their bare names")  # fmt: skip
        if name in ctes or name in inputs:
            continue
        if name in DATA_COLUMNS:
            data.append(name)
            continue
        known = ", ".join([*inputs, *DATA_COLUMNS])
        raise _Problem("sql", f"reads table {name!r}, which is none of its inputs, the data "
                       f"tables or its CTEs ({known})")  # fmt: skip
    return tuple(sorted(set(data)))


def _check_columns_read(tree: exp.Query, inputs: Mapping[str, tuple[str, ...]]) -> None:
    """Every column the SQL reads from an input is declared under `inputs` (the fraud step
    builds each input with the declared columns only, renamed from the project's models)."""
    readable = {**inputs, **DATA_COLUMNS}
    tables: dict[str, object] = {n: dict.fromkeys(c, "VARCHAR") for n, c in readable.items()}
    try:
        qualify(tree.copy(), schema=tables, dialect="duckdb", validate_qualify_columns=True)
    except OptimizeError as error:
        first = str(error).splitlines()[0]
        raise _Problem("inputs", f"the SQL reads a column its inputs do not declare, or cannot "
                       f"tell whose column it is ({first})") from None  # fmt: skip


def _check_placeholders(tree: exp.Query, params: Mapping[str, ParamValue]) -> None:
    for placeholder in tree.find_all(exp.Placeholder):
        name = placeholder.args.get("this")
        if not isinstance(name, str) or not name:
            raise _Problem("sql", "a `?` placeholder: write :name for a parameter")
        if name not in params and name not in WINDOW_PARAMS:
            raise _Problem("sql", f":{name} is neither a parameter in params nor one of "
                           f"{', '.join(':' + p for p in WINDOW_PARAMS)}")  # fmt: skip


def _check_output(tree: exp.Query, flags: tuple[str, ...]) -> None:
    """The output names the key columns of its flags and `flagged_at`."""
    names = set(tree.named_selects)
    needed = [c for f in flags for c in FLAG_COLUMNS[f]] + ["flagged_at"]
    missing = [c for c in needed if c not in names]
    if missing:
        raise _Problem("sql", f"the SELECT lacks the output column {missing[0]!r} (flags "
                       f"{list(flags)} need {', '.join(needed)})")  # fmt: skip


# -- the catalogue -----------------------------------------------------------------------------


def catalogue(project_rules: Path | None = None) -> dict[str, Rule]:
    """The built-in rules, then a project folder's `*.sql` adding or overriding by slug."""
    rules = {rule.slug: rule for rule in map(load_rule, sorted(CATALOGUE.glob("*.sql")))}
    if project_rules is not None:
        if not project_rules.is_dir():
            raise ConfigError([f"{project_rules}: the rules folder does not exist"])
        for path in sorted(project_rules.glob("*.sql")):
            rule = load_rule(path)
            rules[rule.slug] = rule
    return dict(sorted(rules.items()))


# -- binding -----------------------------------------------------------------------------------


def bind(
    rule: Rule, params: Mapping[str, object], window_start: datetime, window_end: datetime
) -> tuple[exp.Query, list[object]]:
    """The rule's SELECT with every `:name` as a positional `?`, and the values in the order
    the placeholders appear in its SQL text."""
    values = _values(rule, params)
    start, end = _naive(window_start), _naive(window_end)
    values.update(window_start=start, window_end=end, lookback_start=start - rule.lookback)
    tree = _parsed(rule.sql).copy()
    placeholders = list(tree.find_all(exp.Placeholder))
    original = [placeholder.name for placeholder in placeholders]
    for i, placeholder in enumerate(placeholders):
        placeholder.set("this", f"{_MARKER}{i}_")
    text = tree.sql(dialect="duckdb")
    order = sorted(range(len(placeholders)), key=lambda i: text.index(f"{_MARKER}{i}_"))
    names = [original[i] for i in order]
    for placeholder in placeholders:
        placeholder.set("this", None)
    return tree, [values[name] for name in names]


def _values(rule: Rule, params: Mapping[str, object]) -> dict[str, object]:
    values: dict[str, object] = dict(rule.params)
    for name, value in params.items():
        if name not in rule.params:
            known = ", ".join(rule.params) or "none"
            raise ConfigError([f"rule {rule.slug}: unknown parameter {name!r} (its "
                               f"parameters: {known})"])  # fmt: skip
        values[name] = _typed(rule, name, value)
    return values


def _typed(rule: Rule, name: str, value: object) -> object:
    """`value` as the type of the parameter's default (an int is a fine float)."""
    default = rule.params[name]
    kind = type(default)
    fits = (
        isinstance(value, bool)
        if kind is bool
        else isinstance(value, int | float) and not isinstance(value, bool)
        if kind is float
        else isinstance(value, kind) and not isinstance(value, bool)
    )
    if not fits:
        raise ConfigError([f"rule {rule.slug}: parameter {name} expects {kind.__name__} "
                           f"(default {default!r}), got {value!r}"])  # fmt: skip
    return float(cast(float, value)) if kind is float else value


def _naive(moment: datetime) -> datetime:
    """A naive UTC datetime, as the inputs' `time` columns hold."""
    if moment.tzinfo is None:
        return moment
    return (moment - cast(timedelta, moment.utcoffset())).replace(tzinfo=None)


# -- data tables -------------------------------------------------------------------------------


def data_tables(folder: Path | None = None) -> dict[str, pa.Table]:
    """`dc_ranges` and `bot_agents` from the catalogue's data files (or `folder`'s), with the
    contract's columns: IP ranges as BIGINT numbers, patterns lower-case."""
    folder = folder or DATA
    return {
        "dc_ranges": _dc_ranges(folder / "dc_ranges.csv"),
        "bot_agents": _bot_agents(folder / "bot_agents.txt"),
    }


def ip_numbers(dotted: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Dotted IPv4 text as int64 numbers (a.b.c.d → a·2²⁴ + b·2¹⁶ + c·2⁸ + d)."""
    parts = pc.split_pattern(dotted, ".")
    if pc.any(pc.not_equal(pc.list_value_length(parts), 4)).as_py():
        raise ValueError("expected dotted IPv4 addresses a.b.c.d")
    flat = pc.cast(pc.list_flatten(parts), pa.int64()).to_numpy().reshape(-1, 4)
    if ((flat < 0) | (flat > 255)).any():
        raise ValueError("expected dotted IPv4 addresses with parts 0 to 255")
    return pa.array(flat @ [16777216, 65536, 256, 1], type=pa.int64())


def _dc_ranges(path: Path) -> pa.Table:
    string = pa.string()
    options = pacsv.ConvertOptions(column_types=dict.fromkeys(DATA_COLUMNS["dc_ranges"], string))
    try:
        raw = pacsv.read_csv(path, convert_options=options)
        missing = [c for c in DATA_COLUMNS["dc_ranges"] if c not in raw.column_names]
        if missing:
            raise ValueError(f"no column {missing[0]!r}")
        return pa.table({
            "start_ip": ip_numbers(raw["start_ip"]),
            "end_ip": ip_numbers(raw["end_ip"]),
            "provider": raw["provider"],
            "category": pc.utf8_lower(raw["category"]),
        })  # fmt: skip
    except (OSError, ValueError, pa.ArrowException) as error:
        raise ConfigError([f"{path}: cannot read the data-centre ranges: {error}"]) from None


def _bot_agents(path: Path) -> pa.Table:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{path}: cannot read the bot user agents: {error}"]) from None
    patterns = [ln.strip().lower() for ln in lines if ln.strip() and not ln.startswith("#")]
    return pa.table({"pattern": pa.array(patterns, type=pa.string())})
