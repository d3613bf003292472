"""How each mart is built and tested: `marts.models.<name>` in the project file, or the
`key: value` lines of the header comment of its SQL file.

```yaml
marts:
  path: models
  models:
    daily_active_users:
      materialized: incremental        # view | table (default) | incremental
      time_column: day                 # incremental: the mart's column that dates a row
      grain: day                       # incremental: hour | day (default) | week | month
      tests:                           # on the whole mart
        - unique: [day, platform]
        - row_count: {equals: staging.events, expression: sum(events)}
      columns:
        platform:
          description: iOS, Android or Web
          tests: [not_null, {accepted_values: [iOS, Android, Web]}]
```

The same keys may open the SQL file, one per line, each value written as YAML:

```sql
-- Daily active users by platform.
-- materialized: incremental
-- time_column: day
-- tests: [{unique: [day, platform]}]
```

Pure: pydantic, PyYAML and sqlglot; nothing here opens a database. Whether a test's columns
are the mart's is checked by `validate`, which binds every mart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator

from anchorflow.config.tables import sql_expression
from anchorflow.project_types import IDENTIFIER, Identifier, Strict

Materialization = Literal["view", "table", "incremental"]
Grain = Literal["hour", "day", "week", "month"]
Severity = Literal["error", "warn"]
# The schemas a relationship or a reconciliation may point into.
TEST_SCHEMAS = ("raw", "staging", "anchor", "marts")
# The header comment's keys that are settings (every other line describes the mart).
HEADER_KEYS = ("materialized", "time_column", "grain", "tests", "columns")
HEADER_LINE = re.compile(r"^(" + "|".join(HEADER_KEYS) + r")\s*:\s*(.*)$")
# Settings whose header value is a YAML list or mapping (`[...]`, `{...}`); other text is prose.
COLLECTIONS = ("tests", "columns")
TOLERANCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def _relation(value: Any) -> str:
    """`schema.table` of a table the test compares with (checked against the project later)."""
    parts = value.split(".") if isinstance(value, str) else []
    if len(parts) != 2 or parts[0] not in TEST_SCHEMAS or not IDENTIFIER.match(parts[1]):
        raise ValueError(
            f"expected a table as schema.name ({', '.join(TEST_SCHEMAS)}), got {value!r}"
        )
    return str(value)


Relation = Annotated[str, BeforeValidator(_relation)]
Condition = Annotated[str, BeforeValidator(lambda v: sql_expression(v, "a condition"))]
Expression = Annotated[str, BeforeValidator(lambda v: sql_expression(v, "an expression"))]


class _Test(Strict):
    severity: Severity = "error"


class NotNull(_Test):
    kind: Literal["not_null"] = "not_null"
    columns: list[Identifier] = Field(min_length=1)


class Unique(_Test):
    """The columns together identify a row (one column: that column is unique)."""

    kind: Literal["unique"] = "unique"
    columns: list[Identifier] = Field(min_length=1)


class AcceptedValues(_Test):
    kind: Literal["accepted_values"] = "accepted_values"
    columns: list[Identifier] = Field(min_length=1, max_length=1)
    values: list[str | int | float | bool] = Field(min_length=1)


class Relationships(_Test):
    """Every non-NULL value of the column is a value of `field` in the table `to`."""

    kind: Literal["relationships"] = "relationships"
    columns: list[Identifier] = Field(min_length=1, max_length=1)
    to: Relation
    field: Identifier


class RowCount(_Test):
    """The mart's `expression` (rows by default) equals the other table's `compare_expression`
    within `tolerance` (rows, or a percentage of the other table's value: `0.5%`)."""

    kind: Literal["row_count"] = "row_count"
    equals: Relation
    where: Condition | None = None
    compare_where: Condition | None = None
    expression: Expression = "count(*)"
    compare_expression: Expression = "count(*)"
    tolerance: str = "0"

    @field_validator("tolerance", mode="before")
    @classmethod
    def _tolerance(cls, value: object) -> str:
        if isinstance(value, bool) or not TOLERANCE.match(str(value)):
            raise ValueError(f"expected a number of rows or a percentage such as 1%, got {value!r}")
        return str(value).strip()

    def allowed(self, other: float) -> float:
        """The largest difference that passes, against the other table's value."""
        match = TOLERANCE.match(self.tolerance)
        assert match is not None
        amount = float(match.group(1))
        return abs(other) * amount / 100 if match.group(2) else amount


MartTest = Annotated[
    NotNull | Unique | AcceptedValues | Relationships | RowCount, Field(discriminator="kind")
]
KINDS = ("not_null", "unique", "accepted_values", "relationships", "row_count")
# A shorthand list in `{kind: [...]}` is the test's columns, or its values, or its table.
SHORTHAND = {"not_null": "columns", "unique": "columns", "accepted_values": "values"}


def _normalize(entry: Any, column: str | None) -> Any:
    """One test as written (`not_null`, `{unique: [a, b]}`, `{accepted_values: {values: [..],
    severity: warn}}`) as the mapping its model validates, with the column it is declared on."""
    if isinstance(entry, str):
        entry = {entry: {}}
    if not isinstance(entry, dict) or len(entry) != 1:
        return entry  # the union says what is wrong
    ((kind, args),) = entry.items()
    if kind not in KINDS:
        raise ValueError(f"unknown test {kind!r} (tests: {', '.join(KINDS)})")
    if args is None:
        args = {}
    if isinstance(args, list) and kind in SHORTHAND:
        args = {SHORTHAND[kind]: args}
    elif isinstance(args, str) and kind == "row_count":
        args = {"equals": args}
    if not isinstance(args, dict):
        raise ValueError(f"{kind}: expected its settings as a mapping, got {args!r}")
    args = dict(args)
    if "column" in args:
        args["columns"] = [args.pop("column")]
    if column is not None and kind != "row_count":
        if "columns" in args:
            raise ValueError(f"{kind}: declared on the column {column!r}: name no other columns")
        args["columns"] = [column]
    return {kind: {"kind": kind, **args}}


def _tests(value: Any, column: str | None) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"expected a list of tests, got {value!r}")
    return [_normalize(entry, column) for entry in value]


class ColumnSettings(Strict):
    description: str | None = None
    tests: list[dict[str, MartTest]] = []


class MartSettings(Strict):
    materialized: Materialization | None = None
    time_column: Identifier | None = None
    grain: Grain | None = None
    tests: list[dict[str, MartTest]] = []
    columns: dict[Identifier, ColumnSettings] = {}

    @model_validator(mode="before")
    @classmethod
    def _tests_as_written(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "tests" in data:
            data["tests"] = _tests(data["tests"], None)
        columns = data.get("columns")
        if isinstance(columns, dict):
            data["columns"] = {
                name: {**spec, "tests": _tests(spec.get("tests"), str(name))}
                if isinstance(spec, dict) else spec
                for name, spec in columns.items()
            }  # fmt: skip
        return data

    @model_validator(mode="after")
    def _incremental_needs_time(self) -> MartSettings:
        return self.checked()

    def checked(self) -> MartSettings:
        """Raise ValueError when the settings do not go together."""
        if self.materialized == "incremental" and not self.time_column:
            raise ValueError("materialized: incremental needs time_column: the mart's column "
                             "that dates each row (e.g. day)")  # fmt: skip
        if self.materialized != "incremental" and (self.time_column or self.grain):
            raise ValueError("time_column and grain are settings of materialized: incremental")
        return self

    def all_tests(self) -> list[MartTest]:
        """The mart's tests, then its columns' tests, in the order written."""
        found = [test for entry in self.tests for test in entry.values()]
        for column in self.columns.values():
            found += [test for entry in column.tests for test in entry.values()]
        return found

    @property
    def materialization(self) -> Materialization:
        return self.materialized or "table"

    @property
    def period(self) -> Grain:
        return self.grain or "day"


def header_settings(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The settings in the header comment of a mart's SQL file, as a mapping of the YAML
    values written, and the lines that describe it."""
    settings: dict[str, Any] = {}
    described: list[str] = []
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text.startswith("--"):
            break
        text = text.lstrip("-").strip()
        match = HEADER_LINE.match(text)
        key, value = match.groups() if match else ("", "")
        if not match or (key in COLLECTIONS and not value.startswith(("[", "{"))):
            described.append(text)  # prose such as "columns: day and platform"
            continue
        if key in settings:
            raise ValueError(f"its header sets {key} twice")
        try:
            settings[key] = yaml.safe_load(value) if value else None
        except yaml.YAMLError as error:
            problem = " ".join(str(getattr(error, "problem", error)).split())
            raise ValueError(f"its header's {key}: not a YAML value ({problem})") from None
    return settings, described


def merged_settings(path: Path, declared: MartSettings | None) -> MartSettings:
    """The header's settings with the project file's: a key may be set in one place only
    (tests add up)."""
    header, _ = header_settings(path)
    if not header:
        return declared or MartSettings()
    if declared is None:
        return _validated(header)
    clashes = sorted((set(header) & declared.model_fields_set) - {"tests"})
    if clashes:
        raise ValueError(
            f"{', '.join(clashes)} set both in its header and in the project file; keep one"
        )
    own = _validated(header)
    update = {key: getattr(own, key) for key in header if key != "tests"}
    combined = declared.model_copy(update={**update, "tests": own.tests + declared.tests})
    return combined.checked()


def _validated(data: dict[str, Any]) -> MartSettings:
    try:
        return MartSettings.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ValueError(f"its header: {where + ': ' if where else ''}{message}") from None
