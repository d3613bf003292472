"""A project whose one source reads many small NDJSON files (a window each): what the serve
runner tests run, on each engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from anchorflow.config import Project
from tests.builders import build_project

ITEMS = {"source": "drops", "unique_key": "id", "columns": {"id": "VARCHAR", "n": "BIGINT"}}


def files_project(root: Path, files: int, lines: int = 20, **source: Any) -> Project:
    """`files` NDJSON files of `lines` records each under root/landing; ids are unique."""
    landing = root / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        text = "".join(json.dumps({"id": f"{f}-{i}", "n": i}) + "\n" for i in range(lines))
        (landing / f"part-{f:05d}.ndjson").write_text(text)
    config = {"kind": "files", "path": "landing/*.ndjson", "format": "ndjson", **source}
    return build_project(root, sources={"drops": config}, staging={"items": ITEMS})
