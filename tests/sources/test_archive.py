"""Splitting inflated export members into records, and opening the export ZIP."""

from __future__ import annotations

import gzip
import random
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from anchorflow.dev.emulators.amplitude_faults import corrupt_gzip
from anchorflow.errors import TerminalSourceError, TransientSourceError
from anchorflow.sources.amplitude.archive import CorruptExport, ExportArchive
from anchorflow.sources.base import RECORD_SCHEMA
from anchorflow.sources.lines import split_lines

pytestmark = pytest.mark.unit

H5, H6 = datetime(2024, 3, 1, 5), datetime(2024, 3, 1, 6)


def records(data: bytes, origin: str = "f.json") -> list[tuple[str, int, str]]:
    table, rejected = split_lines(origin, data)
    assert rejected == []
    assert table.schema == RECORD_SCHEMA
    return [(r["origin"], r["line_no"], r["record"]) for r in table.to_pylist()]


# --- split_lines ----------------------------------------------------------------------------


def test_line_numbers_are_one_based_and_count_blank_lines() -> None:
    data = b'{"a":1}\n\n{"b":2}\n\n\n{"c":3}\n'
    assert records(data) == [
        ("f.json", 1, '{"a":1}'),
        ("f.json", 3, '{"b":2}'),
        ("f.json", 6, '{"c":3}'),
    ]


def test_a_last_line_without_newline_is_kept() -> None:
    assert records(b'{"a":1}\n{"b":2}') == [("f.json", 1, '{"a":1}'), ("f.json", 2, '{"b":2}')]
    assert records(b"only") == [("f.json", 1, "only")]


def test_a_leading_blank_line_shifts_the_numbers() -> None:
    assert records(b'\n{"a":1}') == [("f.json", 2, '{"a":1}')]


def test_crlf_is_kept_as_is() -> None:
    assert records(b'{"a":1}\r\n{"b":"x\ry"}\r\n') == [
        ("f.json", 1, '{"a":1}\r'),
        ("f.json", 2, '{"b":"x\ry"}\r'),
    ]


@pytest.mark.parametrize("data", [b"", b"\n", b"\n\n\n"], ids=["empty", "newline", "newlines"])
def test_input_without_lines_gives_no_records(data: bytes) -> None:
    table, rejected = split_lines("f.json", data)
    assert table.num_rows == 0
    assert table.schema == RECORD_SCHEMA
    assert rejected == []


def test_multibyte_text_survives_exactly() -> None:
    lines = ['{"city":"Zürich"}', '{"emoji":"🙂"}', '{"jp":"東京"}']
    data = "\n".join(lines).encode()
    assert [r[2] for r in records(data)] == lines


def test_an_invalid_utf8_line_is_rejected_with_its_number_while_the_others_load() -> None:
    data = b'{"a":1}\n{"bad":"\xff\xfe"}\n\n{"c":"\xc3\xa9"}\n\xc3\n'
    table, rejected = split_lines("part#0.json", data)
    assert [(r["line_no"], r["record"]) for r in table.to_pylist()] == [
        (1, '{"a":1}'),
        (4, '{"c":"é"}'),
    ]
    assert [(r.origin, r.line_no) for r in rejected] == [("part#0.json", 2), ("part#0.json", 5)]
    assert all(r.reason.startswith("not valid UTF-8") for r in rejected)
    assert rejected[0].text == '{"bad":"\ufffd\ufffd"}'


def test_a_large_input_gives_exactly_the_lines_of_bytes_splitlines() -> None:
    rng = random.Random(20240301)
    alphabet = 'abcxyz019 {}":,é東🙂'
    lines = []
    for i in range(100_000):
        if rng.random() < 0.05:
            lines.append("")  # blank lines are skipped but counted
        else:
            body = "".join(rng.choices(alphabet, k=rng.randint(1, 80)))
            lines.append(f'{{"i":{i},"s":"{body}"}}')
    data = "\n".join(lines).encode()  # and no final newline
    expected = [
        ("big.json", n, line.decode()) for n, line in enumerate(data.splitlines(), start=1) if line
    ]
    assert len(data.splitlines()) == 100_000
    got = records(data, "big.json")
    assert len(got) == len(expected)
    assert got == expected


# --- ExportArchive --------------------------------------------------------------------------


def ndjson(*events: str) -> bytes:
    return gzip.compress("".join(e + "\n" for e in events).encode(), mtime=0)


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            if name.endswith("/"):
                archive.writestr(zipfile.ZipInfo(name), b"")
            else:
                archive.writestr(name, data)
    return path


def test_members_are_grouped_by_hour_in_part_order(tmp_path: Path) -> None:
    path = write_zip(
        tmp_path / "export.zip",
        {
            "187520/": b"",
            "187520/187520_2024-03-01_5#10.json.gz": ndjson('{"n":"5/10a"}', '{"n":"5/10b"}'),
            "187520/187520_2024-03-01_6#0.json.gz": ndjson('{"n":"6/0"}'),
            "187520/187520_2024-03-01_5#2.json.gz": ndjson('{"n":"5/2"}'),
            "187520/187520_2024-03-01_5#0.json.gz": ndjson('{"n":"5/0"}'),
        },
    )
    archive = ExportArchive(path)
    try:
        assert archive.hours() == {H5, H6}
        assert [m.part for m in archive.by_hour[H5]] == [0, 2, 10]
        first = archive.by_hour[H5][0]
        assert (first.name, first.path, first.gzipped) == (
            "187520_2024-03-01_5#0.json.gz",
            "187520/187520_2024-03-01_5#0.json.gz",
            True,
        )
        decoded = archive.decode_hour(H5)
        assert decoded.files == 3
        assert decoded.rejected == []
        assert [(r["origin"], r["line_no"], r["record"]) for r in decoded.records.to_pylist()] == [
            ("187520_2024-03-01_5#0.json.gz", 1, '{"n":"5/0"}'),
            ("187520_2024-03-01_5#2.json.gz", 1, '{"n":"5/2"}'),
            ("187520_2024-03-01_5#10.json.gz", 1, '{"n":"5/10a"}'),
            ("187520_2024-03-01_5#10.json.gz", 2, '{"n":"5/10b"}'),
        ]
        assert archive.decode_hour(H6).records.column("record").to_pylist() == ['{"n":"6/0"}']
        assert archive.decode_hour(datetime(2024, 3, 1, 7)).records.num_rows == 0
    finally:
        archive.close()


def test_a_plain_json_member_is_read_without_gunzip(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "export.zip", {"187520/187520_2024-03-01_5#0.json": b'{"a":1}\n'})
    archive = ExportArchive(path)
    try:
        assert archive.decode_hour(H5).records.column("record").to_pylist() == ['{"a":1}']
    finally:
        archive.close()


@pytest.mark.parametrize(
    "name", ["187520/readme.txt", "187520/187520_2024-03-01_5.json.gz", "events.csv"]
)
def test_a_foreign_file_name_is_a_terminal_error(tmp_path: Path, name: str) -> None:
    path = write_zip(
        tmp_path / "export.zip",
        {"187520/187520_2024-03-01_5#0.json.gz": ndjson('{"a":1}'), name: b"hello"},
    )
    with pytest.raises(TerminalSourceError, match="unexpected file") as raised:
        ExportArchive(path)
    assert name in str(raised.value)
    assert not isinstance(raised.value, TransientSourceError)


def test_a_truncated_zip_is_a_corrupt_export(tmp_path: Path) -> None:
    whole = write_zip(
        tmp_path / "whole.zip",
        {f"187520/187520_2024-03-01_{h}#0.json.gz": ndjson('{"a":1}') * 50 for h in range(3)},
    ).read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CorruptExport, match="does not open"):
        ExportArchive(cut)
    assert issubclass(CorruptExport, TransientSourceError)  # downloading again may help


GOOD_MEMBER = ndjson(*(f'{{"n":{i},"pad":"{"x" * 50}"}}' for i in range(200)))
DAMAGED = {
    # What the emulator's corrupt_gzip fault sends: a valid header, a broken deflate stream.
    "deflate-stream": corrupt_gzip(GOOD_MEMBER),
    "crc": GOOD_MEMBER[:-8] + bytes(b ^ 0xFF for b in GOOD_MEMBER[-8:-4]) + GOOD_MEMBER[-4:],
    "truncated": GOOD_MEMBER[:-20],
    "not-gzip": b"PK" + GOOD_MEMBER[2:],
}


@pytest.mark.parametrize(
    "damage",
    [
        "deflate-stream",
        "crc",
        "truncated",
        "not-gzip",
    ],
)
def test_a_corrupt_gzip_member_is_a_corrupt_export(tmp_path: Path, damage: str) -> None:
    good, bad = GOOD_MEMBER, DAMAGED[damage]
    path = write_zip(
        tmp_path / "export.zip",
        {
            "187520/187520_2024-03-01_5#0.json.gz": good,
            "187520/187520_2024-03-01_5#1.json.gz": bad,
            "187520/187520_2024-03-01_6#0.json.gz": good,
        },
    )
    archive = ExportArchive(path)
    try:
        with pytest.raises(CorruptExport, match=r"187520_2024-03-01_5#1\.json\.gz"):
            archive.decode_hour(H5)
        assert archive.decode_hour(H6).records.num_rows == 200  # the other hour is fine
    finally:
        archive.close()


def test_a_member_naming_an_impossible_hour_is_a_terminal_error(tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("187520/187520_2024-03-01_24#0.json.gz", gzip.compress(b"{}\n"))
    with pytest.raises(TerminalSourceError, match="impossible hour"):
        ExportArchive(path)
