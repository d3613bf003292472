"""`anchorflow compile`: the Snowflake and BigQuery SQL of the demo project and of a small
project of odd names, checked byte for byte against golden files and by sqlglot's parser for
each engine. The SQL is not run here (no Snowflake, no BigQuery): these checks are all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from anchorflow.compile import ENGINES, Compiled, compile_project
from anchorflow.config import load_project
from anchorflow.warehouse.compiled import CompileError

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
PROJECTS = {
    "product_analytics": HERE.parents[1] / "examples" / "product_analytics",
    "odd_names": HERE / "odd_project",
}
ANCHORFLOW = Path(sys.executable).parent / "anchorflow"
UPDATE = os.environ.get("ANCHORFLOW_UPDATE_GOLDEN") == "1"
# Statements sqlglot keeps as a command (it has no tree for them): the engine's own syntax that
# the dialects write as it is. Any other statement must parse into a tree.
COMMANDS = ("COPY INTO ", "LOAD DATA ", "CREATE OR REPLACE FUNCTION ",
            "CREATE OR REPLACE TABLE FUNCTION ")  # fmt: skip
# The demo's SQL is large (about 500 statements): its cases are in the integration tier.
TIERS = {"odd_names": pytest.mark.unit, "product_analytics": pytest.mark.integration}
CASES = [pytest.param(e, p, marks=TIERS[p]) for e in ENGINES for p in PROJECTS]


@cache
def compiled(engine: str, project: str) -> Compiled:
    return compile_project(load_project(PROJECTS[project], env={}, defer_source_env=True), engine)


def files(result: Compiled) -> dict[str, str]:
    return {f.name: f.text for f in result.files} | {"README.txt": result.readme}


@pytest.mark.parametrize(("engine", "project"), CASES)
def test_the_compiled_sql_is_the_golden_sql(engine: str, project: str) -> None:
    for name, text in files(compiled(engine, project)).items():
        golden = GOLDEN / engine / f"{project}.{name}"
        if UPDATE:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text)
            continue
        assert golden.exists(), f"{golden} is missing: write it with ANCHORFLOW_UPDATE_GOLDEN=1"
        assert text == golden.read_text(), (
            f"{name} of {project} for {engine} differs from {golden.relative_to(HERE)}; if the "
            "change is meant, regenerate: ANCHORFLOW_UPDATE_GOLDEN=1 pytest tests/compile"
        )


def parsed(engine: str, project: str, name: str) -> list[exp.Expr]:
    text = next(f.text for f in compiled(engine, project).files if f.name == name)
    return [t for t in sqlglot.parse(text, read=engine) if t is not None]


@pytest.mark.parametrize(("engine", "project"), CASES)
def test_every_statement_parses_in_the_engines_dialect(engine: str, project: str) -> None:
    for file in compiled(engine, project).files:
        trees = parsed(engine, project, file.name)
        assert len(trees) == len(file.statements), file.name
        commands = [t.sql(engine) for t in trees if isinstance(t, exp.Command)]
        assert [c for c in commands if not c.upper().startswith(COMMANDS)] == [], file.name
        again = sqlglot.parse(";\n".join(t.sql(engine) for t in trees), read=engine)
        assert len([t for t in again if t is not None]) == len(trees), file.name


@pytest.mark.unit
def test_the_load_covers_every_layer() -> None:
    load = next(f for f in compiled("snowflake", "odd_names").files if f.name == "03_load.sql")
    text = "\n".join(load.statements)
    for target in ('"raw"."shop_records"', '"staging"."Order"', '"staging"."Line"',
                   '"anchor"."Customer"', '"anchor"."Customer_Total"', '"anchor"."Customer_Sku"',
                   '"anchor"."Customer_current"', '"marts"."latest"'):  # fmt: skip
        assert any(s.startswith(("INSERT INTO " + target, "CREATE OR REPLACE TABLE " + target))
                   for s in load.statements), target  # fmt: skip
    assert "COPY INTO" in text and "LATERAL FLATTEN" in text
    assert "UPDATE " not in text and "MERGE " not in text  # insert-only
    bq = "\n".join(next(f for f in compiled("bigquery", "odd_names").files
                        if f.name == "03_load.sql").statements)  # fmt: skip
    assert "LOAD DATA INTO" in bq and "UNNEST(" in bq and "WITH OFFSET" in bq


@pytest.mark.unit
@pytest.mark.parametrize("engine", ENGINES)
def test_every_identifier_is_quoted(engine: str) -> None:
    for file in compiled(engine, "odd_names").files:
        for tree in parsed(engine, "odd_names", file.name):
            if isinstance(tree, exp.Command):
                continue
            bare = {
                i.name for i in tree.find_all(exp.Identifier)
                if not i.quoted and not i.find_ancestor(exp.Lateral)  # FLATTEN's own columns
            }  # fmt: skip
            bare -= {"METADATA$FILENAME", "METADATA$FILE_ROW_NUMBER"}  # COPY's pseudo-columns
            assert bare == set(), f"{file.name}: {tree.sql(engine)[:200]}"


@pytest.mark.unit
@pytest.mark.parametrize("engine", ENGINES)
def test_a_value_from_the_project_is_a_string_literal(engine: str) -> None:
    value = "it's an order; DROP TABLE raw.shop_records"
    load = parsed(engine, "odd_names", "03_load.sql")
    literals = [lit.this for tree in load for lit in tree.find_all(exp.Literal) if lit.is_string]
    assert literals.count(value) == 2  # the selector of each model
    assert literals.count(f'"{value}"') == 2  # its prefilter on the record's text
    assert not [t for t in load if isinstance(t, exp.Drop) and "shop_records" in t.sql()]
    views = parsed(engine, "odd_names", "02_views.sql")
    assert "O'Brien" in [lit.this for t in views for lit in t.find_all(exp.Literal)]


def _odd_copy(tmp_path: Path, old: str, new: str) -> Path:
    copy = tmp_path / "odd"
    shutil.copytree(PROJECTS["odd_names"], copy)
    path = copy / "anchorflow.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return copy


@pytest.mark.unit
def test_a_part_with_no_sql_for_the_engine_is_refused_in_one_line(tmp_path: Path) -> None:
    fail = _odd_copy(tmp_path, "    source: shop\n    selector:", "    source: shop\n"
                     "    on_bad_value: fail\n    selector:")  # fmt: skip
    with pytest.raises(CompileError, match=r"^staging.Order: on_bad_value: fail has no compiled"):
        compile_project(load_project(fail, env={}), "snowflake")
    json_value = _odd_copy(tmp_path / "2", "value: total, history: scd2",
                           "value: payload, history: scd2")  # fmt: skip
    project = load_project(json_value, env={})
    with pytest.raises(CompileError, match=r"^anchor.Customer_Total: a JSON value cannot"):
        compile_project(project, "bigquery")
    assert compile_project(project, "snowflake").statements > 0


@pytest.mark.e2e
def test_the_command_writes_the_files_and_says_how_many_statements(tmp_path: Path) -> None:
    out = tmp_path / "sql"
    done = subprocess.run(
        [str(ANCHORFLOW), "compile", "--engine", "bigquery",
         "--project", str(PROJECTS["odd_names"]), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = compiled("bigquery", "odd_names")
    assert f"wrote {result.statements} bigquery statements to {out}" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(files(result))
    assert (out / "03_load.sql").read_text() == files(result)["03_load.sql"]
    wrong = subprocess.run(
        [str(ANCHORFLOW), "compile", "--engine", "oracle",
         "--project", str(PROJECTS["odd_names"]), "--out", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert wrong.returncode == 1
    assert "error: --engine: 'oracle' is not one of snowflake, bigquery" in wrong.stderr
    assert not (tmp_path / "x").exists()
