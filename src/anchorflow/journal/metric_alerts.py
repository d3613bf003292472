"""`meta.metric_alerts`: the state of each threshold alert of `metrics:`, per series (one per
value of its `by` dimensions; '' without them): breached or ok, the values last compared, when
it was last checked and last sent, and the mark of the data it read then (`data_mark`), so that
`run` checks it again only when that data changed.

The mark is read from the journal (cheap on any warehouse size): per staging model, how many
loads were typed into it, the newest one and their rows; a mart or an anchor table is made
from every staging model, so its mark is theirs together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from anchorflow.warehouse import Warehouse

TABLE_DDL = """CREATE TABLE IF NOT EXISTS meta.metric_alerts (
        alert VARCHAR NOT NULL,
        series VARCHAR NOT NULL,
        state VARCHAR NOT NULL,
        value DOUBLE,
        previous DOUBLE,
        period_start TIMESTAMP,
        data_mark VARCHAR,
        checked_at TIMESTAMP NOT NULL,
        breached_at TIMESTAMP,
        sent_at TIMESTAMP)"""


@dataclass(frozen=True)
class AlertState:
    alert: str
    series: str
    state: str  # ok | breached
    value: float | None
    previous: float | None
    period_start: datetime | None
    data_mark: str | None
    checked_at: datetime
    breached_at: datetime | None
    sent_at: datetime | None


def alert_states(warehouse: Warehouse, alert: str | None = None) -> list[AlertState]:
    """The recorded states, of one alert or of all, by alert and series."""
    rows = warehouse.query(
        "SELECT alert, series, state, value, previous, period_start, data_mark, checked_at, "
        "breached_at, sent_at FROM meta.metric_alerts "
        "WHERE CAST(? AS VARCHAR) IS NULL OR alert = ? ORDER BY alert, series",
        [alert, alert],
    )
    return [AlertState(*row) for row in rows]


def save_alert_states(warehouse: Warehouse, alert: str, states: list[AlertState]) -> None:
    """Replace the alert's rows by `states`, in one transaction."""
    with warehouse.transaction():
        warehouse.execute("DELETE FROM meta.metric_alerts WHERE alert = ?", [alert])
        for s in states:
            warehouse.execute(
                "INSERT INTO meta.metric_alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [s.alert, s.series, s.state, s.value, s.previous, s.period_start, s.data_mark,
                 s.checked_at, s.breached_at, s.sent_at],
            )  # fmt: skip


def forget_alerts_except(warehouse: Warehouse, alerts: list[str]) -> None:
    """Drop the states of alerts the project no longer has."""
    warehouse.execute("DELETE FROM meta.metric_alerts WHERE NOT list_contains(?, alert)", [alerts])


def data_marks(warehouse: Warehouse) -> dict[str, str]:
    """Per staging model, `<loads>/<newest load>/<rows>` typed into it; under '*', the same
    over every model (what a mart or an anchor table is made from)."""
    rows = warehouse.query(
        "SELECT coalesce(model, '*'), count(*), max(load_id), sum(staged) FROM meta.transfers "
        "GROUP BY GROUPING SETS ((model), ())"
    )
    return {str(r[0]): f"{r[1]}/{r[2]}/{r[3]}" for r in rows}
