"""The `files` source: formats and compressions, keys and versions, changed and vanished files,
what cannot be read, and S3 through moto's server. The protocol-level behaviour every kind
shares (plan, fetch, cursor, replace, crash) is in test_contract.py."""

from __future__ import annotations

import gzip
import io
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anchorflow.config import Project, load_project
from anchorflow.errors import ConfigError, SourceError
from anchorflow.journal.cursors import read_cursor
from anchorflow.run import Pipeline
from anchorflow.sources.base import FetchContext
from anchorflow.sources.files.source import FilesSource
from tests.builders import build_project
from tests.conftest import table_rows
from tests.sources.s3 import SECRET, MotoS3

pytestmark = pytest.mark.integration
NOW = datetime(2030, 1, 1)
ITEMS = {
    "source": "src",
    "unique_key": "id",
    "columns": {"id": "VARCHAR", "v": "DOUBLE", "name": "VARCHAR", "tags": "JSON"},
}


def files_project(root: Path, **source: Any) -> Project:
    config = {"kind": "files", "path": "landing/*", **source}
    return build_project(root, sources={"src": config}, staging={"items": ITEMS})


def run(project: Project) -> Any:
    with Pipeline(project, now=NOW) as pipeline:
        return pipeline.run()


def rows(project: Project, sql: str) -> list[tuple[Any, ...]]:
    return table_rows(project.warehouse_path, sql)


def write(root: Path, name: str, data: bytes, mtime: int | None = None) -> Path:
    path = root / "landing" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def zstd(data: bytes) -> bytes:
    return bytes(pa.compress(data, "zstd", asbytes=True))


def parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


# -- formats ------------------------------------------------------------------------------------


def test_every_format_and_compression_lands_its_records_and_types_them(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root, "a.jsonl.gz", gzip.compress(b'{"id": "a1", "v": 1.5, "tags": ["x"]}\n\n'
                                            b'{"id": "a2", "v": 2}\n'))  # fmt: skip
    write(root, "b.json.zst", zstd(b'[{"id": "b1", "v": 3},\n  {"id": "b2", "name": "bee"}]'))
    write(root, "c.json", b'  {"id": "c1", "v": 4, "name": "one object"}\n')
    write(root, "d.csv", b'id,v,name\nd1,5,"a, quoted\nvalue"\nd2,,\n')
    write(root, "e.tsv.gz", gzip.compress(b"id\tv\ne1\t6\n"))
    table = pa.table({"id": ["f1", "f2"], "v": [7.5, None], "tags": [["p", "q"], []]})
    write(root, "f.parquet", parquet(table))
    # A TSV needs its delimiter: one source per dialect, as a user would set it up.
    project = build_project(
        root,
        sources={
            "src": {"kind": "files", "path": "landing/[a-d,f]*"},
            "tsv": {"kind": "files", "path": "landing/*.tsv.gz", "csv": {"delimiter": "\t"}},
        },
        staging={"items": ITEMS, "tsv_items": {**ITEMS, "source": "tsv"}},
    )
    summary = run(project)

    assert [w.window_key for w in summary.windows] == [
        "a.jsonl.gz", "b.json.zst", "c.json", "d.csv", "f.parquet", "e.tsv.gz",
    ]  # fmt: skip
    raw = rows(project, "SELECT origin, line_no, record FROM raw.src_records ORDER BY ALL")
    assert raw == [
        ("a.jsonl.gz", 1, '{"id": "a1", "v": 1.5, "tags": ["x"]}'),  # NDJSON: as it was
        ("a.jsonl.gz", 3, '{"id": "a2", "v": 2}'),  # blank line 2 is no record
        ("b.json.zst", 1, '{"id":"b1","v":3}'),  # array elements, written compact
        ("b.json.zst", 2, '{"id":"b2","name":"bee"}'),
        ("c.json", 1, '  {"id": "c1", "v": 4, "name": "one object"}\n'),  # the whole text
        ("d.csv", 1, '{"id":"d1","v":"5","name":"a, quoted\\nvalue"}'),  # CSV: text values
        ("d.csv", 2, '{"id":"d2","v":null,"name":null}'),  # empty fields: null
        ("f.parquet", 1, '{"id":"f1","v":7.5,"tags":["p","q"]}'),
        ("f.parquet", 2, '{"id":"f2","v":null,"tags":[]}'),
    ]
    staged = rows(project, "SELECT id, v, name, tags::VARCHAR FROM staging.items ORDER BY id")
    assert staged == [
        ("a1", 1.5, None, '["x"]'), ("a2", 2.0, None, None), ("b1", 3.0, None, None),
        ("b2", None, "bee", None), ("c1", 4.0, "one object", None),
        ("d1", 5.0, "a, quoted\nvalue", None), ("d2", None, None, None),
        ("f1", 7.5, None, '["p","q"]'), ("f2", None, None, "[]"),
    ]  # fmt: skip
    assert rows(project, "SELECT record FROM raw.tsv_records") == [('{"id":"e1","v":"6"}',)]
    assert rows(project, "SELECT count(*) FROM meta.quarantine") == [(0,)]


def test_csv_empty_fields_can_stay_empty_strings(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root, "x.csv", b"id,name\nx1,\n")
    project = files_project(root, csv={"empty_as_null": False})
    run(project)
    assert rows(project, "SELECT record FROM raw.src_records") == [('{"id":"x1","name":""}',)]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("bad.json", b'[{"id": "x"}, ', "not a valid JSON document"),
        ("scalar.json", b'"just text"', "a JSON string, not an array or an object"),
        ("broken.jsonl.gz", b"\x1f\x8b\x08\x00 not really gzip", "the gzip stream is corrupt"),
        ("notes.md", b"# readme", "cannot tell the format from the file's name"),
        ("twice.csv", b"id,id\n1,2\n", "the CSV header names column 'id' twice"),
        ("blob.parquet", b"PAR1 nope", "not readable as Parquet"),
    ],
)
def test_a_file_that_cannot_be_read_is_one_quarantined_record_and_blocks_nothing(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    root = tmp_path / "p"
    write(root, "0-good.jsonl", b'{"id": "g1"}\n')
    write(root, name, data)
    write(root, "z-good.jsonl", b'{"id": "g2"}\n')
    project = files_project(root)
    summary = run(project)

    assert [w.window_key for w in summary.windows] == sorted(["0-good.jsonl", name, "z-good.jsonl"])
    quarantined = rows(project, "SELECT origin, stage, reason FROM meta.quarantine")
    assert [(q[0], q[1]) for q in quarantined] == [(name, "land")]
    assert quarantined[0][2].startswith(reason), quarantined[0][2]
    assert rows(project, "SELECT id FROM staging.items ORDER BY id") == [("g1",), ("g2",)]


def test_an_unreadable_file_fixed_at_the_source_replaces_its_quarantined_load(
    tmp_path: Path,
) -> None:
    root = tmp_path / "p"
    write(root, "a.json", b'[{"id": "a1"}, ', mtime=1_700_000_000)
    project = files_project(root)
    run(project)
    assert rows(project, "SELECT count(*) FROM meta.quarantine") == [(1,)]

    write(root, "a.json", b'[{"id": "a1"}, {"id": "a2"}]', mtime=1_700_000_100)
    assert [(w.window_key, w.replaced) for w in run(project).windows] == [("a.json", 1)]
    assert rows(project, "SELECT count(*) FROM meta.quarantine") == [(0,)]
    assert rows(project, "SELECT id FROM staging.items ORDER BY id") == [("a1",), ("a2",)]


# -- keys, versions, the cursor -----------------------------------------------------------------


def test_a_changed_file_is_loaded_again_and_replaces_its_load_an_unchanged_one_is_not(
    tmp_path: Path,
) -> None:
    root = tmp_path / "p"
    write(root, "a.jsonl", b'{"id": "a", "v": 1}\n', mtime=1_700_000_000)
    write(root, "b.jsonl", b'{"id": "b", "v": 1}\n', mtime=1_700_000_000)
    project = files_project(root)
    run(project)

    write(root, "a.jsonl", b'{"id": "a", "v": 2}\n{"id": "a2", "v": 2}\n', mtime=1_700_000_100)
    summary = run(project)
    assert [(w.window_key, w.replaced) for w in summary.windows] == [("a.jsonl", 1)]
    assert rows(project, "SELECT load_id, window_key, status FROM meta.loads ORDER BY 1") == [
        (1, "a.jsonl", "replaced"), (2, "b.jsonl", "committed"), (3, "a.jsonl", "committed"),
    ]  # fmt: skip
    assert rows(project, "SELECT id, v, load_id FROM staging.items ORDER BY id") == [
        ("a", 2.0, 3), ("a2", 2.0, 3), ("b", 1.0, 2),
    ]  # fmt: skip
    with Pipeline(project, now=NOW) as pipeline:
        cursor = read_cursor(pipeline.warehouse, "src", "records")
    size = len(b'{"id": "a", "v": 2}\n{"id": "a2", "v": 2}\n')
    assert cursor is not None and set(cursor["files"]) == {"a.jsonl", "b.jsonl"}
    assert cursor["files"]["a.jsonl"].startswith(f"{size}:1700000100.0:")  # size, mtime, ctime
    assert cursor["files"]["b.jsonl"].startswith("20:1700000000.0:")
    assert run(project).windows == []


def test_a_deleted_file_keeps_its_load_and_a_new_one_is_all_that_loads(tmp_path: Path) -> None:
    root = tmp_path / "p"
    first = write(root, "a.jsonl", b'{"id": "a"}\n')
    project = files_project(root)
    run(project)
    first.unlink()
    write(root, "b.jsonl", b'{"id": "b"}\n')
    summary = run(project)
    assert [w.window_key for w in summary.windows] == ["b.jsonl"]
    assert rows(project, "SELECT id FROM staging.items ORDER BY id") == [("a",), ("b",)]


def test_keys_are_paths_below_the_glob_prefix_in_subdirectories_too(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root, "2024/03/01.jsonl", b'{"id": "x"}\n')
    write(root, "2024/03/02.jsonl", b'{"id": "y"}\n')
    write(root, "2024/skip.txt", b"not matched")
    project = files_project(root, path="landing/**/*.jsonl")
    summary = run(project)
    assert [w.window_key for w in summary.windows] == ["2024/03/01.jsonl", "2024/03/02.jsonl"]
    assert rows(project, "SELECT DISTINCT origin FROM raw.src_records ORDER BY 1") == [
        ("2024/03/01.jsonl",), ("2024/03/02.jsonl",),
    ]  # fmt: skip


def test_a_file_still_being_written_waits_for_settle(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root, "old.jsonl", b'{"id": "old"}\n', mtime=int(time.time()) - 3600)
    write(root, "new.jsonl", b'{"id": "new"}\n')  # modified just now
    project = files_project(root, settle="10m")
    assert [w.window_key for w in run(project).windows] == ["old.jsonl"]
    with Pipeline(project, now=NOW) as pipeline:
        (state,) = pipeline.status().sources
    assert state.position == "1 file(s) loaded"
    assert state.due == 0  # new.jsonl is not settled yet


def test_backfill_reloads_the_files_in_a_key_range(tmp_path: Path) -> None:
    root = tmp_path / "p"
    for day in ("01", "02", "03"):
        write(root, f"2024-03-{day}.jsonl", f'{{"id": "{day}"}}\n'.encode())
    project = files_project(root)
    run(project)
    with Pipeline(project, now=NOW) as pipeline:
        summary = pipeline.backfill("src", "2024-03-02", None)
        assert [(w.window_key, w.replaced) for w in summary.windows] == [
            ("2024-03-02.jsonl", 1), ("2024-03-03.jsonl", 1),
        ]  # fmt: skip
        with pytest.raises(ConfigError) as error:
            pipeline.backfill("src", "2025", None)
    assert error.value.problems == [
        "backfill: no file of sources.src (landing/*) matches between 2025 and the last"
    ]
    assert rows(project, "SELECT count(*) FROM staging.items") == [(3,)]


def test_a_file_that_vanishes_between_listing_and_reading_is_skipped(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root, "a.jsonl", b'{"id": "a"}\n')
    gone = write(root, "b.jsonl", b'{"id": "b"}\n')
    project = files_project(root)
    source = FilesSource("src", project.sources["src"], project.root)  # type: ignore[arg-type]
    windows = source.plan("records", None, NOW, lambda stream, keys: set())
    gone.unlink()
    context = FetchContext(tmp_path, lambda stream, cursor: None)
    batches = list(source.fetch(windows, context))
    assert [b.window.key for b in batches] == ["a.jsonl"]


def test_a_directory_that_is_not_there_is_an_error_not_an_empty_source(tmp_path: Path) -> None:
    project = files_project(tmp_path / "p", path="landin/*.jsonl")  # a typo
    with Pipeline(project, now=NOW) as pipeline, pytest.raises(SourceError) as error:
        pipeline.run()
    assert str(error.value).startswith("sources.src: cannot list landin/*.jsonl (")
    assert str(error.value).endswith("landin does not exist)")


def test_a_bad_path_is_a_one_line_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        files_project(tmp_path / "p", path="ftp://host/x/*.csv")
    assert error.value.problems == [
        "anchorflow.yml: sources.src.path: expected a local path or an s3:// URL, got a ftp:// URL"
    ]


# -- S3 -----------------------------------------------------------------------------------------


@pytest.fixture
def s3() -> Iterator[MotoS3]:
    with MotoS3() as server:
        yield server


def test_s3_files_load_and_an_object_rewritten_gets_a_new_etag_and_loads_again(
    tmp_path: Path, s3: MotoS3
) -> None:
    s3.put("in/a.jsonl", b'{"id": "a", "v": 1}\n')
    s3.put("in/b.csv", b"id,v\nb,2\n")
    s3.put("other/c.jsonl", b'{"id": "c"}\n')  # outside the glob
    project = files_project(tmp_path / "p", path=f"s3://{s3.bucket}/in/*", s3=s3.options())
    assert [w.window_key for w in run(project).windows] == ["a.jsonl", "b.csv"]
    s3.put("in/a.jsonl", b'{"id": "a", "v": 9}\n')
    summary = run(project)
    assert [(w.window_key, w.replaced) for w in summary.windows] == [("a.jsonl", 1)]
    assert rows(project, "SELECT id, v FROM staging.items ORDER BY id") == [("a", 9.0), ("b", 2.0)]
    with Pipeline(project, now=NOW) as pipeline:
        cursor = read_cursor(pipeline.warehouse, "src", "records")
    assert cursor is not None and set(cursor["files"]) == {"a.jsonl", "b.csv"}
    assert all(":" in version for version in cursor["files"].values())


def test_an_unreachable_bucket_fails_in_one_line_without_the_secret(
    tmp_path: Path, s3: MotoS3
) -> None:
    project = files_project(tmp_path / "p", path="s3://no-such-bucket/in/*.jsonl", s3=s3.options())
    with Pipeline(project, now=NOW) as pipeline, pytest.raises(SourceError) as error:
        pipeline.run()
    message = str(error.value)
    assert message == (
        "sources.src: cannot list s3://no-such-bucket/in/*.jsonl (no-such-bucket does not exist)"
    )
    assert "\n" not in message and SECRET not in message
    runs = rows(project, "SELECT status, detail FROM meta.runs")
    assert runs[0][0] == "failed" and SECRET not in runs[0][1]


def test_status_without_the_store_s_keys_says_which_is_missing_and_lists_nothing(
    tmp_path: Path, s3: MotoS3
) -> None:
    s3.put("in/a.jsonl", b'{"id": "a", "v": 1}\n')
    options = {**s3.options(), "key": "${AF_TEST_S3_KEY}", "secret": "${AF_TEST_S3_SECRET}"}
    config = {"kind": "files", "path": f"s3://{s3.bucket}/in/*", "s3": options}
    env = {"AF_TEST_S3_KEY": "k1234", "AF_TEST_S3_SECRET": "s1234"}
    root = build_project(tmp_path / "p", {"src": config}, {"items": ITEMS}, env=env).root
    project = load_project(root, defer_source_env=True, env={"AF_TEST_S3_KEY": "k1234"})
    with Pipeline(project, now=NOW) as pipeline:
        (state,) = pipeline.status().sources
        assert (state.position, state.due) == ("never loaded", None)
        assert state.note == "unknown: AF_TEST_S3_SECRET not set"
        with pytest.raises(ConfigError) as refused:
            pipeline.run()
    assert refused.value.problems == [
        "anchorflow.yml: sources.src.s3.secret: environment variable AF_TEST_S3_SECRET is not set"
    ]
    assert rows(project, "SELECT count(*) FROM meta.loads") == [(0,)]


def test_json_in_the_cursor_is_the_journal_s_own(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root, 'we"ird name.jsonl', b'{"id": "w"}\n')
    project = files_project(root)
    run(project)
    (text,) = rows(project, "SELECT cursor FROM meta.cursors")[0]
    assert list(json.loads(text)["files"]) == ['we"ird name.jsonl']


def test_a_path_without_a_glob_is_one_file_keyed_by_its_name(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root, "users.csv", b"id,name\nu1,Ann\n")
    write(root, "other.csv", b"id,name\nu2,Bob\n")
    project = files_project(root, path="landing/users.csv")
    assert [w.window_key for w in run(project).windows] == ["users.csv"]
    assert rows(project, "SELECT id, name FROM staging.items") == [("u1", "Ann")]


def test_every_element_of_a_json_array_is_landed_or_quarantined_none_vanishes(
    tmp_path: Path,
) -> None:
    root = tmp_path / "p"
    write(root, "a.json", b'[{"id": "o1"}, null, 7, {"id": "o2"}]')
    project = files_project(root)
    (window,) = run(project).windows
    assert (window.rows, window.quarantined) == (2, 2)
    assert rows(project, "SELECT line_no FROM raw.src_records ORDER BY 1") == [(1,), (4,)]
    assert rows(project, "SELECT line_no, reason FROM meta.quarantine ORDER BY 1") == [
        (2, "a JSON null, not an object"), (3, "a JSON number, not an object"),
    ]  # fmt: skip


@pytest.mark.parametrize("min_rows", [1, 100], ids=["typed_in_window", "typed_later"])
def test_a_replaced_file_stages_the_same_rows_whether_typed_in_its_window_or_later(
    tmp_path: Path, min_rows: int
) -> None:
    """Its keys that another load also holds are not taken from that load meanwhile."""
    root = tmp_path / "p"
    write(root, "a.jsonl", b'{"id": "X", "v": 1}\n', mtime=1_700_000_000)
    write(root, "b.jsonl", b'{"id": "X", "v": 1}\n{"id": "Y", "v": 0}\n', mtime=1_700_000_000)
    items = {**ITEMS, "thresholds": {"min_rows": min_rows}}
    project = build_project(root, sources={"src": {"kind": "files", "path": "landing/*"}},
                            staging={"items": items})  # fmt: skip
    for changed in (False, True):
        if changed:
            write(root, "a.jsonl", b'{"id": "X", "v": 2}\n', mtime=1_700_000_100)
        run(project)
        with Pipeline(project, now=NOW) as pipeline:
            pipeline.stage(force=True)
    assert rows(project, "SELECT id, v, load_id FROM staging.items ORDER BY id") == [
        ("X", 2.0, 3), ("Y", 0.0, 2),
    ]  # fmt: skip


def test_a_rewrite_that_keeps_size_and_mtime_is_still_seen(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root, "a.jsonl", b'{"id": "a", "v": 1}\n', mtime=1_700_000_000)
    project = files_project(root)
    run(project)
    write(root, "a.jsonl", b'{"id": "a", "v": 2}\n', mtime=1_700_000_000)  # as cp -p leaves it
    assert [w.window_key for w in run(project).windows] == ["a.jsonl"]
    assert rows(project, "SELECT v FROM staging.items") == [(2.0,)]


@pytest.mark.parametrize("path", ["landing", "landing/"], ids=["directory", "trailing_slash"])
def test_a_path_that_names_a_directory_is_an_error_not_an_empty_source(
    tmp_path: Path, path: str
) -> None:
    root = tmp_path / "p"
    write(root, "a.jsonl", b'{"id": "a"}\n')
    if path.endswith("/"):
        with pytest.raises(ConfigError):
            files_project(root, path=path)
        return
    project = files_project(root, path=path)
    with Pipeline(project, now=NOW) as pipeline, pytest.raises(SourceError) as error:
        pipeline.run()
    assert str(error.value) == (
        "sources.src: landing names a directory, not files; add a glob such as /* or /**/*.csv"
    )


def test_a_project_directory_whose_name_looks_like_a_glob_is_a_place(tmp_path: Path) -> None:
    root = tmp_path / "proj[1]"
    write(root, "a.jsonl", b'{"id": "a"}\n')
    project = files_project(root)
    assert [w.window_key for w in run(project).windows] == ["a.jsonl"]


def test_forget_erases_a_person_from_files_raw_and_quarantined_rows_alike(
    tmp_path: Path,
) -> None:
    root = tmp_path / "p"
    write(root, "a.csv", b"id,email,ts,city\n1,alice@example.com,2024-01-01 00:00:00,Paris\n"
                         b"2,bob@example.com,2024-01-01 00:00:00,Rome\n")  # fmt: skip
    write(root, "b.csv", b"id,email,ts,city\n3,alice@example.com,2024-01-02 00:00:00,Lyon,X\n"
                         b"4,carol@example.com,2024-01-02 00:00:00,Oslo,EXTRA\n")  # fmt: skip
    people = {"source": "src", "unique_key": "id",
              "columns": {"id": "VARCHAR", "email": "VARCHAR", "ts": "TIMESTAMP",
                          "city": "VARCHAR"}}  # fmt: skip
    anchor = {"entities": {"User": {"key": "email", "sources": ["people"], "changed_at": "ts",
              "attributes": {"city": {"model": "people", "history": "scd2"}}}}}  # fmt: skip
    project = build_project(root, sources={"src": {"kind": "files", "path": "landing/*"}},
                            staging={"people": people}, anchor=anchor,
                            pii_salt="test-salt")  # fmt: skip
    run(project)
    assert rows(project, "SELECT count(*) FROM meta.quarantine") == [(2,)]  # the ragged rows

    with Pipeline(project, now=NOW) as pipeline:
        pipeline.forget("User", ["alice@example.com"])
    found = rows(project, "SELECT count(*) FROM raw.src_records WHERE record LIKE '%alice%'")
    assert found == [(0,)]
    # Her ragged row is gone from the quarantine; Carol's stays, untouched.
    assert rows(project, "SELECT record FROM meta.quarantine") == [
        ("4,carol@example.com,2024-01-02 00:00:00,Oslo,EXTRA",)
    ]
