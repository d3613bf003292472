"""What each table and column of the warehouse means, from the project file.

Pure: every `description:` of the file (staging models and columns, entities, attributes, knots,
ties), the header comment of each mart's SQL file, and a fixed sentence for each column that
anchorflow adds itself (`load_id`, `changed_at`, ...). The same text becomes the warehouse's
comments (`COMMENT ON`) and the descriptions of a dbt `sources.yml`, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from anchorflow.config.anchor import Attribute, Entity, Tie, role_column
from anchorflow.config.mart_settings import header_settings
from anchorflow.config.marts import mart_files
from anchorflow.config.project import Project


@dataclass(frozen=True)
class TableDoc:
    """A table's (or view's) description and its columns' descriptions, by column name."""

    description: str | None = None
    columns: dict[str, str] = field(default_factory=dict)


RAW_COLUMNS = {
    "load_id": "the id of the load that brought the record",
    "source": "the source that delivered the record",
    "stream": "the source's stream",
    "origin": "the file, chunk or request the record came from",
    "line_no": "the record's line in its origin",
    "received_at": "when anchorflow received the record (UTC)",
    "record": "the record as it arrived: its JSON text",
}
LOAD_ID = "the id of the load that brought the row"


def raw_docs(project: Project) -> dict[str, TableDoc]:
    return {
        f"{source}_{stream}": TableDoc(
            f"every record of {source}'s {stream} stream as it arrived", dict(RAW_COLUMNS)
        )
        for source, stream in project.streams()
    }


def staging_docs(project: Project) -> dict[str, TableDoc]:
    found = {}
    for name, model in project.staging.items():
        columns = {"load_id": LOAD_ID}
        if model.explode:
            columns[model.explode.position] = (
                f"the element's position in {model.explode.path}, from 0"
            )
        columns |= {c: s.description for c, s in model.stored_columns.items() if s.description}
        found[name] = TableDoc(model.description, columns)
    return found


def anchor_docs(project: Project) -> dict[str, TableDoc]:
    spec = project.anchor
    found: dict[str, TableDoc] = {}
    for name, knot in spec.knots.items():
        found[name] = TableDoc(
            knot.description or f"the values of {name}, each stored once",
            {"id": f"surrogate key of a {name} value", "value": f"the {name} value"},
        )
    for name, entity in spec.entities.items():
        found |= _entity_docs(project, name, entity)
    for name, tie in spec.ties.items():
        found[name] = _tie_doc(name, tie)
    return found


def _entity_docs(project: Project, name: str, entity: Entity) -> dict[str, TableDoc]:
    keys = {k: f"natural key of the {name}" for k in entity.key}
    own = TableDoc(
        entity.description or f"one row per {name}: its surrogate id and natural key",
        {"id": f"surrogate key of the {name}"} | keys | {
            "load_id": f"the load that first brought the {name}",
            "loaded_at": "when the row was anchored (UTC)",
        },
    )  # fmt: skip
    attributes = {
        a: _attribute_text(project, name, a, spec) for a, spec in entity.attributes.items()
    }
    found = {name: own}
    for attr, text in attributes.items():
        spec = entity.attributes[attr]
        value = f"id of the value in anchor.{spec.knot}" if spec.knot else text
        found[f"{name}_{attr}"] = TableDoc(
            f"{text} (history: {spec.history})",
            {
                "id": f"the {name}'s id (anchor.{name}.id)",
                "value": value,
                "changed_at": "when the value became true (UTC)",
                "load_id": "the load that brought the value",
            },
        )
    found[f"{name}_latest"] = TableDoc(
        f"every {name} with the latest value of each attribute",
        {"id": f"surrogate key of the {name}"} | keys | attributes,
    )
    at = {f"__at_{a}": f"when the {a} shown took effect (UTC)" for a in attributes}
    found[f"{name}_current"] = TableDoc(
        f"serving table of the {name}s, kept with the attribute rows (read "
        f"anchor.{name}_latest): the latest value of each attribute, when it took effect, and "
        "per attribute or tie its first dated value (__first_<table>)",
        {"id": f"surrogate key of the {name}"} | keys | attributes | at,
    )
    found[f"{name}_history"] = TableDoc(
        f"every change of every attribute of the {name}s, one row per change",
        {
            "id": f"the {name}'s id (anchor.{name}.id)",
            "attribute": "the attribute that changed",
            "history": "how the attribute keeps history (scd0, scd1, scd2)",
            "value": "the new value, as text",
            "changed_at": "when the value became true (UTC)",
            "load_id": "the load that brought the value",
        },
    )
    return found


def _attribute_text(project: Project, entity: str, name: str, spec: Attribute) -> str:
    if spec.description:
        return spec.description
    model = project.staging.get(spec.model)
    column = model.columns.get(spec.value or name) if model else None
    own = f"the {entity}'s {name}"
    return f"{own}: {column.description}" if column and column.description else own


def _tie_doc(name: str, tie: Tie) -> TableDoc:
    roles = {
        role_column(role): f"the {tie.entity_of(role)}'s id (anchor.{tie.entity_of(role)}.id)"
        for role in tie.roles
    }
    return TableDoc(
        tie.description
        or f"which {' and '.join(tie.roles)} belong together (history: {tie.history})",
        roles | {"changed_at": "when the relation became true (UTC)", "load_id": LOAD_ID},
    )


def mart_docs(project: Project) -> dict[str, TableDoc]:
    """A mart's description is the comment at the top of its SQL file (less its settings);
    its columns' are the project file's (`marts.models.<name>.columns.<column>.description`)."""
    found = {}
    for name, path in mart_files(project.marts_path).items():
        declared = project.marts.models.get(name)
        columns = {
            column: spec.description
            for column, spec in (declared.columns.items() if declared else [])
            if spec.description
        }
        found[name] = TableDoc(header_comment(path), columns)
    return found


def header_comment(path: Path) -> str | None:
    """The `--` lines that open a SQL file, joined into one paragraph, without the lines that
    are settings (`materialized: view`)."""
    try:
        _, lines = header_settings(path)
    except ValueError:  # `validate` names it; the description is what reads
        lines = []
    return " ".join(line for line in lines if line) or None


def describe(project: Project) -> dict[str, dict[str, TableDoc]]:
    """Every table the project makes, by schema then name, with what is known of it."""
    return {
        "raw": raw_docs(project),
        "staging": staging_docs(project),
        "anchor": anchor_docs(project),
        "marts": mart_docs(project),
    }
