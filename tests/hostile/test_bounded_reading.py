"""Reading a file in bounded pieces: line numbers run on across pieces and parts, a line too
long to keep is quarantined by length and prefix, and a compression bomb is refused."""

from __future__ import annotations

import gzip
import io

import pytest

from anchorflow.sources import inflate
from anchorflow.sources.base import ReadLimits
from anchorflow.sources.files.config import CsvOptions
from anchorflow.sources.files.readers import read_file, read_parts
from anchorflow.sources.lines import LineSplitter, bounded_parts, split_pieces

pytestmark = [pytest.mark.hostile, pytest.mark.unit]

MiB = 1 << 20


def records(pieces: list) -> list[tuple[int, str]]:  # type: ignore[type-arg]
    return [(r["line_no"], r["record"]) for p in pieces for r in p.records.to_pylist()]


def test_lines_cut_across_pieces_keep_their_numbers_and_text() -> None:
    texts = [b'{"a":1}\n\n{"b"', b':2}\n{"c":3', b"}\n", b'{"d":4}']
    pieces = list(split_pieces("f.json", texts, max_line_bytes=1024))
    assert records(pieces) == [(1, '{"a":1}'), (3, '{"b":2}'), (4, '{"c":3}'), (5, '{"d":4}')]


def test_a_line_longer_than_the_cap_is_skipped_and_quarantined_with_a_prefix() -> None:
    splitter = LineSplitter("f.json", max_line_bytes=2048)
    head = b'{"a":1}\n{"pad":"' + b"x" * 3000
    pieces = [splitter.feed(head)] + [splitter.feed(b"y" * 5000) for _ in range(3)]
    pieces += [splitter.feed(b'"}\n{"b":2}\n'), splitter.finish()]
    assert records(pieces) == [(1, '{"a":1}'), (3, '{"b":2}')]
    (long,) = [r for p in pieces for r in p.rejected]
    length = len('{"pad":"') + 3000 + 15000 + len('"}')
    assert (long.line_no, len(long.text), long.text[:8]) == (2, 1024, '{"pad":"')
    assert long.reason == (
        f"line of {length:,} bytes exceeds max_line_bytes (2 KiB); "
        "only its first 1,024 bytes are kept"
    )


def test_a_long_line_inside_one_piece_is_quarantined_too() -> None:
    (piece, *_) = split_pieces("f.json", [b'{"a":1}\n' + b"z" * 5000 + b'\n{"b":2}\n'], 2048)
    assert records([piece]) == [(1, '{"a":1}'), (3, '{"b":2}')]
    assert [(r.line_no, len(r.text)) for r in piece.rejected] == [(2, 1024)]


def test_pieces_gather_into_parts_and_only_the_last_says_so() -> None:
    texts = [b'{"n":%d}\n' % i * 1000 for i in range(10)]
    parts = list(bounded_parts(split_pieces("f.json", texts, 1024), max_part_bytes=150_000))
    assert [last for _, last in parts] == [False] * (len(parts) - 1) + [True]
    assert len(parts) > 2
    numbers = [n for piece, _ in parts for n in piece.records.column("line_no").to_pylist()]
    assert numbers == list(range(1, 10_001))


def test_a_gzip_bomb_file_is_one_quarantined_record_naming_the_setting() -> None:
    bomb = gzip.compress(b"\n" * (32 * MiB))
    table, rejected = read_file("bomb.ndjson.gz", bomb, "auto", "auto", CsvOptions())
    assert table.num_rows == 0
    (record,) = rejected
    assert "refused as a compression bomb" in record.reason
    assert "raise max_inflation_ratio" in record.reason
    allowed = ReadLimits(max_inflation_ratio=100_000)
    table, rejected = read_file("bomb.ndjson.gz", bomb, "auto", "auto", CsvOptions(), allowed)
    assert (table.num_rows, rejected) == (0, [])


def test_a_large_ndjson_file_comes_in_parts_numbered_on() -> None:
    data = gzip.compress(b"".join(b'{"n":%d}\n' % i for i in range(300_000)))
    limits = ReadLimits(max_part_bytes=MiB)
    parts = list(read_parts("f.ndjson.gz", data, "auto", "auto", CsvOptions(), limits))
    assert len(parts) >= 2 and [last for _, last in parts].count(True) == 1
    numbers = [n for piece, _ in parts for n in piece.records.column("line_no").to_pylist()]
    assert numbers == list(range(1, 300_001))


def test_concatenated_gzip_members_are_read_like_gzip_does() -> None:
    data = gzip.compress(b'{"a":1}\n') + gzip.compress(b'{"b":2}\n')
    table, rejected = read_file("two.ndjson.gz", data, "auto", "auto", CsvOptions())
    assert (table.column("record").to_pylist(), rejected) == (['{"a":1}', '{"b":2}'], [])


@pytest.mark.parametrize("cut", [-1, 0, 1, 2])
def test_a_read_that_ends_inside_the_next_members_magic_still_reads_it(
    monkeypatch: pytest.MonkeyPatch, cut: int
) -> None:
    first, second = gzip.compress(b"a\nb\n"), gzip.compress(b"c\n")
    # Reads of len(first) + cut bytes: the first read ends just before, inside or after the
    # two magic bytes that start the second member.
    monkeypatch.setattr(inflate, "READ_BYTES", len(first) + cut)
    data = first + second
    pieces = inflate.inflated_pieces(io.BytesIO(data), len(data), True, 200, "f.json.gz")
    assert b"".join(pieces) == b"a\nb\nc\n"
