"""Webhook deliveries end to end: signed requests to `anchorflow serve`, then `anchorflow run`
moves the published chunks into raw, each record once, and a second run adds nothing."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import duckdb
import httpx
import pytest

from tests.serve.hooks import ANCHORFLOW, ENV, ServeProcess, chunk_dir, hooks_project, signed

pytestmark = pytest.mark.e2e


def _run(root: Path) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [str(ANCHORFLOW), "run", "--project", str(root)],
        env={**os.environ, **ENV}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_deliveries_are_loaded_into_raw_once(tmp_path: Path) -> None:
    project = hooks_project(tmp_path)
    ids = [str(uuid.uuid4()) for _ in range(40)]
    with ServeProcess(tmp_path) as server:
        for notification in ids + ids[:5]:  # five redeliveries
            body, headers = signed(project, "intercom", {"id": notification, "topic": "x"})
            response = httpx.post(
                f"{server.url}/hooks/intercom", content=body, headers=headers, timeout=10
            )
            assert response.status_code == 200, response.text
        stopped = server.stop()  # graceful: the open chunk is published
        assert stopped.returncode == 0, stopped.stderr

    first = _run(tmp_path)
    assert first.returncode == 0, first.stderr
    assert _run(tmp_path).returncode == 0
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as db:
        rows = db.execute(
            "SELECT json_extract_string(record, '$.id'), origin, line_no FROM raw.intercom_events"
        ).fetchall()
        committed = db.execute(
            "SELECT count(*) FROM meta.loads WHERE source = 'intercom' AND status = 'committed'"
        ).fetchone()
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert all(r[1] and r[2] >= 1 for r in rows)  # chunk id and position kept
    assert committed is not None and committed[0] >= 1
    assert not list(chunk_dir(project, "intercom").glob("*.ndjson"))  # committed, then deleted
