"""The compiled views: the anchor model's perspectives (`anchor.views`, as the steps create
them) and the marts, views in the views file and tables (rebuilt whole) at the end of the load."""

from __future__ import annotations

from anchorflow.anchor.plan import SCHEMA, AnchorPlan
from anchorflow.anchor.serving import attribute_name, shown_type
from anchorflow.anchor.views import create_views
from anchorflow.compile.recorder import RecordingWarehouse
from anchorflow.config.project import Project
from anchorflow.marts import build_order, discover
from anchorflow.marts.plan import VIEW
from anchorflow.warehouse import table
from anchorflow.warehouse.compiled import NATIVE, CompileError, SqlOnlyDialect


def perspective_columns(plan: AnchorPlan) -> dict[str, list[tuple[str, str]]]:
    """The columns of each entity's latest perspective (and of its as-of function), by the
    view's name: id, the natural key, each attribute's shown value."""
    found = {}
    for name, entity in plan.entities.items():
        columns = [("id", "BIGINT"), *zip(entity.key, entity.key_types, strict=True)]
        columns += [(attribute_name(t), shown_type(plan, t)) for t in plan.attributes_of(name)]
        found[table(SCHEMA, name + "_latest")] = columns
    return found


def perspective_statements(plan: AnchorPlan, sql: SqlOnlyDialect) -> list[str]:
    recorder = RecordingWarehouse(sql)
    create_views(recorder, plan)
    return recorder.statements


def mart_statements(project: Project, sql: SqlOnlyDialect) -> tuple[list[str], list[str]]:
    """(view statements, load statements) of the marts, in build order; each statement is
    translated here so a construct the engine lacks names its mart's file. A view that reads a
    mart made by the load (a table, or a view over one) is made by the load too, after it: the
    engines check that a view's tables exist when it is created."""
    models = discover(project)
    views: list[str] = []
    tables: list[str] = []
    loaded: set[str] = set()
    for name in build_order(models):
        model = models[name]
        target = table("marts", name)
        if model.settings.materialization == VIEW:
            statement = sql.replace_view(target, model.sql)
        else:  # a table, or an incremental one: rebuilt whole (the same rows)
            statement = f"CREATE OR REPLACE TABLE {target} AS {model.sql}"
        try:
            native = sql.statements(statement)
        except CompileError as error:
            raise CompileError(f"{model.path}: {error}") from None
        if model.settings.materialization != VIEW or model.depends_on & loaded:
            loaded.add(name)
        (tables if name in loaded else views).extend(NATIVE + s for s in native)
    return views, tables
