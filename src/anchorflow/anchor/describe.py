"""`anchorflow model`: the anchor model on one page, declaration and warehouse side by side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from anchorflow.anchor.plan import SCHEMA, AnchorPlan
from anchorflow.journal.anchor import unanchored_count
from anchorflow.warehouse import Warehouse, table


@dataclass(frozen=True)
class TableInfo:
    table: str
    kind: str  # entity | knot | attribute | tie
    detail: str  # key, type, history, roles
    source: str  # staging model(s)
    rows: int
    ids: int  # distinct ids (entities: rows)
    last_change: datetime | None  # latest changed_at (entities, knots: latest loaded_at)
    last_load: int | None
    pending_loads: int


def describe(wh: Warehouse, plan: AnchorPlan) -> list[TableInfo]:
    infos = []

    def pending(name: str, models: list[str]) -> int:
        return unanchored_count(wh, name, models)

    def stats(name: str, ids: str, when: str) -> tuple[int, int, datetime | None, int | None]:
        if not wh.table_exists(SCHEMA, name):
            return 0, 0, None, None
        row = wh.query(
            f"SELECT count(*), count(DISTINCT {ids}), max({when}), max(load_id) "
            f"FROM {table(SCHEMA, name)}"
        )[0]
        return int(row[0]), int(row[1]), row[2], row[3]

    for name, entity in plan.entities.items():
        rows, ids, last, load = stats(name, "id", "loaded_at")
        infos.append(TableInfo(
            name, "entity", "key " + ", ".join(entity.key), ", ".join(entity.sources),
            rows, ids, last, load, pending(name, list(entity.sources))))  # fmt: skip
    for name, knot in plan.knots.items():
        rows, ids, last, load = stats(name, "id", "loaded_at")
        models = sorted({m for m, _ in knot.feeders})
        infos.append(TableInfo(name, "knot", knot.type, ", ".join(models), rows, ids, last, load,
                               pending(name, models)))  # fmt: skip
    for name, target in plan.targets.items():
        if target.kind == "attribute":
            detail = f"{target.history} {target.value_type}" + (
                f" knot {target.knot}" if target.knot else ""
            )
        else:
            roles = [f"{r.role}→{r.entity}" for r in target.roles]
            detail = f"{target.effective_history} " + ", ".join(roles)
        rows, distinct, last, load = stats(name, target.key_columns[0], "changed_at")
        infos.append(TableInfo(name, target.kind, detail, target.model, rows, distinct, last,
                               load, pending(name, [target.model])))  # fmt: skip
    return infos
