"""The package's layering, checked on the code itself: the config layer is pure, and steps and
the façade reach sources only through the protocol and the registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[1] / "src" / "anchorflow"
LATER_LAYERS = ("duckdb", "anchorflow.warehouse", "anchorflow.stage", "anchorflow.anchor",
                "anchorflow.run", "anchorflow.journal", "httpx", "fsspec")  # fmt: skip


def test_loading_a_project_imports_no_engine_and_no_later_layer(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[1] / "examples" / "product_analytics"
    code = (
        "import sys\n"
        "from anchorflow.config import load_project\n"
        f"load_project({str(demo)!r}, env={{'AMPLITUDE_API_KEY': 'k', "
        "'AMPLITUDE_SECRET_KEY': 's', 'MAESTROQA_API_TOKEN': 't'})\n"
        f"print(sorted(m for m in sys.modules if m.startswith({LATER_LAYERS!r})))\n"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"


def test_no_module_outside_the_journal_names_a_meta_table() -> None:
    import re

    meta = re.compile(
        r"meta\.(loads|cursors|watermarks|transfers|runs|quarantine|type_errors|"
        r"field_stats|schema_events|alerts|anchor_\w+|erasures|staging_mappings|suppressions)"
    )
    found = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "journal" not in path.relative_to(SRC).parts and meta.search(path.read_text())
    ]  # fmt: skip
    assert found == []


def test_the_facade_and_the_steps_import_no_source_kind() -> None:
    kinds = [p.name for p in (SRC / "sources").iterdir() if (p / "source.py").exists()]
    assert {"amplitude", "files"} <= set(kinds)
    found = []
    for package in ("run", "land", "stage", "anchor", "marts", "journal", "config"):
        for path in (SRC / package).rglob("*.py"):
            text = path.read_text()
            found += [
                f"{path.relative_to(SRC)}: {kind}" for kind in kinds
                if f"anchorflow.sources.{kind}" in text
            ]  # fmt: skip
    assert found == []
