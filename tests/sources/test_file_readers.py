"""A file's bytes as records, without a warehouse: formats, compressions and what is refused."""

from __future__ import annotations

import gzip

import pyarrow as pa
import pytest

from anchorflow.sources.files.config import CsvOptions
from anchorflow.sources.files.readers import kind_of, read_file

pytestmark = pytest.mark.unit


def records(name: str, data: bytes, fmt: str = "auto", **csv: object) -> list[tuple[int, str]]:
    table, rejected = read_file(name, data, fmt, "auto", CsvOptions(**csv))  # type: ignore[arg-type]
    assert rejected == []
    assert set(table.column("origin").to_pylist()) <= {name}
    lines, texts = table.column("line_no").to_pylist(), table.column("record").to_pylist()
    return list(zip(lines, texts, strict=True))


@pytest.mark.parametrize(
    ("name", "fmt", "compression"),
    [
        ("a.jsonl", "ndjson", "none"), ("a.ndjson.gz", "ndjson", "gzip"),
        ("a.json.zst", "json", "zstd"), ("A.CSV", "csv", "none"), ("a.tsv.gzip", "csv", "gzip"),
        ("dir.v2/a.parquet", "parquet", "none"), ("a.txt.zstd", "ndjson", "zstd"),
    ],
)  # fmt: skip
def test_format_and_compression_come_from_the_extensions(
    name: str, fmt: str, compression: str
) -> None:
    kind = kind_of(name, "auto", "auto")
    assert (kind.format, kind.compression) == (fmt, compression)


def test_configured_format_and_compression_win_over_the_name() -> None:
    kind = kind_of("export.dat", "csv", "gzip")
    assert (kind.format, kind.compression) == ("csv", "gzip")


def test_ndjson_lines_are_kept_as_they_are_and_blank_lines_are_no_records() -> None:
    data = gzip.compress(b'{"a": 1}\r\n\n  {"b": [1, 2]}\n')
    assert records("x.jsonl.gz", data) == [(1, '{"a": 1}\r'), (3, '  {"b": [1, 2]}')]


def test_a_json_array_gives_one_record_per_element_in_order() -> None:
    data = pa.compress(b'[{"a": 1}, {"b": {"c": [true, null]}}, {"d": "\\u00e9"}]', "zstd",
                       asbytes=True)  # fmt: skip
    assert records("x.json.zst", bytes(data)) == [
        (1, '{"a":1}'), (2, '{"b":{"c":[true,null]}}'), (3, '{"d":"é"}'),
    ]  # fmt: skip


def test_csv_rows_become_objects_keyed_by_the_header_with_text_values() -> None:
    data = b'\xef\xbb\xbfid;note;n\n1;"semi; colon";\n2;"say ""hi""";3\n'
    assert records("x.csv", data, delimiter=";") == [
        (1, '{"id":"1","note":"semi; colon","n":null}'),
        (2, '{"id":"2","note":"say \\"hi\\"","n":"3"}'),
    ]


def test_an_empty_file_of_any_format_holds_no_record() -> None:
    for name in ("x.jsonl", "x.json", "x.csv"):
        assert records(name, b"") == []


def test_an_empty_header_name_is_refused_with_the_reason() -> None:
    _, rejected = read_file("x.csv", b"id,,n\n1,2,3\n", "auto", "auto", CsvOptions())
    assert [r.reason for r in rejected] == ["the CSV header has an empty column name"]


def test_invalid_utf8_in_a_json_document_is_refused_with_the_reason() -> None:
    _, rejected = read_file("x.json", b'[{"a": "\xff"}]', "auto", "auto", CsvOptions())
    assert [r.reason for r in rejected] == ["not valid UTF-8 (invalid start byte)"]


def test_a_null_element_of_an_array_stays_a_record_for_the_land_step_to_refuse() -> None:
    table, rejected = read_file("x.json", b'[{"id": 1}, null, 2]', "auto", "auto", CsvOptions())
    assert table.column("record").to_pylist() == ['{"id":1}', "null", "2"]
    assert rejected == []


def test_csv_rows_survive_blank_lines_before_the_header_and_any_line_ending() -> None:
    assert records("a.csv", b"\n\r\nid,v\nx,1\n") == [(1, '{"id":"x","v":"1"}')]
    assert records("b.csv", b"id,v\rx,1\ry,2\r") == [
        (1, '{"id":"x","v":"1"}'), (2, '{"id":"y","v":"2"}'),
    ]  # fmt: skip
    assert records("c.csv", b'"i\nd",v\r\nx,1\r\n') == [(1, '{"i\\nd":"x","v":"1"}')]
    assert records("d.csv", b"id,v") == []  # a header without rows, without a newline


def test_a_ragged_csv_row_is_refused_alone_with_its_text() -> None:
    table, rejected = read_file("x.csv", b"id,v\na,1\nb,2,extra,more\nc,3\n", "auto", "auto",
                                CsvOptions())  # fmt: skip
    assert table.column("record").to_pylist() == ['{"id":"a","v":"1"}', '{"id":"c","v":"3"}']
    assert [(r.reason, r.text) for r in rejected] == [
        ("expected 2 fields, found 4", "b,2,extra,more")
    ]


def test_a_tsv_file_is_read_with_tabs_unless_the_source_says_otherwise() -> None:
    assert records("x.tsv.gz", gzip.compress(b"id\tv\nx\t1\n")) == [(1, '{"id":"x","v":"1"}')]
    assert records("y.tsv", b"id;v\nx;1\n", delimiter=";") == [(1, '{"id":"x","v":"1"}')]


def test_a_byte_order_mark_is_no_part_of_the_first_record() -> None:
    assert records("x.jsonl", b'\xef\xbb\xbf{"a": 1}\n') == [(1, '{"a": 1}')]
    assert records("y.json", b'\xef\xbb\xbf[{"a": 1}]') == [(1, '{"a":1}')]


def test_what_no_reader_can_take_is_refused_with_the_reason_never_raised() -> None:
    _, rejected = read_file("x.parquet", b"PAR1" + b"\x00" * 64 + b"PAR1", "auto", "auto",
                            CsvOptions())  # fmt: skip
    assert len(rejected) == 1 and rejected[0].reason.startswith("not readable as Parquet")
