"""AddressBase assets on crafted drops: parsing, line-numbered rejections, letter partitions."""

import csv
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databaker.assets.addressbase.checks import uprns_certainly_unique
from databaker.resources import LocalLayerStore
from databaker_tests.conftest import (
    address_line,
    check_evaluations,
    failure_messages,
    materialization,
    partition_materializations,
    write_lines,
)

RAW = ["addressbase_cleaned_raw"]
PARTITIONED = ["addressbase_cleaned_raw", "addressbase_partitioned"]


def raw_rows(data_root: Path) -> list[dict]:
    table = pq.read_table(data_root / "addressbase_cleaned_raw")
    return sorted(table.to_pylist(), key=lambda row: row["uprn"])


def report(data_root: Path) -> list[dict]:
    csv.field_size_limit(max(csv.field_size_limit(), 2 << 20))  # an over-long line's text
    with open(data_root / "rejected" / "addressbase_cleaned_raw.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_fields_with_commas_and_quotes_are_read_whole(tmp_path, data_root, run_assets):
    drop = write_lines(
        tmp_path / "drop" / "part.csv",
        [
            '10001,"Flat 2, ""The Old Mill"", 3 High Street, Kendal",LA9 4AB,'
            "SRID=4326;POINT(-2.745 54.328),RD06",
            "10002,4 High Street,la94ab,SRID=4326;POINT(-2.7451 54.3281),RD04",
            '"10003","5 High Street","LA9  4AB","SRID=4326;POINT(-2.7452 54.3282)","RD04"',
        ],
    )
    result = run_assets(RAW, addressbase=drop.parent)
    assert result.success
    rows = raw_rows(data_root)
    assert [(r["uprn"], r["address"], r["postcode"], r["outcode"]) for r in rows] == [
        ("10001", 'Flat 2, "The Old Mill", 3 High Street, Kendal', "LA9 4AB", "LA9"),
        ("10002", "4 High Street", "LA9 4AB", "LA9"),
        ("10003", "5 High Street", "LA9 4AB", "LA9"),
    ]
    assert (rows[0]["longitude"], rows[0]["latitude"]) == (-2.745, 54.328)
    assert {r["addressbase_source"] for r in rows} == {str(drop.parent)}
    assert materialization(result, "addressbase_cleaned_raw")["rows"] == 3


def test_a_folder_of_plain_and_gzipped_parts_is_one_drop(tmp_path, data_root, run_assets):
    folder = tmp_path / "addressbase_cleaned"
    write_lines(folder / "a.csv", [address_line("1", "1 A Road", "B1 1AA", -1.9, 52.48)])
    write_lines(folder / "b.csv.gz", [address_line("2", "2 A Road", "B1 1AB", -1.9, 52.48)])
    write_lines(folder / "notes.txt", ["not part of the drop"])
    assert run_assets(RAW, addressbase=folder).success
    assert [r["uprn"] for r in raw_rows(data_root)] == ["1", "2"]


def test_each_bad_line_is_rejected_with_its_file_line_and_reason(tmp_path, data_root, run_assets):
    good = address_line("1", "1 Good Road", "M1 1AA", -2.24, 53.48)
    drop = write_lines(
        tmp_path / "drop.csv",
        [
            good,
            '2,"Flat 1, "Bad" Quoting",M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04',
            "3,3 Short Row,M1 1AA,SRID=4326;POINT(-2.24 53.48)",
            "",  # a blank line holds no row: passed over, not rejected
            "x4,4 Road,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
            "5,5 Road,NOT A PC,SRID=4326;POINT(-2.24 53.48),RD04",
            "6,6 Road,M1 1AA,POINT(-2.24),RD04",
            "7,7 Road,M1 1AA,SRID=27700;POINT(383700 398300),RD04",
            "8,8 Road,M1 1AA,POINT(383700 398300),RD04",
            "9,,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
            address_line("10", "10 Good Road", "M1 1AB", -2.24, 53.48),
            # A bare field may hold a quote, but not start with one.
            '12,The "Old" Mill,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04',
            '13,"The Mill"s End,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04',
        ],
    )
    result = run_assets(RAW, addressbase=drop)
    assert not result.success
    message = failure_messages(result)
    assert "9 rejected row(s), 0 allowed" in message
    assert f"{drop}:2: not a CSV record of 5 fields" in message
    assert f'{drop}:6: postcode "NOT A PC" is not a valid UK postcode' in message
    expected = {
        2: "not a CSV record of 5 fields (uprn,address,postcode,location,address_type)",
        3: "not a CSV record of 5 fields (uprn,address,postcode,location,address_type)",
        5: 'uprn "x4" is not a number of 1 to 12 digits',
        6: 'postcode "NOT A PC" is not a valid UK postcode',
        7: 'location "POINT(-2.24)" is not SRID=4326;POINT(<lon> <lat>)',
        8: 'location "SRID=27700;POINT(383700 398300)" is not in SRID 4326 (lon/lat)',
        9: 'location "POINT(383700 398300)" is outside Great Britain',
        10: "address is empty",
        13: "not a CSV record of 5 fields (uprn,address,postcode,location,address_type)",
    }
    assert {int(r["line"]): r["reason"] for r in report(data_root)} == expected
    assert {r["file"] for r in report(data_root)} == {str(drop)}
    assert not (data_root / "addressbase_cleaned_raw").exists()


def test_rejections_within_the_allowance_are_reported_and_the_rest_kept(
    tmp_path, data_root, run_assets
):
    drop = write_lines(
        tmp_path / "drop.csv",
        [
            address_line("1", "1 Road", "M1 1AA", -2.24, 53.48),
            "2,2 Road,M1 1AA,SRID=4326;POINT(a b),RD04",
            address_line("3", "3 Road", "M1 1AA", -2.24, 53.48),
        ],
    )
    result = run_assets(RAW, addressbase=drop, max_rejected_rows=1)
    assert result.success
    assert [r["uprn"] for r in raw_rows(data_root)] == ["1", "3"]
    assert [(r["line"], r["text"]) for r in report(data_root)] == [
        ("2", "2,2 Road,M1 1AA,SRID=4326;POINT(a b),RD04")
    ]
    assert materialization(result, "addressbase_cleaned_raw")["rejected_rows"] == 1


def test_by_default_one_row_in_a_thousand_may_be_rejected(tmp_path, data_root, run_assets):
    """Two bad rows in 2,000 are left out and reported; a third stops the bake, unless the
    operator allows a larger share."""
    good = [address_line(str(n), f"{n} Road", "M1 1AA", -2.24, 53.48) for n in range(1, 1999)]
    bad = "x,Bad Road,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04"
    two_bad = write_lines(tmp_path / "two.csv", [*good, bad, bad])
    result = run_assets(RAW, addressbase=two_bad)
    assert result.success
    metadata = materialization(result, "addressbase_cleaned_raw")
    assert (metadata["rows"], metadata["rejected_rows"], metadata["rejected_rows_allowed"]) == (
        1998,
        2,
        2,
    )
    assert [int(r["line"]) for r in report(data_root)] == [1999, 2000]
    three_bad = write_lines(tmp_path / "three.csv", [*good[:-1], bad, bad, bad])
    result = run_assets(RAW, addressbase=three_bad)
    assert not result.success
    assert "3 rejected row(s), 2 allowed of 2000 rows" in failure_messages(result)
    assert len(raw_rows(data_root)) == 1998, "the table of the last good drop is kept"
    assert run_assets(RAW, addressbase=three_bad, max_rejected_share=0.0015).success


def test_line_numbers_stay_exact_deep_into_large_multi_file_drops(tmp_path, data_root, run_assets):
    """Every line of every file is numbered by position, across files and CRLF endings."""
    folder = tmp_path / "drop"
    bad = {"part_1.csv": {7, 150_001, 299_999}, "part_2.csv.gz": {1, 200_000}}
    for name, bad_lines in bad.items():
        lines = [
            "broken,line"
            if n in bad_lines
            else address_line(f"{name[5]}{n:07d}", f"{n} Long Road", "LS6 2AB", -1.57, 53.81)
            for n in range(1, 300_001)
        ]
        write_lines(folder / name, lines, newline="\r\n" if name.endswith(".gz") else "\n")
    result = run_assets(RAW, addressbase=folder, max_rejected_rows=10)
    assert result.success
    found = {(Path(r["file"]).name, int(r["line"])) for r in report(data_root)}
    assert found == {(name, n) for name, lines in bad.items() for n in lines}
    rows = pq.read_table(data_root / "addressbase_cleaned_raw", columns=["uprn", "source_file"])
    assert rows.num_rows == 600_000 - 5
    kept = {(Path(f).name, int(u[1:])) for u, f in zip(*rows.to_pydict().values(), strict=True)}
    assert len(kept) == rows.num_rows and not kept & found


def test_partitions_hold_each_letter_with_identical_duplicates_dropped(
    tmp_path, data_root, run_assets
):
    drop = write_lines(
        tmp_path / "drop.csv",
        [
            address_line("1", "1 Road", "S1 1AA", -1.47, 53.38),
            address_line("1", "1 Road", "S1 1AA", -1.47, 53.38),
            address_line("2", "2 Road", "SW1A 2AA", -0.13, 51.5),
            address_line("3", "3 Road", "B1 1AA", -1.9, 52.48),
        ],
    )
    result = run_assets(PARTITIONED, addressbase=drop)
    assert result.success
    table = pq.read_table(data_root / "addressbase_partitioned", partitioning="hive")
    rows = sorted(table.to_pylist(), key=lambda r: r["uprn"])
    assert [(r["uprn"], r["outcode"], str(r["first_letter"])) for r in rows] == [
        ("1", "S1", "S"),
        ("2", "SW1A", "S"),
        ("3", "B1", "B"),
    ]
    assert set(table.column_names) == {
        "outcode", "uprn", "address", "postcode", "longitude", "latitude", "address_type",
        "addressbase_source", "source_file", "first_letter",
    }  # fmt: skip
    letters = partition_materializations(result, "addressbase_partitioned")
    assert (letters["B"]["dagster/row_count"], letters["S"]["dagster/row_count"]) == (1, 2)
    # Only S holds a repeated UPRN: B's file is the raw table's, copied as it is.
    rewritten = [k for k, metadata in letters.items() if metadata["rewritten_for_repeated_uprns"]]
    assert rewritten == ["S"]
    raw_b, partitioned_b = (
        next((data_root / table / "first_letter=B").glob("*.parquet")).read_bytes()
        for table in ("addressbase_cleaned_raw", "addressbase_partitioned")
    )
    assert raw_b == partitioned_b
    uniqueness = check_evaluations(result)["uprns_are_unique"]
    assert not uniqueness.passed and uniqueness.severity.value == "WARN"
    assert uniqueness.metadata["identical_rows_dropped"].value == 1


def test_rebuilding_one_letter_leaves_the_other_letters_alone(tmp_path, data_root, run_assets):
    first = write_lines(
        tmp_path / "first.csv",
        [
            address_line("1", "1 Road", "S1 1AA", -1.47, 53.38),
            address_line("3", "3 Road", "B1 1AA", -1.9, 52.48),
        ],
    )
    assert run_assets(PARTITIONED, addressbase=first).success
    b_partition = data_root / "addressbase_partitioned" / "first_letter=B"
    b_before = {p.name: p.read_bytes() for p in b_partition.iterdir()}
    second = write_lines(
        tmp_path / "second.csv",
        [
            address_line("1", "1 Road", "S1 1AA", -1.47, 53.38),
            address_line("4", "4 Road", "S2 1AA", -1.47, 53.38),
        ],
    )
    with dg.DagsterInstance.ephemeral() as instance:  # the rebuild reads the raw check's result
        assert run_assets(RAW, addressbase=second, instance=instance).success
        assert run_assets(["addressbase_partitioned"], partition_key="S", instance=instance).success
    assert {p.name: p.read_bytes() for p in b_partition.iterdir()} == b_before
    s_rows = pq.read_table(data_root / "addressbase_partitioned" / "first_letter=S").to_pylist()
    assert sorted(r["uprn"] for r in s_rows) == ["1", "4"]


def test_a_letter_with_no_addresses_left_is_emptied(tmp_path, data_root, run_assets):
    first = write_lines(tmp_path / "a.csv", [address_line("3", "3 Road", "B1 1AA", -1.9, 52.48)])
    assert run_assets(PARTITIONED, addressbase=first).success
    second = write_lines(tmp_path / "b.csv", [address_line("1", "1 Rd", "S1 1AA", -1.47, 53.38)])
    assert run_assets(PARTITIONED, addressbase=second).success
    assert sorted(p.name for p in (data_root / "addressbase_partitioned").iterdir()) == [
        "first_letter=S"
    ]


def test_differing_duplicate_uprns_fail_naming_the_uprns_and_letters(
    tmp_path, data_root, run_assets
):
    drop = write_lines(
        tmp_path / "drop.csv",
        [
            address_line("77", "1 Road", "S1 1AA", -1.47, 53.38),
            address_line("77", "1 Road", "N1 1AA", -0.1, 51.53),
            address_line("78", "2 Road", "S1 1AA", -1.47, 53.38),
        ],
    )
    result = run_assets(PARTITIONED, addressbase=drop)
    assert not result.success
    uniqueness = check_evaluations(result)["uprns_are_unique"]
    assert not uniqueness.passed and uniqueness.severity.value == "ERROR"
    assert f"UPRN 77 (letters N, S; in {drop}, {drop})" in uniqueness.description
    assert not (data_root / "addressbase_partitioned").exists()


def test_uprns_equal_as_numbers_are_one_uprn(tmp_path, data_root, run_assets):
    """A UPRN is a number, kept without leading zeros: ``0042`` on a row like ``42``'s is a
    repeat, dropped; ``000000000123`` on a row unlike ``123``'s fails the check as UPRN 123."""
    identical = write_lines(
        tmp_path / "identical.csv",
        [
            address_line("42", "4 Road", "S1 1AA", -1.47, 53.38),
            address_line("0042", "4 Road", "S1 1AA", -1.47, 53.38),
            address_line("7", "7 Road", "S1 1AA", -1.47, 53.38),
        ],
    )
    result = run_assets(PARTITIONED, addressbase=identical)
    assert result.success
    table = pq.read_table(data_root / "addressbase_partitioned", partitioning="hive")
    assert sorted(table.column("uprn").to_pylist()) == ["42", "7"]
    assert check_evaluations(result)["uprns_are_unique"].severity.value == "WARN"

    differing = write_lines(
        tmp_path / "differing.csv",
        [
            address_line("123", "1 Road", "S1 1AA", -1.47, 53.38),
            address_line("000000000123", "2 Road", "N1 1AA", -0.1, 51.53),
        ],
    )
    result = run_assets(RAW, addressbase=differing)
    assert [r["uprn"] for r in raw_rows(data_root)] == ["123", "123"]
    assert not uprns_certainly_unique(LocalLayerStore(root=str(data_root)))
    uniqueness = check_evaluations(result)["uprns_are_unique"]
    assert not uniqueness.passed and uniqueness.severity.value == "ERROR"
    assert f"UPRN 123 (letters N, S; in {differing}, {differing})" in uniqueness.description


def test_a_lone_carriage_return_is_a_character_of_its_line(tmp_path, data_root, run_assets):
    """Lines end in LF or CRLF: a lone CR neither ends a line nor shifts the numbers of the
    lines after it, and the report keeps the line's whole text."""
    lines = [
        address_line("1", "1 Road", "M1 1AA", -2.24, 53.48),
        "2,2 Road,M1\r1AA,SRID=4326;POINT(-2.24 53.48),RD04",
        address_line("3", "3 Road", "M1 1AA", -2.24, 53.48),
        "x4,4 Road,M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04",
        address_line("5", "5 Road", "M1 1AA", -2.24, 53.48),
    ]
    drop = write_lines(tmp_path / "drop.csv", lines, newline="\r\n")
    result = run_assets(RAW, addressbase=drop, max_rejected_rows=2)
    assert result.success
    assert [(r["line"], r["reason"], r["text"]) for r in report(data_root)] == [
        ("2", "line holds a carriage return that does not end it", lines[1]),
        ("4", 'uprn "x4" is not a number of 1 to 12 digits', lines[3]),
    ]
    assert [r["uprn"] for r in raw_rows(data_root)] == ["1", "3", "5"]


def test_an_over_long_line_is_a_rejected_row_whether_or_not_another_line_is_bad(
    tmp_path, data_root, run_assets
):
    """Over 1 MiB, a line is rejected, and reported with its first MiB, by both readings: on
    its own (the fast reading declines the drop), or beside an unrelated bad line."""
    long_line = address_line("2", "x" * (1 << 20), "M1 1AA", -2.24, 53.48)
    good = [address_line(str(n), f"{n} Road", "M1 1AA", -2.24, 53.48) for n in (1, 3)]
    alone = write_lines(tmp_path / "alone.csv", [good[0], long_line, good[1]])
    with_bad = write_lines(tmp_path / "with_bad.csv", [good[0], long_line, good[1], "bad"])
    for drop, rejected in ((alone, 1), (with_bad, 2)):
        result = run_assets(RAW, addressbase=drop, max_rejected_rows=2)
        assert result.success
        assert [r["uprn"] for r in raw_rows(data_root)] == ["1", "3"]
        rows = report(data_root)
        assert len(rows) == rejected
        assert (rows[0]["line"], rows[0]["reason"]) == (
            "2",
            "line is longer than 1 MiB (1048576 bytes)",
        )
        assert rows[0]["text"] == long_line[: 1 << 20]


@pytest.mark.parametrize(
    ("uprns", "unique"),
    [(["1", "2", "10", "99"], True), (["5", "7", "5"], False), ([], True)],
)
def test_the_integer_test_of_uniqueness(tmp_path, uprns, unique):
    """Across files and letters; an empty table repeats nothing."""
    store = LocalLayerStore(root=str(tmp_path))
    for n, uprn in enumerate(uprns):
        folder = tmp_path / "addressbase_cleaned_raw" / f"first_letter={'AB'[n % 2]}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"uprn": [uprn]}), folder / f"part-{n}.parquet")
    assert uprns_certainly_unique(store) is unique


@pytest.mark.parametrize(
    "files",
    [
        [["30", "4", "1000"], ["2", "31", "5"], ["999999999999", "7"]],
        [["30", "4", "1000"], ["2", "31", "4"]],
        [["8", "3", "8", "1"], ["2"]],
        [["12", "11"], ["10"], ["11", "13"]],
    ],
)
def test_the_integer_test_of_uniqueness_over_files_of_many_rows(tmp_path, files):
    """Each file's UPRNs in no order; a repeat inside one file or between two is found."""
    store = LocalLayerStore(root=str(tmp_path))
    folder = tmp_path / "addressbase_cleaned_raw" / "first_letter=A"
    folder.mkdir(parents=True)
    for n, uprns in enumerate(files):
        pq.write_table(pa.table({"uprn": uprns}), folder / f"part-{n}.parquet")
    every = [uprn for uprns in files for uprn in uprns]
    assert uprns_certainly_unique(store) is (len(set(every)) == len(every))


def test_the_partitioned_table_is_not_built_from_a_raw_table_with_differing_duplicates(
    tmp_path, data_root, run_assets
):
    """Materialised on its own later (from the UI, say), the partitioned table still refuses
    a raw table whose uniqueness check failed: downstream checks rely on each UPRN once."""
    drop = write_lines(
        tmp_path / "drop.csv",
        [
            address_line("77", "1 Road", "S1 1AA", -1.47, 53.38),
            address_line("77", "2 Road", "S1 1AA", -1.47, 53.38),
        ],
    )
    with dg.DagsterInstance.ephemeral() as instance:
        assert not run_assets(RAW, addressbase=drop, instance=instance).success
        result = run_assets(["addressbase_partitioned"], instance=instance)
    assert not result.success
    assert (
        "not partitioning: addressbase_cleaned_raw / uprns_are_unique failed: "
        "1 UPRN(s) appear on rows that differ"
    ) in failure_messages(result)
    assert not (data_root / "addressbase_partitioned").exists()


def test_a_missing_or_empty_drop_is_a_clear_error(tmp_path, run_assets):
    result = run_assets(RAW, addressbase=tmp_path / "nowhere")
    assert f"AddressBase drop not found: {tmp_path / 'nowhere'}" in failure_messages(result)
    (tmp_path / "empty").mkdir()
    result = run_assets(RAW, addressbase=tmp_path / "empty")
    assert "holds no .csv or .csv.gz files" in failure_messages(result)


def test_a_record_spanning_lines_sends_the_drop_to_the_line_by_line_reading(
    tmp_path, data_root, run_assets
):
    drop = write_lines(
        tmp_path / "drop.csv",
        [
            address_line("1", "1 Good Road", "M1 1AA", -2.24, 53.48),
            '2,"2 Broken',
            'Road",M1 1AA,SRID=4326;POINT(-2.24 53.48),RD04',
        ],
    )
    result = run_assets(RAW, addressbase=drop, max_rejected_rows=2)
    assert result.success
    assert [(int(r["line"]), r["reason"][:24]) for r in report(data_root)] == [
        (2, "not a CSV record of 5 fi"),
        (3, "not a CSV record of 5 fi"),
    ]
    assert [r["uprn"] for r in raw_rows(data_root)] == ["1"]


def test_without_repeated_uprns_every_letter_is_copied_as_it_is(tmp_path, data_root, run_assets):
    drop = write_lines(
        tmp_path / "drop.csv",
        [
            address_line("1", "1 Road", "S1 1AA", -1.47, 53.38),
            address_line("2", "2 Road", "B1 1AA", -1.9, 52.48),
        ],
    )
    result = run_assets(PARTITIONED, addressbase=drop)
    assert result.success
    assert check_evaluations(result)["uprns_are_unique"].passed
    letters = partition_materializations(result, "addressbase_partitioned")
    assert not any(metadata["rewritten_for_repeated_uprns"] for metadata in letters.values())
    for letter in ("B", "S"):
        raw, partitioned = (
            next((data_root / table / f"first_letter={letter}").glob("*.parquet")).read_bytes()
            for table in ("addressbase_cleaned_raw", "addressbase_partitioned")
        )
        assert raw == partitioned
