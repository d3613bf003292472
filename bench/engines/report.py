"""The ratios between the engines benchmark's rows, and its table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(width=160)


def rate(row: dict[str, Any]) -> float | None:
    """What a row is compared on: observations/s for the anchor step, events/s for an ingest."""
    value = row.get("observations_per_s" if row["step"] == "anchor" else "events_per_s")
    return float(value) if value else None


def _ratio(top: dict[str, Any] | None, bottom: dict[str, Any] | None) -> float | None:
    high, low = (rate(top) if top else None), (rate(bottom) if bottom else None)
    return high / low if high and low else None


def ratios(rows: list[dict[str, Any]]) -> None:
    """On each PostgreSQL row, its rate over its DuckDB counterpart's (`pg_over_duckdb`: for the
    dlt loaders, over dlt's duckdb destination); on each dlt row, anchorflow's events/s on the
    same engine over the row's (`anchorflow_x`: anchorflow-PG / dlt-PG on the postgres rows)."""
    by_name = {r["contender"]: r for r in rows}
    for row in rows:
        name = row["contender"]
        if row["engine"] == "postgres":
            twin = name.replace("postgres", "duckdb")
            row["pg_over_duckdb"] = _ratio(row, by_name.get(twin))
        if name.startswith("dlt"):
            row["anchorflow_x"] = _ratio(by_name.get(f"anchorflow_{row['engine']}"), row)


def _number(value: Any, spec: str = ",.0f") -> str:
    return "" if value is None else format(value, spec)


COLUMNS = ["contender", "events", "seconds", "events/s", "observations", "obs/s", "MB/s",
           "peak MB", "cpu s", "server cpu s", "MB stored", "PG / DuckDB",
           "anchorflow ×"]  # fmt: skip


def show(report: dict[str, Any]) -> None:
    """Failed contenders have a row that says so; their errors are printed under the table."""
    table = Table(
        title=f"{report['events']:,} Amplitude events ({report['json_mb']:,.0f} MB of JSON) on "
        "DuckDB and PostgreSQL",
        caption="obs: rows written to the anchor tables; server cpu s: PostgreSQL's; PG / DuckDB:"
        " obs/s for the anchor step, else events/s; anchorflow ×: anchorflow's events/s on the "
        "same engine over the row's",
    )
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "contender" else "right",
                         no_wrap=True)  # fmt: skip
    for r in report["rows"]:
        if "error" in r:
            table.add_row(r["contender"], "failed", *[""] * (len(COLUMNS) - 2))
            continue
        table.add_row(
            r["contender"], _number(r["events"]), _number(r["seconds"], ".1f"),
            _number(r["events_per_s"]), _number(r.get("observations")),
            _number(r.get("observations_per_s")), _number(r.get("mb_per_s"), ".1f"),
            _number(r["peak_mb"]), _number(r["cpu_seconds"], ".1f"),
            _number(r.get("server_cpu_seconds"), ".1f"), _number(r.get("stored_mb")),
            _number(r.get("pg_over_duckdb"), ".2f"), _number(r.get("anchorflow_x"), ".2f"),
        )  # fmt: skip
    console.print(table)
    for r in report["rows"]:
        if "error" in r:
            console.print(f"{r['contender']} failed: {r['error']}", highlight=False, markup=False)
