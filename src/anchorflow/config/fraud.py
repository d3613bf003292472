"""The `fraud:` section: which tables the rule catalogue reads, and how each rule runs.

Rules never name a project's tables. They read three inputs, `clicks`, `registrations` and
`events`, with fixed column names (`INPUT_COLUMNS`); the project maps each input to one of its
tables (a staging model, an anchor perspective, a mart) and renames columns where its names
differ, or computes one with a SQL expression of its own (`{sql: "channel = 'server'"}`):

```yaml
fraud:
  inputs:
    clicks: {model: ad_clicks, columns: {time: clicked_at, user_agent: ua, sub_campaign: sub_id}}
    registrations: {model: signups, columns: {time: registered_at, sub_campaign: sub_id}}
    events: {table: staging.app_events, columns: {is_server: {sql: "channel = 'server'"}}}
  rules:
    multi_registration_ip: {params: {min_registrations: 4}}
    no_activity: {shadow: true}        # recorded, not counted in the report
    conversion_anomaly: {enabled: false}
  whitelist: {users: [qa-bot-1], ips: [10.0.0.0/8], campaigns: [internal]}
```

Pure: nothing here opens a database. Whether a rule's settings name a rule of the catalogue is
checked where the catalogue is read (`fraud.rules`).
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from anchorflow.config.tables import TableRef, sql_expression
from anchorflow.project_types import Duration, Identifier, Strict

# The columns each input has, with their types: what every rule may read.
INPUT_COLUMNS: dict[str, dict[str, str]] = {
    "clicks": {
        "click_id": "VARCHAR", "time": "TIMESTAMP", "ip": "VARCHAR", "user_agent": "VARCHAR",
        "device_id": "VARCHAR", "campaign": "VARCHAR", "sub_campaign": "VARCHAR",
        "country": "VARCHAR", "platform": "VARCHAR",
    },
    "registrations": {
        "user_id": "VARCHAR", "time": "TIMESTAMP", "click_id": "VARCHAR", "ip": "VARCHAR",
        "user_agent": "VARCHAR", "device_id": "VARCHAR", "device_model": "VARCHAR",
        "os_version": "VARCHAR", "campaign": "VARCHAR", "sub_campaign": "VARCHAR",
        "country": "VARCHAR", "platform": "VARCHAR",
    },
    "events": {
        "event_id": "VARCHAR", "user_id": "VARCHAR", "time": "TIMESTAMP",
        "event_type": "VARCHAR", "ip": "VARCHAR", "device_id": "VARCHAR",
        "user_agent": "VARCHAR", "country": "VARCHAR", "platform": "VARCHAR",
        "is_server": "BOOLEAN", "revenue": "DOUBLE",
    },
}  # fmt: skip
INPUTS = tuple(INPUT_COLUMNS)
ParamValue = bool | int | float | str


class ColumnSql(Strict):
    """An input column computed by an expression over the mapped table's columns (the
    project's own SQL, like a mart's)."""

    sql: str

    @field_validator("sql")
    @classmethod
    def _one_expression(cls, value: str) -> str:
        return sql_expression(value)


class FraudInput(TableRef):
    """One input: a staging model (`model:`) or any table the project makes (`table:
    anchor.User_latest`), and where its columns differ from the input's, their names here."""

    columns: dict[Identifier, Identifier | ColumnSql] = {}


class Whitelist(Strict):
    """What no rule may count as fraud: rows naming these stay in `fraud.rule_<slug>` marked
    `whitelisted`, and never reach `fraud_user` or `fraud_event`."""

    users: list[str] = []
    ips: list[str] = Field(default=[], description="IPv4 addresses or CIDR ranges")
    campaigns: list[str] = []

    @field_validator("ips")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                network = ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"expected an IPv4 address or range, got {value!r}") from None
            if network.version != 4:
                raise ValueError(f"only IPv4 ranges are read, got {value!r}")
        return values

    def ip_ranges(self) -> list[tuple[int, int]]:
        """Each range as (first, last) address numbers."""
        nets = [ipaddress.ip_network(value, strict=False) for value in self.ips]
        return [(int(n.network_address), int(n.broadcast_address)) for n in nets]


class RuleSettings(Strict):
    params: dict[Identifier, ParamValue] = {}
    shadow: bool = Field(
        default=False, description="record the rule's flags, but count them nowhere"
    )
    enabled: bool = True
    severity: Literal["low", "medium", "high"] | None = None


class FraudSettings(Strict):
    inputs: dict[Identifier, FraudInput] = {}
    rules_path: str = Field(
        default="rules", description="the project's own rules, <slug>.sql, beside the file"
    )
    rules: dict[Identifier, RuleSettings] = {}
    whitelist: Whitelist = Whitelist()
    event_lookback: Duration = Field(
        default=timedelta(days=7),
        description="how far before a user's flag their events count as fraud events",
    )
    user_entity: Identifier | None = Field(
        default=None,
        description="the anchor entity whose key is the inputs' user_id: `forget` of it "
        "removes the person from fraud.* too",
    )
    on_run: bool = Field(default=True, description="`anchorflow run` runs the rules after marts")

    @field_validator("inputs")
    @classmethod
    def _known_inputs(cls, value: dict[str, FraudInput]) -> dict[str, FraudInput]:
        for name in value:
            if name not in INPUT_COLUMNS:
                raise ValueError(f"no input {name!r}: the rules read {', '.join(INPUTS)}")
        return value

    @property
    def configured(self) -> bool:
        return bool(self.inputs)

    def input_problems(self, staging: dict[str, object]) -> list[str]:
        """One line per input that names a staging model the project lacks or renames a
        column the input does not have."""
        problems = []
        for name, spec in self.inputs.items():
            if spec.model is not None and spec.model not in staging:
                known = ", ".join(sorted(staging)) or "none"
                problems.append(
                    f"fraud.inputs.{name}.model: unknown staging model {spec.model!r} "
                    f"(staging: {known})"
                )
            for column in spec.columns:
                if column not in INPUT_COLUMNS[name]:
                    problems.append(
                        f"fraud.inputs.{name}.columns.{column}: input {name} has no column "
                        f"{column!r} (it has: {', '.join(INPUT_COLUMNS[name])})"
                    )
        return problems
