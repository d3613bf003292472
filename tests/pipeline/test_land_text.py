"""Text an engine cannot store does not block a window: PostgreSQL's text holds no NUL character
(U+0000) and its JSON no `\\u0000` escape, so such a line is quarantined there with a reason that
says so (its NULs written as `\\u0000`), and the rest of the window lands."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from anchorflow.config import Project
from anchorflow.land.raw import HOLDS_NUL
from anchorflow.land.step import WindowResult
from anchorflow.run import Pipeline
from anchorflow.sources.amplitude.export import hour_window
from anchorflow.sources.base import LandBatch
from anchorflow.sources.lines import split_lines
from tests.builders import START, build_project
from tests.conftest import table_rows

pytestmark = pytest.mark.integration

QUARANTINED = "SELECT line_no, reason, record FROM meta.quarantine ORDER BY line_no"


def land_only(root: Path) -> Project:
    return build_project(root, staging={})


def commit_lines(project: Project, data: bytes) -> WindowResult:
    records, rejected = split_lines("w0#0.json", data)
    batch = LandBatch("amplitude", hour_window("events", START + timedelta(hours=0)), "w0",
                      records, 1, len(data), rejected)  # fmt: skip
    with Pipeline(project, now=START + timedelta(days=1)) as pipeline:
        return pipeline.commit_window(batch)


def test_a_line_holding_a_nul_character_is_quarantined_and_the_window_lands(
    engine: str, tmp_path: Path
) -> None:
    project = land_only(tmp_path)
    result = commit_lines(project, b'{"n": 1}\n{"name": "a\x00b"}\n\xff\x00x\n{"n": 2}\n')
    assert (result.rows, result.quarantined) == (2, 2)
    assert table_rows(project, "SELECT record FROM raw.amplitude_events ORDER BY line_no") == [
        ('{"n": 1}',), ('{"n": 2}',),
    ]  # fmt: skip
    (nul_line, not_utf8) = table_rows(project, QUARANTINED)
    assert not_utf8[:2] == (3, "not valid UTF-8 (invalid start byte)")
    if engine == "postgres":
        assert nul_line == (2, HOLDS_NUL, '{"name": "a\\u0000b"}')
        assert not_utf8[2] == "\ufffd\\u0000x"
    else:  # DuckDB stores the line as it came: JSON does not allow it unescaped
        assert nul_line[0] == 2 and nul_line[1].startswith("not valid JSON: Invalid control")
        assert nul_line[2] == '{"name": "a\x00b"}'


def test_a_nul_escape_lands_where_the_engine_can_read_it_and_is_quarantined_elsewhere(
    engine: str, tmp_path: Path
) -> None:
    project = land_only(tmp_path)
    result = commit_lines(project, b'{"n": 1}\n{"name": "a\\u0000b"}\n')
    landed = table_rows(project, "SELECT count(*) FROM raw.amplitude_events")[0][0]
    if engine == "postgres":
        assert (result.rows, result.quarantined, landed) == (1, 1, 1)
        assert table_rows(project, QUARANTINED) == [
            (2, "not valid JSON for the engine: it cannot store the NUL escape \\u0000",
             '{"name": "a\\u0000b"}'),
        ]  # fmt: skip
    else:
        assert (result.rows, result.quarantined, landed) == (2, 0, 2)
