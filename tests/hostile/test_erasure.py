"""Erasure that leaves no bytes behind: after `forget` and `compact`, no byte of the file (nor of
its zstd frames, decompressed) names the person; a compaction killed at any point leaves a whole
warehouse; a backfill of the same hours does not bring the person back."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from anchorflow.config import Project, load_project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from anchorflow.errors import AnchorflowError, ConfigError
from anchorflow.run import Pipeline
from anchorflow.sources.amplitude.export import hour_window
from anchorflow.sources.base import LandBatch
from anchorflow.sources.lines import split_lines
from tests.anchor.pipeline_project import (
    ENV,
    HOURS,
    anchored_project,
    copy_project,
    reading,
    rows,
    run_concurrently,
)
from tests.anchor.test_rollback_forget import busiest_user, staged_per_user, tables_holding
from tests.conftest import START, available_at
from tests.hostile.erasure_helpers import needs_zstd, occurrences, readable_texts
from tests.stage.helpers import LATER, commit, u
from tests.stage.helpers import rows as project_rows
from tests.stage.helpers import write_project as staging_project

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

NOT_THEM = "record->>'user_id' IS DISTINCT FROM ?"

# A small project for the suppression tests: events of users, and the User entity they feed.
EVENTS = {"source": "amplitude", "unique_key": "event_uuid",
          "columns": {"event_uuid": {"path": "uuid", "type": "UUID"}, "user_id": "VARCHAR",
                      "t": "TIMESTAMP"}}  # fmt: skip
USERS = {"entities": {"User": {"key": "user_id", "sources": ["events"], "changed_at": "t"}}}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return anchored_project(tmp_path_factory)


def identifiers(path: Path, user: str) -> list[str]:
    """What names a user in the file: the id, and (as JSON text) their events' ids and IPs."""
    found = rows(
        path,
        "SELECT DISTINCT record->>'uuid', record->>'ip_address' FROM raw.amplitude_events "
        "WHERE record->>'user_id' = ?",
        [user],
    )
    quoted = {json.dumps(v) for row in found for v in row if v}
    return [user, *sorted(quoted)]


def second_busiest(path: Path, first: str) -> str:
    found = rows(path, "SELECT user_id FROM staging.events WHERE length(user_id) = 8 "
                       "AND user_id <> ? GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
                 [first])  # fmt: skip
    return str(found[0][0])


def forgotten(clean: Path, root: Path, **top: Any) -> tuple[Project, str]:
    """A copy of the clean project (with `top` keys set in its file) whose busiest user was
    forgotten; returns it and that user's key."""
    project = copy_project(clean, root)
    if top:
        data = yaml.safe_load((root / "anchorflow.yml").read_text())
        (root / "anchorflow.yml").write_text(yaml.safe_dump({**data, **top}, sort_keys=False))
        project = load_project(root, env=ENV)
    key = busiest_user(project.warehouse_path)
    with Pipeline(project) as pipeline:
        pipeline.forget("User", [key])
    return project, key


def beside(path: Path) -> list[str]:
    """The warehouse file and whatever shares its name (its WAL, a rewrite's copy)."""
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))


def contents(path: Path, without: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every base table of every schema, sorted; meta.runs and the columns `without` left out."""
    found = {}
    with reading(path) as con:
        tables = con.query(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' ORDER BY ALL"
        )
        for schema, name in tables:
            if (schema, name) == ("meta", "runs"):
                continue
            names = con.query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                "AND table_name = ? ORDER BY ordinal_position",
                [schema, name],
            )
            listed = ", ".join(f'"{c}"' for (c,) in names if c not in without)
            found[f"{schema}.{name}"] = con.query(
                f'SELECT {listed} FROM "{schema}"."{name}" ORDER BY ALL'
            )
    return found


# -- compact --------------------------------------------------------------------------------------


def test_compact_leaves_no_byte_of_a_forgotten_person_in_the_file(
    clean: Path, tmp_path: Path
) -> None:
    zstd = needs_zstd()
    project = copy_project(clean, tmp_path / "p")
    path = project.warehouse_path
    key = busiest_user(path)
    theirs, others = identifiers(path, key), identifiers(path, second_busiest(path, key))
    assert len(theirs) > 5 and len(others) > 3
    raw_total = int(rows(path, "SELECT count(*) FROM raw.amplitude_events")[0][0])
    others_raw = rows(path, f"SELECT * FROM raw.amplitude_events WHERE {NOT_THEM}", [key])
    staged = staged_per_user(path)

    with Pipeline(project) as pipeline:
        counts = pipeline.forget("User", [key])
    # What the issue found: the rows are deleted, their bytes are still in the file.
    assert occurrences(readable_texts(path, zstd), theirs) != {}

    with Pipeline(project) as pipeline:
        done = pipeline.compact()

    texts = readable_texts(path, zstd)
    assert occurrences(texts, theirs) == {}
    assert set(occurrences(texts, others)) == set(others)  # the scan would have seen them
    assert done.erasures == 1 and done.bytes_after <= done.bytes_before
    assert rows(path, "SELECT count(*) FROM raw.amplitude_events") == [
        (raw_total - counts["raw.amplitude_events"],)
    ]
    assert rows(path, f"SELECT * FROM raw.amplitude_events WHERE {NOT_THEM}", [key]) == others_raw
    assert staged_per_user(path) == {u: n for u, n in staged.items() if u != key}
    assert rows(path, "SELECT count(*) FROM meta.erasures WHERE compacted_at IS NULL") == [(0,)]
    assert beside(path) == [path.name]  # no copy, no WAL left beside it


@pytest.mark.parametrize("point", ["compact_copied", "compact_before_swap", "compact_swapped"])
def test_a_compaction_killed_at_any_point_leaves_a_whole_warehouse_and_finishes_on_rerun(
    clean: Path, tmp_path: Path, point: str
) -> None:
    project, _ = forgotten(clean, tmp_path / "forgotten")
    shutil.copytree(project.root, tmp_path / "crashed")
    shutil.copytree(project.root, tmp_path / "reference")
    crashed = tmp_path / "crashed" / "warehouse.duckdb"
    copy = crashed.with_name("warehouse.duckdb.compacting")
    before = contents(project.warehouse_path)

    (killed,) = run_concurrently([["compact", "--project", str(crashed.parent)]], [point])
    assert killed.returncode == 86, killed.stderr
    assert copy.exists() == (point != "compact_swapped")
    assert contents(crashed) == before  # the old file or the new one, whole either way
    (started,) = run_concurrently([["anchor", "--project", str(crashed.parent)]])
    assert started.returncode == 0, started.stderr
    assert beside(crashed) == ["warehouse.duckdb"]  # the next writer removed the copy

    compacted = run_concurrently(
        [["compact", "--project", str(crashed.parent)],
         ["compact", "--project", str(tmp_path / "reference")]]
    )  # fmt: skip
    assert [r.returncode for r in compacted] == [0, 0], compacted[0].stderr
    assert "1 erasure request(s) applied" in compacted[0].stdout
    assert beside(crashed) == ["warehouse.duckdb"]
    reference = tmp_path / "reference" / "warehouse.duckdb"
    assert contents(crashed, ("compacted_at",)) == contents(reference, ("compacted_at",))
    assert rows(crashed, "SELECT count(*) FROM meta.erasures WHERE compacted_at IS NULL") == [(0,)]


def test_status_shows_pending_erasures_and_their_deadline_until_compact(
    clean: Path, tmp_path: Path
) -> None:
    project, _ = forgotten(clean, tmp_path / "p", erasure_deadline="7d")
    root = str(project.root)

    (status,) = run_concurrently([["status", "--json", "--project", root]])
    assert status.returncode == 0, status.stderr
    (pending,) = json.loads(status.stdout)["erasures"]
    assert (pending["erasure_id"], pending["entity"]) == (1, "User")
    erased, deadline = (datetime.fromisoformat(pending[k]) for k in ("erased_at", "compact_by"))
    assert abs(deadline - erased - timedelta(days=7)) < timedelta(seconds=5)
    (shown,) = run_concurrently([["status", "--project", root]])
    assert "erasures waiting for `anchorflow compact`" in shown.stdout

    (compacted,) = run_concurrently([["compact", "--project", root]])
    assert compacted.returncode == 0, compacted.stderr
    (status,) = run_concurrently([["status", "--json", "--project", root]])
    assert json.loads(status.stdout)["erasures"] == []


def test_a_run_compacts_by_itself_once_an_erasure_is_due(clean: Path, tmp_path: Path) -> None:
    waiting, _ = forgotten(clean, tmp_path / "waiting")  # the default deadline: 30 days
    with Pipeline(waiting, now=available_at(HOURS)) as pipeline:
        assert pipeline.run().compaction is None
        assert len(pipeline.status().erasures) == 1

    due, key = forgotten(clean, tmp_path / "due", erasure_deadline="0s")
    with Pipeline(due, now=available_at(HOURS)) as pipeline:
        summary = pipeline.run()
        assert summary.compaction is not None and summary.compaction.erasures == 1
        assert pipeline.status().erasures == []
    assert rows(due.warehouse_path, "SELECT count(*) FROM staging.events WHERE user_id = ?",
                [key]) == [(0,)]  # fmt: skip


def test_a_failing_run_still_compacts_an_erasure_that_is_due(clean: Path, tmp_path: Path) -> None:
    """The clean project's emulator is gone: every run fails at its source, and still the
    erasure leaves the file by its deadline."""
    due, _ = forgotten(clean, tmp_path / "due", erasure_deadline="0s")
    with Pipeline(due, now=available_at(HOURS + 3)) as pipeline:
        with pytest.raises(AnchorflowError):
            pipeline.run()
        assert pipeline.status().erasures == []
    assert rows(
        due.warehouse_path, "SELECT status FROM meta.runs ORDER BY run_id DESC LIMIT 1"
    ) == [("failed",)]


# -- suppression ----------------------------------------------------------------------------------


def test_a_backfill_after_forget_does_not_bring_the_person_back(
    clean: Path, tmp_path: Path, emulator: AmplitudeEmulator
) -> None:
    project = copy_project(clean, tmp_path / "p", emulator.base_url)
    path = project.warehouse_path
    key = busiest_user(path)
    per_hour = dict(rows(path, "SELECT l.window_key, count(*) FROM raw.amplitude_events AS r "
                               "JOIN meta.loads AS l USING (load_id) "
                               "WHERE r.record->>'user_id' = ? GROUP BY 1", [key]))  # fmt: skip
    assert sum(per_hour.values()) >= 3
    with Pipeline(project) as pipeline:
        pipeline.forget("User", [key])
    after_forget = rows(path, "SELECT count(*) FROM raw.amplitude_events")
    staged = staged_per_user(path)

    with Pipeline(project, now=available_at(HOURS)) as pipeline:
        summary = pipeline.backfill("amplitude", "20240301T00", f"20240301T{HOURS - 1:02d}")

    assert {w.window_key: w.suppressed for w in summary.windows if w.suppressed} == per_hour
    recorded = rows(path, "SELECT window_key, suppressed FROM meta.loads "
                          "WHERE status = 'committed' AND suppressed > 0")  # fmt: skip
    assert dict(recorded) == per_hour
    assert tables_holding(path, f"{re.escape(key)}([^0-9]|$)") == {}  # raw, staging, anchor...
    assert rows(path, "SELECT count(*) FROM raw.amplitude_events") == after_forget
    assert staged_per_user(path) == staged


def test_forget_without_a_pii_salt_refuses_in_one_line_and_erases_nothing(
    tmp_path: Path,
) -> None:
    project = staging_project(tmp_path, {"events": EVENTS}, anchor=USERS)
    commit(project, 0, [{"uuid": u(1), "user_id": "ann", "t": "2024-03-01 00:00:00"}])
    with Pipeline(project, now=LATER) as pipeline, pytest.raises(ConfigError) as refused:
        pipeline.forget("User", ["ann"])
    assert refused.value.problems == [
        "forget: set pii_salt: ${ANCHORFLOW_PII_SALT} in the project file; the erased key is "
        "kept hashed with it, so that a backfill cannot bring the person back"
    ]
    assert project_rows(project, "SELECT count(*) FROM raw.amplitude_events") == [(1,)]
    assert project_rows(project, "SELECT count(*) FROM meta.erasures") == [(0,)]


def test_a_redelivered_window_drops_the_records_of_an_erased_key_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    project = staging_project(tmp_path, {"events": EVENTS}, anchor=USERS, pii_salt="s-1")
    window = [
        {"uuid": u(1), "user_id": "ann", "t": "2024-03-01 00:00:00"},
        {"uuid": u(2), "user_id": "bob", "t": "2024-03-01 00:01:00"},
        '{"uuid": "' + u(3) + '", "user_id": "ann"',  # not JSON: quarantined, not hashed
        [1, 2],  # JSON, not an object
        {"uuid": u(4), "user_id": "ann", "t": "2024-03-01 00:02:00"},
    ]
    lines: list[Any] = [e if not isinstance(e, list) else json.dumps(e) for e in window]
    commit(project, 0, lines)
    with Pipeline(project, now=LATER) as pipeline:
        pipeline.forget("User", ["ann"])
    hashes = project_rows(project, "SELECT paths, key_hash FROM meta.suppressions")
    assert [p for p, _ in hashes] == ['["$.\\"user_id\\""]']
    assert "ann" not in str(hashes)

    result = commit(project, 0, lines)  # the same hour delivered again
    assert (result.rows, result.suppressed, result.quarantined) == (1, 2, 2)
    assert project_rows(project, "SELECT record->>'user_id' FROM raw.amplitude_events") == [
        ("bob",)
    ]
    assert project_rows(project, "SELECT user_id FROM staging.events") == [("bob",)]


def test_a_line_the_source_set_aside_is_dropped_too_when_it_carries_an_erased_key(
    tmp_path: Path,
) -> None:
    """A line that is not UTF-8 never reaches the engine's record view: the source sets it
    aside for the quarantine, with its text. It must not bring the person back either."""
    project = staging_project(tmp_path, {"events": EVENTS}, anchor=USERS, pii_salt="s-1")
    commit(project, 0, [{"uuid": u(1), "user_id": "ann", "t": "2024-03-01 00:00:00"}])
    with Pipeline(project, now=LATER) as pipeline:
        pipeline.forget("User", ["ann"])

    data = (
        b'{"uuid": "' + u(2).encode() + b'", "user_id": "ann", "note": "caf\xe9"}\n'
        b'{"uuid": "' + u(3).encode() + b'", "user_id": "bob", "note": "caf\xe9"}\n'
    )
    records, rejected = split_lines("w0#0.json", data)
    assert len(rejected) == 2  # both set aside by the source: not UTF-8
    batch = LandBatch("amplitude", hour_window("events", START), "w0", records, 1, 0, rejected)
    with Pipeline(project, now=LATER) as pipeline:
        result = pipeline.commit_window(batch)
    assert (result.suppressed, result.quarantined) == (1, 1)
    kept = project_rows(project, "SELECT line_no, record FROM meta.quarantine")
    assert [line for line, _ in kept] == [2] and "ann" not in str(kept)
