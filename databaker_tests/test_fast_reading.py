"""The fast reading of a drop keeps what the line-by-line reading keeps, or declines the drop.

Every crafted drop is read both ways: the line-by-line reading (DuckDB, one line at a time) is
the definition, and the fast reading (Arrow, in blocks) must either write the very same rows or
raise ``DropNotReadFast``. It must decline every drop with a line the line-by-line reading
rejects, so that the rejected line is reported with its number.
"""

import gzip
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from databaker.assets.addressbase import fast_reading
from databaker.assets.addressbase.assets import RAW_QUERY
from databaker.assets.addressbase.fast_reading import DropNotReadFast, write_drop_partitions
from databaker.csv_records import record_pattern
from databaker.resources import DuckDBQueryEngine, LocalLayerStore
from databaker_tests.conftest import address_line, write_lines

GOOD = address_line("1", "1 Good Road", "M1 1AA", -2.24, 53.48)


def read_fast(files: list[Path], root: Path) -> list[dict]:
    store = LocalLayerStore(root=str(root))
    write_drop_partitions(
        store, [str(f) for f in files], addressbase_source="drop", output="fast/", workers=2
    )
    return rows_of(root / "fast")


def read_line_by_line(files: list[Path], root: Path) -> tuple[list[dict], int]:
    """The rows kept and the number of lines rejected."""
    summary = DuckDBQueryEngine().run(
        RAW_QUERY,
        {
            "files": [str(f) for f in files],
            "record_pattern": record_pattern(5),
            "addressbase_source": "drop",
            "output": f"{root / 'exact'}/",
            "rejects_output": str(root / "rejected.csv"),
        },
    )
    return rows_of(root / "exact"), summary.to_pylist()[0]["rejected_rows"]


def rows_of(folder: Path) -> list[dict]:
    if not folder.exists():
        return []
    rows = pq.read_table(folder).to_pylist()
    return sorted(({**r, "first_letter": str(r["first_letter"])} for r in rows), key=str)


def test_a_clean_drop_is_read_the_same_both_ways(tmp_path):
    """Lines in every form the rules accept: quoted fields, postcodes and points written
    loosely, an empty address type, a blank line, CRLF endings, a gzipped second file."""
    first = write_lines(
        tmp_path / "drop" / "a.csv",
        [
            address_line("1", 'Flat 2, "The Old Mill", Kendal', "LA9 4AB", -2.745, 54.328),
            '"2","2 High Street","la9  4ab","POINT(-2.7451 54.3281)","RD04"',
            "3,3 High Street,LA9 4AB,SRID=4326;POINT( -2.7452  54.3282 ),",
            "",
            "4,4 High Street,LA94AB,SRID=4326;POINT(-2.7453 54.3283),RD04",
            '5,"""Quoted"" House",EC1A 1BB,SRID=4326;POINT(-0.1 51.52),RD06',
        ],
        newline="\r\n",
    )
    second = write_lines(
        tmp_path / "drop" / "b.csv.gz", [address_line("6", "6 Low Road", "B1 1AA", -1.9, 52.48)]
    )
    fast = read_fast([first, second], tmp_path)
    exact, rejected = read_line_by_line([first, second], tmp_path)
    assert rejected == 0
    assert fast == exact
    assert [
        (r["uprn"], r["address"], r["postcode"], r["outcode"], r["address_type"]) for r in fast
    ] == [
        ("1", 'Flat 2, "The Old Mill", Kendal', "LA9 4AB", "LA9", "RD04"),
        ("2", "2 High Street", "LA9 4AB", "LA9", "RD04"),
        ("3", "3 High Street", "LA9 4AB", "LA9", ""),
        ("4", "4 High Street", "LA9 4AB", "LA9", "RD04"),
        ("5", '"Quoted" House', "EC1A 1BB", "EC1A", "RD06"),
        ("6", "6 Low Road", "B1 1AA", "B1", "RD04"),
    ]
    assert (fast[2]["longitude"], fast[2]["latitude"]) == (-2.7452, 54.3282)
    assert {r["source_file"] for r in fast} == {str(first), str(second)}
    assert {r["first_letter"] for r in fast} == {"L", "E", "B"}


def test_blocks_and_row_groups_cut_anywhere_keep_every_row(tmp_path, monkeypatch):
    """Tiny blocks and row groups: lines with quoted commas fall across block boundaries, and
    each letter's files mix rows of two files, flushed many times."""
    monkeypatch.setattr(fast_reading, "BLOCK_BYTES", 700)
    monkeypatch.setattr(fast_reading, "ROW_GROUP_ROWS", 7)
    lines = [
        address_line(
            str(n),
            f'Flat {n}, "Tower {n % 7}", Leeds',
            f"LS{n % 9 + 1} 1AA",
            round(-1.5 - n * 0.0001237, 6),
            53.8 + n / 7919,
        )
        for n in range(1, 600)
    ]
    parts = [
        write_lines(tmp_path / "drop" / "a.csv.gz", lines[:300]),
        write_lines(tmp_path / "drop" / "b.csv", lines[300:]),
    ]
    fast = read_fast(parts, tmp_path)
    exact, rejected = read_line_by_line(parts, tmp_path)
    assert rejected == 0
    assert len(fast) == 599
    assert fast == exact
    assert {r["uprn"]: r["source_file"] for r in fast} == {
        str(n): str(parts[n > 300]) for n in range(1, 600)
    }
    files = list((tmp_path / "fast").rglob("*.parquet"))
    assert len(files) <= 2 * 9, "one file per worker and letter"
    assert max(pq.ParquetFile(f).num_row_groups for f in files) > 1


# Lines the line-by-line reading rejects, and lines it keeps but the fast reading may not
# be sure to read the same way.
TRICKY_LINES = {
    "text after a closing quote": '2,"2 High"Street,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04',
    "a quote inside a bare field": '2,The "Old" Forge,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04',
    "an unterminated quote": '2,"2 High Street,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04',
    "a record spanning lines": '2,"2 High\nStreet",M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04',
    "a carriage return in a quoted field": (
        '2,"2 High\rStreet",M1 1AA,SRID=4326;POINT(-2.24 53.48),'
    ),
    "a postcode spanning lines": '2,2 High Street,"m1\n1aa",SRID=4326;POINT(-2.24 53.48),RD04',
    "a location spanning lines": '2,2 High Street,M1 1AA,"POINT(-2.24\n53.48)",RD04',
    "a lone carriage return": "2,2 High Street,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD\r04",
    "a NUL byte": "2,2 High\x00Street,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
    "six fields": "2,2 High Street,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04,x",
    "four fields": "2,2 High Street,M1 1AA,SRID=4326;POINT(-2.24 53.48)",
    "a space only": " ",
    "a UPRN with a letter": "2a,2 High Street,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
    "a UPRN of 13 digits": "1234567890123,2 High St,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
    "an empty UPRN": ",2 High Street,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
    "an empty address": '2,"",M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04',
    "a blank address": "2,   ,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
    "an address of a tab": "2,\t,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
    "an invalid postcode": "2,2 High Street,M1 1A,SRID=4326;POINT(-2.24 53.48),RD04",
    "a postcode too long": "2,2 High Street,M1 1AAAA,SRID=4326;POINT(-2.24 53.48),RD04",
    "a non-ASCII postcode": "2,2 High Street,M1 1ÅA,SRID=4326;POINT(-2.24 53.48),RD04",
    "a postcode with a long s": "2,2 High Street,\u017f1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
    "a postcode with a tab": "2,2 High Street,m1\t1aa,SRID=4326;POINT(-2.24 53.48),RD04",
    "another SRID": "2,2 High Street,M1 1AA,SRID=27700;POINT(383000 398000),RD04",
    "a point in exponent form": "2,2 High Street,M1 1AA,SRID=4326;POINT(-2.24e0 53.48),RD04",
    "a point with a plus sign": "2,2 High Street,M1 1AA,SRID=4326;POINT(+2.24 53.48),RD04",
    "a point of infinity": "2,2 High Street,M1 1AA,SRID=4326;POINT(inf 53.48),RD04",
    "a point outside Great Britain": "2,2 High Street,M1 1AA,SRID=4326;POINT(2.35 48.85),RD04",
    "a point on the boundary": "2,2 High Street,M1 1AA,SRID=4326;POINT(3 62),RD04",
    "a huge coordinate": "2,2 High St,M1 1AA,SRID=4326;POINT(" + "9" * 400 + " 53.48),RD04",
    "a point without parentheses": "2,2 High Street,M1 1AA,SRID=4326;POINT -2.24 53.48,RD04",
    "a lower-case point": "2,2 High Street,M1 1AA,srid=4326;point(-2.24 53.48),RD04",
    "an empty location": "2,2 High Street,M1 1AA,,RD04",
}


@pytest.mark.parametrize("line", TRICKY_LINES.values(), ids=TRICKY_LINES.keys())
def test_a_line_is_read_the_same_way_or_the_drop_is_declined(tmp_path, line):
    drop = tmp_path / "drop.csv"
    drop.write_bytes(f"{GOOD}\n{line}\n{GOOD.replace('1,', '3,', 1)}\n".encode())
    exact, rejected = read_line_by_line([drop], tmp_path)
    if rejected:
        with pytest.raises(DropNotReadFast):
            read_fast([drop], tmp_path)
        return
    try:
        fast = read_fast([drop], tmp_path)
    except DropNotReadFast:
        return
    assert fast == exact


@pytest.mark.parametrize(
    "data",
    [b"\xef\xbb\xbf" + GOOD.encode() + b"\n", GOOD.encode() + b"\n" + b"2,caf\xe9,M1 1AA\n"],
    ids=["a byte-order mark", "bytes that are not UTF-8"],
)
def test_bytes_the_fast_reading_leaves_to_the_line_by_line_reading(tmp_path, data):
    drop = tmp_path / "drop.csv.gz"
    drop.write_bytes(gzip.compress(data))
    with pytest.raises(DropNotReadFast, match=str(drop)):
        read_fast([drop], tmp_path)
