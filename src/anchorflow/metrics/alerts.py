"""Threshold alerts on metrics: the latest complete period against a threshold or the period
before it, sent once per breach through the project's alert targets, and once more when it
clears.

A period is complete once it has ended (plus the alert's `lag`, for data that arrives late):
at 2024-03-05 10:00 with `grain: day`, the latest complete period is 2024-03-04, compared with
2024-03-03. `run` checks an alert after the marts only when the data it reads changed since its
last check, or a new period completed (`force` checks it anyway); `serve` calls
`check_metric_alerts` on its schedule. The alerts are queued on the sender: the caller delivers
them (`run` at its end, `metrics alerts` at once).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from anchorflow.alerts import Alert, AlertSender
from anchorflow.config.metrics import MetricAlert, MetricsConfig
from anchorflow.config.project import Project
from anchorflow.errors import ConfigError, WarehouseError
from anchorflow.journal.metric_alerts import (
    AlertState,
    alert_states,
    data_marks,
    forget_alerts_except,
    save_alert_states,
)
from anchorflow.journal.schema import utcnow
from anchorflow.metrics.plan import measures_of, reachable
from anchorflow.metrics.query import MetricQuery, parse_filter
from anchorflow.metrics.run import run_query
from anchorflow.warehouse import Warehouse

ADDITIVE = (
    "count",
    "count_distinct",
    "approx_count_distinct",
    "sum",
)  # no rows in a period: the value is 0


@dataclass(frozen=True)
class AlertCheck:
    alert: str
    metric: str
    series: str  # the values of its `by` dimensions ("country=DE"), '' without them
    state: str  # breached | ok | unchanged (its data did not change: not checked) | failed
    value: float | None  # the latest complete period's
    previous: float | None  # the period before's
    period: datetime | None  # the start of the latest complete period
    condition: str
    sent: str | None = None  # breach | resolved | None
    error: str | None = None


def period_start(instant: datetime, grain: str) -> datetime:
    """The start of the grain's period holding `instant` (weeks start on Monday)."""
    day = instant.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "hour":
        return instant.replace(minute=0, second=0, microsecond=0)
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return day.replace(day=1, month=(day.month - 1) // 3 * 3 + 1)
    return day.replace(day=1, month=1)


def shift(start: datetime, grain: str, periods: int) -> datetime:
    """The start of the period `periods` grains after (negative: before) `start`'s."""
    if grain in ("hour", "day", "week"):
        unit = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
        return start + unit[grain] * periods
    months = {"month": 1, "quarter": 3, "year": 12}[grain] * periods
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    return start.replace(year=year, month=month + 1, day=min(start.day, calendar.monthrange(
        year, month + 1)[1]))  # fmt: skip


def check_metric_alerts(
    warehouse: Warehouse,
    project: Project,
    sender: AlertSender,
    force: bool = False,
    now: datetime | None = None,
) -> list[AlertCheck]:
    """Check every alert of `metrics:` whose data changed (all with `force`), queue a breach
    or a recovery on `sender`, record each series' state; one alert's failure (its SQL) is its
    check's `error`, never the caller's."""
    section = project.metrics
    forget_alerts_except(warehouse, list(section.alerts))
    if not section.alerts:
        return []
    marks = data_marks(warehouse)
    instant = now or utcnow()
    checks: list[AlertCheck] = []
    for name, alert in section.alerts.items():
        try:
            checks += _check(warehouse, project, sender, name, alert, marks, instant, force)
        except (ConfigError, WarehouseError) as error:
            checks.append(
                AlertCheck(name, alert.metric, "", "failed", None, None, None,
                           alert.condition(), error=str(error).splitlines()[0])
            )  # fmt: skip
    return checks


def _check(
    warehouse: Warehouse,
    project: Project,
    sender: AlertSender,
    name: str,
    alert: MetricAlert,
    marks: dict[str, str],
    now: datetime,
    force: bool,
) -> list[AlertCheck]:
    current = period_start(now - alert.lag, alert.grain)
    latest, previous = shift(current, alert.grain, -1), shift(current, alert.grain, -2)
    mark = _data_mark(project.metrics, alert, marks) + f"@{latest.isoformat()}"
    stored = {s.series: s for s in alert_states(warehouse, name)}
    if not force and stored and all(s.data_mark == mark for s in stored.values()):
        return [_unchanged(name, alert, s) for s in stored.values()]
    values = _values(warehouse, project, alert, previous, current)
    series = list(dict.fromkeys([*sorted(values, key=str), *(
        s for s, state in stored.items() if state.state == "breached"
    )]))  # fmt: skip
    if not alert.by and not series:
        series = [""]
    zero = _additive(project.metrics, alert.metric)
    checks, states = [], []
    for key in series:
        by_period = values.get(key, {})
        value, before = (_or_zero(by_period.get(p), zero) for p in (latest, previous))
        check = _compared(name, alert, key, value, before, latest)
        old = stored.get(key)
        was = old is not None and old.state == "breached"
        sent = "breach" if check.state == "breached" and not was else None
        sent = "resolved" if check.state == "ok" and was else sent
        if sent is not None:
            sender.queue(_message(project, name, alert, check, sent, previous))
        checks.append(replace(check, sent=sent))
        states.append(
            AlertState(
                name, key, check.state, value, before, latest, mark, now,
                now if sent == "breach" else (old.breached_at if was and old else None),
                now if sent else (old.sent_at if old else None),
            )
        )  # fmt: skip
    save_alert_states(warehouse, name, states)
    return checks


def alert_query(
    alert: MetricAlert, start: date | None = None, end: date | None = None
) -> MetricQuery:
    """The query an alert compares: its metric by its grain and `by`, filtered by `where`."""
    return MetricQuery(
        metrics=(alert.metric,), by=tuple(alert.by), grain=alert.grain,
        where=tuple(parse_filter(text) for text in alert.where), start=start, end=end,
    )  # fmt: skip


def _values(
    warehouse: Warehouse, project: Project, alert: MetricAlert, start: datetime, end: datetime
) -> dict[str, dict[datetime, float | None]]:
    """Per series, per period start: the metric's value in the two periods compared."""
    result = run_query(warehouse, project, alert_query(alert, start, end))
    found: dict[str, dict[datetime, float | None]] = {}
    for row in result.rows:
        bucket, dims, value = row[0], row[1:-1], row[-1]
        key = ", ".join(
            f"{d}={'NULL' if v is None else v}" for d, v in zip(alert.by, dims, strict=True)
        )
        when = (
            bucket
            if isinstance(bucket, datetime)
            else datetime.combine(bucket, datetime.min.time())
        )
        found.setdefault(key, {})[when] = None if value is None else float(value)
    return found


def _compared(
    name: str, alert: MetricAlert, series: str, value: float | None, before: float | None,
    latest: datetime,
) -> AlertCheck:  # fmt: skip
    breached = False
    if value is not None and alert.above is not None:
        breached = value > alert.above
    elif value is not None and alert.below is not None:
        breached = value < alert.below
    elif alert.change is not None and value is not None and before:
        change = (value - before) / abs(before) * 100
        breached = change <= alert.change.by if alert.change.by < 0 else change >= alert.change.by
    state = "breached" if breached else "ok"
    return AlertCheck(name, alert.metric, series, state, value, before, latest, alert.condition())


def _unchanged(name: str, alert: MetricAlert, state: AlertState) -> AlertCheck:
    return AlertCheck(
        name, alert.metric, state.series, "unchanged", state.value, state.previous,
        state.period_start, alert.condition(),
    )  # fmt: skip


def _or_zero(value: float | None, zero: bool) -> float | None:
    """A count or a sum over no rows is 0 (SQL says NULL for a sum)."""
    return 0.0 if value is None and zero else value


def _additive(section: MetricsConfig, metric: str) -> bool:
    spec = section.metrics[metric]
    if spec.measure is None:
        return False
    model, measure = spec.model_and_measure
    return section.models[model].measures[measure].agg in ADDITIVE


def _data_mark(section: MetricsConfig, alert: MetricAlert, marks: dict[str, str]) -> str:
    """What the tables the alert reads hold, as the journal counts their loads."""
    models = {model for model, _ in measures_of(section, alert.metric)}
    tables = sorted({m for model in models for m in reachable(section, model)})
    parts = []
    for model in tables:
        schema, table = section.models[model].schema_and_name
        key = table if schema == "staging" else "*"
        parts.append(f"{schema}.{table}={marks.get(key, '-')}")
    return ";".join(parts)


def _message(
    project: Project, name: str, alert: MetricAlert, check: AlertCheck, sent: str,
    previous: datetime,
) -> Alert:  # fmt: skip
    metric = project.metrics.metrics[alert.metric]
    label = (metric.label or alert.metric) + (f" ({check.series})" if check.series else "")
    period = _shown_period(check.period, alert.grain)
    value = _number(check.value)
    if alert.change is not None and check.value is not None and check.previous:
        change = (check.value - check.previous) / abs(check.previous) * 100
        what = (
            f"{change:+.1f}% to {value} in {period} from {_number(check.previous)} in "
            f"{_shown_period(previous, alert.grain)}"
        )
    else:
        what = f"{value} in {period}"
    if sent == "breach":
        subject = f"{label}: {what} (alert {name}: {alert.condition()})"
    else:
        subject = f"resolved: {label}: {what} (alert {name}: {alert.condition()} no longer holds)"
    details: dict[str, Any] = {
        "alert": name, "metric": alert.metric, "series": check.series, "grain": alert.grain,
        "period": period, "value": check.value, "previous": check.previous,
        "condition": alert.condition(), "state": check.state,
    }  # fmt: skip
    if alert.description:
        details["description"] = alert.description
    return Alert("metric_alert" if sent == "breach" else "metric_alert_resolved", subject, details)


def _shown_period(start: datetime | None, grain: str) -> str:
    if start is None:
        return "-"
    shown = {"hour": start.strftime("%Y-%m-%d %H:00"), "week": f"the week of {start.date()}",
             "month": start.strftime("%Y-%m"), "quarter": f"{start.year}-Q{start.month // 3 + 1}",
             "year": str(start.year)}  # fmt: skip
    return shown.get(grain, start.date().isoformat())


def _number(value: float | None) -> str:
    return "no value" if value is None else f"{value:,.2f}".rstrip("0").rstrip(".")
