"""Checks of the staging mapping that need the engine: run by `validate` and at the start of
`run`, through the warehouse, never while the project file is read.

Today one: every selector is run over records whose fields hold odd values (a string where a
number is compared, an object, null). A selector the engine fails on would stop every window
of its stream, so it is refused up front with one line naming the model.
"""

from __future__ import annotations

import json

from anchorflow.config.project import Project
from anchorflow.config.staging import StagingModel
from anchorflow.errors import WarehouseError
from anchorflow.stage.sql import Structure
from anchorflow.warehouse import Warehouse

ODD_VALUES: list[object] = ["x", "", "1", "1.5", "true", "maybe", "2024-01-01", 1, -1.5, True,
                            None, {}, {"a": 1}, [], [1]]  # fmt: skip

# (dialect, selector SQL, structure) → the failure, or None: every run checks every selector
# again, and the answer never changes for one engine.
_CHECKED: dict[tuple[str, str, str], tuple[str, str] | None] = {}


def mapping_problems(warehouse: Warehouse, project: Project) -> list[str]:
    """One line per staging model whose mapping the engine cannot run."""
    problems = []
    for name, model in project.staging.items():
        failure = selector_failure(warehouse, model)
        if failure:
            problems.append(
                f"{project.file.name}: staging.{name}.selector: selector fails when a field "
                f"holds {failure[0]} ({failure[1]}); read such fields with TRY_CAST"
            )
    return problems


def selector_failure(warehouse: Warehouse, model: StagingModel) -> tuple[str, str] | None:
    """The odd value (as JSON) the model's selector fails on, and the engine's message."""
    structure = Structure(model, warehouse.sql)
    sql = structure.selector()
    if sql is None:
        return None
    key = (warehouse.dialect, sql, structure.transform())
    if key not in _CHECKED:
        _CHECKED[key] = _first_failure(warehouse, sql, structure)
    return _CHECKED[key]


def _first_failure(warehouse: Warehouse, sql: str, structure: Structure) -> tuple[str, str] | None:
    paths = [tuple(path) for path in structure.selector_paths]
    for value in ODD_VALUES:
        record: dict[str, object] = {}
        for path in paths:
            node = record
            for key in path[:-1]:
                child = node.setdefault(key, {})
                node = child if isinstance(child, dict) else {}
            node[path[-1]] = value
        try:
            warehouse.query(
                f"SELECT {sql} FROM (SELECT {structure.parse('CAST(? AS VARCHAR)')} AS s) AS r",
                [json.dumps(record)],
            )
        except WarehouseError as error:
            return json.dumps(value), str(error).splitlines()[0]
    return None
