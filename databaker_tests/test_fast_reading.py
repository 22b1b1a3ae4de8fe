"""The fast reading of a drop keeps what the line-by-line reading keeps, or declines the drop.

Every crafted drop is read both ways: the line-by-line reading (DuckDB, one line at a time) is
the definition, and the fast reading (Arrow, in blocks) must either write the very same rows or
raise ``DropNotReadFast``. It must decline every drop with a line the line-by-line reading
rejects, so that the rejected line is reported with its number.
"""

import csv
import gzip
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databaker import line_reading
from databaker.assets.addressbase import fast_reading, line_by_line
from databaker.assets.addressbase.fast_reading import DropNotReadFast, write_drop_partitions
from databaker.assets.addressbase.line_by_line import MAX_LINE_BYTES
from databaker.line_reading import InputUnreadable, numbered_lines
from databaker.resources import DuckDBQueryEngine, LocalLayerStore
from databaker.sources import drop_files
from databaker_tests.conftest import address_line, write_lines

GOOD = address_line("1", "1 Good Road", "M1 1AA", -2.24, 53.48)
MIB = 1 << 20


def line_of(length: int, fill: str = "x") -> str:
    """A line of ``length`` bytes whose address is ``fill`` repeated (quoted if a comma)."""
    quoted = 2 * (fill == ",")
    overhead = len(address_line("2", "", "M1 1AA", -2.24, 53.48)) + quoted
    return address_line("2", fill * (length - overhead), "M1 1AA", -2.24, 53.48)


def read_fast(files: list[Path | str], root: Path) -> list[dict]:
    store = LocalLayerStore(root=str(root))
    write_drop_partitions(
        store, [str(f) for f in files], addressbase_source="drop", output="fast/", workers=2
    )
    return rows_of(root / "fast")


def read_line_by_line(files: list[Path | str], root: Path) -> tuple[list[dict], int]:
    """The rows kept and the number of lines rejected."""
    root.mkdir(parents=True, exist_ok=True)
    summary = line_by_line.read_line_by_line(
        DuckDBQueryEngine(),
        [str(f) for f in files],
        addressbase_source="drop",
        output=f"{root / 'exact'}/",
        rejects_output=str(root / "rejected.csv"),
    )
    return rows_of(root / "exact"), summary["rejected_rows"]


def report_of(root: Path) -> list[dict]:
    csv.field_size_limit(max(csv.field_size_limit(), 2 * MIB))  # an over-long line's text
    with open(root / "rejected.csv", newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


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
    "a zero-padded UPRN": "000000000002,2 High St,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
    "a zero-padded quoted UPRN": '"02",2 High St,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04',
    "a line of exactly 1 MiB": line_of(MIB),
    "a line of half a MiB of quoted commas": line_of(MIB // 2 + 40, ","),
}

# Lines both readings reject, with the reason the report gives: the fast reading declines the
# drop, and the line-by-line reading names the line, its reason and its text.
REJECTED_LINES = {
    "a line over 1 MiB": (
        line_of(MIB + 1),
        "line is longer than 1 MiB (1048576 bytes)",
    ),
    "a line over 1 MiB of quoted commas": (
        line_of(MIB + 1, ","),
        "line is longer than 1 MiB (1048576 bytes)",
    ),
    "a lone carriage return in the postcode": (
        "2,2 High Street,M1\r1AA,SRID=4326;POINT(-2.24 53.48),RD04",
        "line holds a carriage return that does not end it",
    ),
    "a lone carriage return in the location": (
        "2,2 High Street,M1 1AA,SRID=4326;POINT(\r-2.24 53.48),RD04",
        "line holds a carriage return that does not end it",
    ),
    "a NUL byte in the postcode": (
        "2,2 High Street,M1\x001AA,SRID=4326;POINT(-2.24 53.48),RD04",
        "line holds a NUL byte",
    ),
    "a dotless i in the postcode": (
        "2,2 High Street,m1 1a\u0131,SRID=4326;POINT(-2.24 53.48),RD04",
        'postcode "m1 1a\u0131" is not a valid UK postcode',
    ),
    "a long s in the postcode": (
        "2,2 High Street,\u017f1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
        'postcode "\u017f1 1AA" is not a valid UK postcode',
    ),
    "an address of tabs and spaces": (
        "2, \t \t,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
        "address is empty",
    ),
    "an address of a no-break space": (
        "2,\u00a0,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
        "address is empty",
    ),
    "an address of Unicode spaces": (
        '2,"\u3000\u2003\u2028\u0085\u202f",M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04',
        "address is empty",
    ),
    "a UPRN of zero": (
        "0,2 High Street,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
        'uprn "0" is zero (UPRNs start at 1)',
    ),
    "a UPRN of twelve zeros": (
        "000000000000,2 High St,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
        'uprn "000000000000" is zero (UPRNs start at 1)',
    ),
}
TRICKY_LINES.update({name: line for name, (line, _) in REJECTED_LINES.items()})


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


@pytest.mark.parametrize(("line", "reason"), REJECTED_LINES.values(), ids=REJECTED_LINES.keys())
def test_a_line_breaking_a_rule_is_rejected_both_ways(tmp_path, line, reason):
    """Declined by the fast reading; reported by the line-by-line one with its number, its
    reason and its text (an over-long line's first MiB), the lines around it kept."""
    drop = tmp_path / "drop.csv"
    drop.write_bytes(f"{GOOD}\n{line}\n{GOOD.replace('1,', '3,', 1)}\n".encode())
    with pytest.raises(DropNotReadFast):
        read_fast([drop], tmp_path)
    exact, rejected = read_line_by_line([drop], tmp_path)
    assert [r["uprn"] for r in exact] == ["1", "3"]
    assert rejected == 1
    assert report_of(tmp_path) == [
        {"file": str(drop), "line": "2", "reason": reason, "text": line[:MIB]}
    ]


def test_an_address_of_any_whitespace_is_empty_both_ways(tmp_path):
    """Whitespace is what Python's ``str.isspace`` says it is: an address of any one such
    character is declined by the fast reading and rejected by the line-by-line one; an address
    of any other character is kept, the same both ways. The others tried are every separator,
    control and format character of the Basic Multilingual Plane (those a reading could take
    for a space) and every 16th of the rest."""
    line_ends = {"\n", "\r", "\x00"}  # rejected as line ends or by the line's own rules
    spaces = [chr(c) for c in range(0x10000) if chr(c).isspace() and chr(c) not in line_ends]
    others = [
        chr(c)
        for c in range(1, 0x10000)
        if not chr(c).isspace()
        and chr(c) not in line_ends
        and not 0xD800 <= c <= 0xDFFF
        and (c % 16 == 0 or unicodedata.category(chr(c))[0] in "ZC")
    ]
    for n, space in enumerate(spaces):
        drop = write_lines(
            tmp_path / f"space-{n}.csv", [GOOD, address_line("2", space * 3, "M1 1AA", -2, 53)]
        )
        with pytest.raises(DropNotReadFast):
            read_fast([drop], tmp_path / f"fast-{n}")
    lines = [address_line(str(n), c, "M1 1AA", -2.24, 53.48) for n, c in enumerate(spaces, 1)]
    kept = [address_line(str(n), c, "M1 1AA", -2.24, 53.48) for n, c in enumerate(others, 100)]
    drop = write_lines(tmp_path / "drop.csv", lines + kept)
    exact, rejected = read_line_by_line([drop], tmp_path / "all")
    assert rejected == len(spaces)
    assert [(r["reason"], r["text"]) for r in report_of(tmp_path / "all")] == [
        ("address is empty", line) for line in lines
    ]
    assert [r["address"] for r in sorted(exact, key=lambda r: int(r["uprn"]))] == others
    clean = write_lines(tmp_path / "clean.csv", kept)
    exact, rejected = read_line_by_line([clean], tmp_path / "clean")
    assert rejected == 0
    assert read_fast([clean], tmp_path / "fast") == exact


def test_a_uprn_is_kept_as_its_number_both_ways(tmp_path):
    """Leading zeros are not part of a UPRN: one canonical text form, whichever reading."""
    drop = write_lines(
        tmp_path / "drop.csv",
        [
            address_line("000000000123", "1 Road", "M1 1AA", -2.24, 53.48),
            address_line("0042", "2 Road", "M1 1AA", -2.24, 53.48),
            '"007",3 Road,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04',
            address_line("100", "4 Road", "M1 1AA", -2.24, 53.48),
        ],
    )
    fast = read_fast([drop], tmp_path)
    exact, rejected = read_line_by_line([drop], tmp_path)
    assert rejected == 0
    assert fast == exact
    assert sorted((r["uprn"], r["address"]) for r in fast) == [
        ("100", "4 Road"),
        ("123", "1 Road"),
        ("42", "2 Road"),
        ("7", "3 Road"),
    ]


def test_gzip_parts_are_decompressed_both_ways_whatever_the_case_of_their_names(tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    for n, name in enumerate(["a.CSV.GZ", "b.Csv.Gz", "c.csv.gz", "d.CSV"], start=1):
        data = (address_line(str(n), f"{n} Road", "M1 1AA", -2.24, 53.48) + "\n").encode()
        (folder / name).write_bytes(gzip.compress(data) if name.lower().endswith(".gz") else data)
    _, files = drop_files(str(folder))
    assert len(files) == 4
    fast = read_fast(files, tmp_path)
    exact, rejected = read_line_by_line(files, tmp_path)
    assert rejected == 0
    assert fast == exact
    assert [(r["uprn"], Path(r["source_file"]).name) for r in fast] == [
        ("1", "a.CSV.GZ"),
        ("2", "b.Csv.Gz"),
        ("3", "c.csv.gz"),
        ("4", "d.CSV"),
    ]


# Names a glob would take for patterns: each must be read once, as itself, and no other file.
ODD_NAMES = [
    "part1.csv",
    "#1.csv",
    "%41.csv",
    "part[1].csv",
    "part[!1].csv",
    "part]1[.csv",
    "a.csv",
    "b.csv",
    "a*.csv",
    "?.csv",
    "{a,b}.csv",
    "{a}.csv",
    "**.csv",
    "dir1/part.csv",
    "dir[1]/part.csv",
    "dir*/part.csv",
]


def _odd_drop(folder: Path) -> dict[str, str]:
    """One address per odd name; returns each UPRN's file name."""
    for n, name in enumerate(ODD_NAMES, start=1):
        write_lines(folder / name, [address_line(str(n), f"{n} Road", "M1 1AA", -2.24, 53.48)])
    return {str(n): name for n, name in enumerate(ODD_NAMES, start=1)}


def test_every_file_is_read_once_whatever_its_name_both_ways(tmp_path):
    folder = tmp_path / "drop"
    expected = _odd_drop(folder)
    _, files = drop_files(str(folder))
    assert len(files) == len(ODD_NAMES)
    fast = read_fast(files, tmp_path)
    exact, rejected = read_line_by_line(files, tmp_path)
    assert rejected == 0
    assert fast == exact
    assert {r["uprn"]: r["source_file"] for r in exact} == {
        uprn: str(folder / name) for uprn, name in expected.items()
    }
    assert len(exact) == len(ODD_NAMES)


def test_every_object_is_read_once_whatever_its_key_both_ways(tmp_path, s3_env):
    bucket = s3_env.new_bucket()
    local = tmp_path / "local"
    expected = _odd_drop(local)
    client = s3_env.client()
    for name in ODD_NAMES:
        client.upload_file(str(local / name), bucket, f"drop/{name}")
    _, files = drop_files(f"s3://{bucket}/drop")
    assert len(files) == len(ODD_NAMES)
    fast = read_fast(files, tmp_path)
    exact, rejected = read_line_by_line(files, tmp_path)
    assert rejected == 0
    assert fast == exact
    assert {r["uprn"]: r["source_file"] for r in exact} == {
        uprn: f"s3://{bucket}/drop/{name}" for uprn, name in expected.items()
    }
    assert len(exact) == len(ODD_NAMES)


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


def lines_of(
    files: list[Path], max_line_bytes: int = MAX_LINE_BYTES
) -> list[tuple[str, int, str, bool]]:
    batches = numbered_lines([str(f) for f in files], max_line_bytes=max_line_bytes)
    table = pa.Table.from_batches(list(batches), line_reading.LINES)
    return [
        (Path(r["source_file"]).name, r["line_no"], r["raw_line"], r["too_long"])
        for r in table.to_pylist()
    ]


def test_lines_end_in_lf_or_crlf_and_any_other_carriage_return_is_a_character(tmp_path):
    drop = tmp_path / "a.csv"
    drop.write_bytes(b"a\r\nb\rc\nd\r\r\ne\n\r\n\n\rf\r")
    assert lines_of([drop]) == [
        ("a.csv", 1, "a", False),
        ("a.csv", 2, "b\rc", False),
        ("a.csv", 3, "d\r", False),
        ("a.csv", 4, "e", False),
        ("a.csv", 5, "", False),
        ("a.csv", 6, "", False),
        ("a.csv", 7, "\rf\r", False),
    ]


@pytest.mark.parametrize("read_bytes", [1, 5, 16, 23, 64, 1 << 20])
def test_lines_are_the_same_wherever_the_reads_end(tmp_path, monkeypatch, read_bytes):
    """Lines around the longest kept (20 bytes here), with LF and CRLF, characters of two and
    three bytes where a too long line is cut, a runaway line, the last line without its LF:
    cut at every read size, each is the line a plain split gives, or its start, marked."""
    monkeypatch.setattr(line_reading, "READ_BYTES", read_bytes)
    lines = [
        "x" * 19, "x" * 20, "x" * 21, "x" * 22, "é" * 10, "é" * 11, "x" + "é" * 10,
        "xx" + "€" * 7, "x" * 19 + "€", "", "a,b", "x" * 500, "€" * 300, "y" * 20,
    ]  # fmt: skip
    endings = ["\n", "\r\n"]
    data = "".join(line + endings[n % 2] for n, line in enumerate(lines)) + "z" * 45
    drop = tmp_path / "drop.csv.gz"
    drop.write_bytes(gzip.compress(data.encode()))

    def expected(line: str) -> tuple[str, bool]:
        raw = line.encode()
        if len(raw) <= 20:
            return line, False
        return raw[:20].decode("utf-8", errors="ignore"), True

    assert lines_of([drop], max_line_bytes=20) == [
        ("drop.csv.gz", n, *expected(line)) for n, line in enumerate([*lines, "z" * 45], 1)
    ]


def test_a_line_with_no_end_in_sight_is_one_rejected_row(tmp_path):
    """Twenty MiB without a line break (held only as its first MiB), then the file goes on."""
    drop = tmp_path / "drop.csv.gz"
    runaway = "9" * (20 * MIB)
    drop.write_bytes(gzip.compress(f"{GOOD}\n{runaway}\n{GOOD.replace('1,', '3,', 1)}".encode()))
    with pytest.raises(DropNotReadFast, match="longer than"):
        read_fast([drop], tmp_path)
    exact, rejected = read_line_by_line([drop], tmp_path)
    assert [r["uprn"] for r in exact] == ["1", "3"]
    assert rejected == 1
    assert report_of(tmp_path) == [
        {
            "file": str(drop),
            "line": "2",
            "reason": "line is longer than 1 MiB (1048576 bytes)",
            "text": runaway[:MIB],
        }
    ]


@pytest.mark.parametrize("read_bytes", [1, 2, 4 << 20])
def test_a_byte_order_mark_is_not_part_of_the_first_line(tmp_path, monkeypatch, read_bytes):
    """The fast reading leaves such a file to the line-by-line one, which passes over it."""
    monkeypatch.setattr(line_reading, "READ_BYTES", read_bytes)
    drop = tmp_path / "drop.csv"
    drop.write_bytes(f"\ufeff{GOOD}\n\ufeff{GOOD}\n".encode())
    with pytest.raises(DropNotReadFast, match="byte-order mark"):
        read_fast([drop], tmp_path)
    exact, rejected = read_line_by_line([drop], tmp_path)
    assert [r["uprn"] for r in exact] == ["1"]
    assert rejected == 1
    assert [(r["line"], r["reason"]) for r in report_of(tmp_path)] == [
        ("2", 'uprn "\ufeff1" is not a number of 1 to 12 digits')
    ]


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (GOOD.encode() + b"\n\n3,caf\xe9,M1 1AA\n", 3),
        (GOOD.encode() + b"\n" + b"x" * (3 * MIB) + b"\xe9\n" + GOOD.encode(), 2),
        (b"\n" * 5 + b"x" * (3 * MIB) + b"\xe2\x82", 6),
    ],
    ids=["a short line", "past the start of a too long line", "the end of the file"],
)
def test_bytes_that_are_not_utf8_refuse_the_drop_naming_the_line(tmp_path, data, line):
    drop = tmp_path / "drop.csv"
    drop.write_bytes(data)
    with pytest.raises(InputUnreadable, match=rf"^{drop}:{line}: not UTF-8 encoded$"):
        read_line_by_line([drop], tmp_path)
