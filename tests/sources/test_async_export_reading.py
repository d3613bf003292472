"""An export file on disk as records: CSV a block at a time, ZIP a member at a time, with the
`files` kind's rules (values as text, header-keyed objects, bad rows quarantined)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from anchorflow.sources.async_export.csv_stream import csv_pieces
from anchorflow.sources.async_export.result import result_parts
from anchorflow.sources.base import ReadLimits
from anchorflow.sources.files.config import CsvOptions
from anchorflow.sources.lines import joined

pytestmark = pytest.mark.unit


def read_csv(data: bytes, block_bytes: int = 1 << 20, **options: object) -> tuple[list, list]:
    pieces = list(csv_pieces("f.csv", lambda: io.BytesIO(data), CsvOptions(**options),
                             block_bytes))  # fmt: skip
    whole = joined(pieces)
    records = [(r["line_no"], json.loads(r["record"])) for r in whole.records.to_pylist()]
    return records, [(r.line_no, r.reason) for r in whole.rejected]


def test_rows_become_objects_keyed_by_header_with_values_as_text() -> None:
    records, rejected = read_csv(b'\xef\xbb\xbfid,score,note\n1,07,"a, ""b"""\n2,,x\n')
    assert records == [(1, {"id": "1", "score": "07", "note": 'a, "b"'}),
                       (2, {"id": "2", "score": None, "note": "x"})]  # fmt: skip
    assert rejected == []
    kept, _ = read_csv(b"id,score\n2,\n", empty_as_null=False)
    assert kept == [(1, {"id": "2", "score": ""})]


def test_a_large_file_comes_in_blocks_numbered_on_from_each_other() -> None:
    body = "".join(f'{i},"line\nbreak {i}"\n' for i in range(5000))
    pieces = list(csv_pieces("f.csv", lambda: io.BytesIO(("id,text\n" + body).encode()),
                             CsvOptions(), 4096))  # fmt: skip
    assert len(pieces) > 10
    whole = joined(pieces).records.to_pylist()
    assert [r["line_no"] for r in whole] == list(range(1, 5001))
    assert json.loads(whole[4321]["record"]) == {"id": "4321", "text": "line\nbreak 4321"}


def test_ragged_rows_a_bad_header_and_an_empty_file_are_quarantined_or_empty() -> None:
    records, rejected = read_csv(b"a,b\n1,2\n3\n4,5\n")
    assert [r for _, r in records] == [{"a": "1", "b": "2"}, {"a": "4", "b": "5"}]
    assert rejected == [(3, "expected 2 fields, found 1")]
    assert read_csv(b"a,a\n1,2\n") == ([], [(1, "the CSV header names column 'a' twice")])
    assert read_csv(b"") == ([], [])


def test_text_that_stops_parsing_keeps_the_rows_before_it() -> None:
    good = "".join(f"{i},x\n" for i in range(3000)).encode()
    records, rejected = read_csv(b"a,b\n" + good + b"\xff\xfe,x\n", block_bytes=4096)
    # The blocks before the one holding invalid UTF-8 land; the rest is one quarantined record.
    assert 2000 <= len(records) < 3000
    assert [r["a"] for _, r in records] == [str(i) for i in range(len(records))]
    ((line, reason),) = rejected
    assert line == len(records) + 1
    assert reason.startswith(f"not readable as CSV after row {len(records):,} (")
    assert "invalid UTF8" in reason


def test_a_zip_is_read_member_by_member_and_a_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("b.csv", "x\n1\n2\n")
        archive.writestr("a.ndjson", '{"k": 1}\n')
        archive.writestr("c.csv", "0," * (20 << 20))
    parts = list(result_parts(path, "zip", "export.zip", CsvOptions(), ReadLimits()))
    assert [last for _, last in parts] == [False, False, True]
    records = [r["record"] for p, _ in parts for r in p.records.to_pylist()]
    assert records == ['{"k": 1}', '{"x":"1"}', '{"x":"2"}']
    (bomb,) = parts[-1][0].rejected
    assert bomb.origin == "c.csv" and "compression bomb" in bomb.reason
