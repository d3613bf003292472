"""Suggesting a staging mapping from the records a stream landed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from anchorflow.config.project import Project
from anchorflow.config.staging import StagingModel, parse_selector
from anchorflow.errors import ConfigError
from anchorflow.land import raw_table_name
from anchorflow.stage.drift import column_name_for, sql_type_for
from anchorflow.stage.sql import Structure
from anchorflow.stage.stats import sample_filter
from anchorflow.warehouse import Warehouse, table
from anchorflow.warehouse.dialect import Dialect

SUGGEST_LIMIT = 200_000  # sampled records a suggestion reads at most


@dataclass(frozen=True)
class Stream:
    source: str
    stream: str

    @property
    def raw(self) -> str:
        return table("raw", raw_table_name(self.source, self.stream))


def resolve_stream(project: Project, name: str) -> Stream:
    """`source`, `source.stream` or the raw table's name (`source_stream`)."""
    for source, stream in project.streams():
        if name in {source, f"{source}.{stream}", raw_table_name(source, stream)}:
            return Stream(source, stream)
    known = ", ".join(f"{s}.{t}" for s, t in project.streams()) or "none"
    raise ConfigError([f"unknown stream {name!r} (streams: {known})"])


def suggest_mapping(
    warehouse: Warehouse,
    project: Project,
    stream_name: str,
    model: str | None = None,
    selector: str | None = None,
    sample_percent: float = 10.0,
) -> str:
    """A staging model for the stream's records, inferred from a sample, as YAML to paste.

    Every top-level field, and every key of top-level objects, becomes a column typed from the
    JSON types observed (strings that all parse as timestamps become TIMESTAMP).
    """
    stream = resolve_stream(project, stream_name)
    if not warehouse.table_exists("raw", raw_table_name(stream.source, stream.stream)):
        raise ConfigError(
            [
                f"raw.{raw_table_name(stream.source, stream.stream)} does not exist "
                "yet: run `anchorflow run` first"
            ]
        )
    where = "true"
    if selector:
        try:
            parse_selector(selector)
        except ValueError as error:
            raise ConfigError([f"--selector: {error}"]) from None
        where = _selector_where(selector, warehouse.sql)
    sql = warehouse.sql
    sample = f"""SELECT record FROM {stream.raw} WHERE {sample_filter(sample_percent, sql)}
                 AND {where} LIMIT {SUGGEST_LIMIT}"""
    rows = warehouse.query(
        f"""WITH s AS MATERIALIZED ({sample}),
        n AS (SELECT count(*) AS n FROM s),
        top AS (SELECT unnest({sql.map_keys("m")}) AS k, unnest({sql.map_values("m")}) AS v
                FROM (SELECT {sql.json_map("record")} AS m FROM s) AS r),
        nested AS (SELECT k || '.' || unnest({sql.map_keys("m")}) AS k,
                          unnest({sql.map_values("m")}) AS v
                   FROM (SELECT k, {sql.json_map("v")} AS m
                         FROM top WHERE {sql.json_type("v")} = 'OBJECT') AS o),
        fields AS (SELECT k, v, {sql.json_type("v")} AS t FROM top
                   WHERE {sql.json_type("v")} <> 'OBJECT'
                   UNION ALL SELECT k, v, {sql.json_type("v")} FROM nested)
        SELECT k, list(DISTINCT t) FILTER (t <> 'NULL'), count(*) FILTER (t <> 'NULL'),
               bool_and(t <> 'VARCHAR' OR TRY_CAST({sql.json_text("v")} AS TIMESTAMP)
                        IS NOT NULL) FILTER (t <> 'NULL'),
               {sql.approx_distinct("v")} FILTER (t <> 'NULL'), max(n.n)
        FROM fields CROSS JOIN n GROUP BY k ORDER BY k"""
    )
    if not rows:
        raise ConfigError(
            [
                f"no records in raw for {stream.source}.{stream.stream}"
                + (" matching the selector" if selector else "")
            ]
        )
    return _as_yaml(stream, model or stream.stream, selector, rows)


def _selector_where(selector: str, sql: Dialect) -> str:
    """The selector over raw records (each field read with its own JSON path)."""
    model = StagingModel(source="x", selector=selector, columns={})
    structure = Structure(model, sql)
    return (
        f"coalesce((SELECT {structure.selector_sql(selector)} FROM (SELECT "
        f"{structure.parse('record')} AS s) AS r), false)"
    )


def _as_yaml(stream: Stream, model: str, selector: str | None, rows: list[tuple[Any, ...]]) -> str:
    sampled = int(rows[0][5])
    names: dict[str, str] = {}
    for path, *_ in rows:
        name = column_name_for(path)
        if name in names.values() or name in {"load_id", "origin", "line_no"}:
            name = column_name_for(path.replace(".", "_"))
        names[path] = name
    lines = [f"  {model}:", f"    source: {stream.source}"]
    if selector:
        lines.append(f"    selector: {json.dumps(selector)}")
    unique = {r[0] for r in rows if r[2] == sampled and r[4] and r[4] >= 0.98 * sampled}
    key = next((k for k in ("uuid", "event_uuid", "event_id", "id") if k in unique), None)
    if key:
        lines.append(f"    unique_key: {names[key]}")
    lines.append("    columns:")
    for path, types, present, timestamps, _, _ in rows:
        name = names[path]
        sql_type = sql_type_for(types or [], bool(timestamps))
        share = f"{present / sampled:.0%}" if sampled else "0%"
        quoted = json.dumps(path) if not path.replace(".", "").replace("_", "").isalnum() else path
        lines.append(f"      {name}: {{path: {quoted}, type: {sql_type}}}  # present in {share}")
    header = (
        f"# suggested from {sampled:,} sampled records of raw.{stream.source}_"
        f"{stream.stream}; paste under `staging:` and adjust names, types and pii"
    )
    return "\n".join([header, "staging:", *lines]) + "\n"
