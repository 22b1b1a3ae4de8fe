"""The ballots table: both export headers, WKT and EWKT, repairs, skips and rejections."""

import csv
import importlib
import threading

import pyarrow.parquet as pq
import pytest
import shapely

from databaker.csv_records import record_pattern
from databaker.input_tables import MAX_LINE_BYTES
from databaker.line_reading import run_on_lines
from databaker.resources import DuckDBQueryEngine
from databaker_tests.conftest import ballot_line, failure_messages, materialization, write_lines

# The module, not the package's asset list of the same name.
ballots_assets = importlib.import_module("databaker.assets.current_ballots.assets")

BALLOTS = ["current_ballots"]
SQUARE = "POLYGON((-1.6 53.8,-1.5 53.8,-1.5 53.9,-1.6 53.9,-1.6 53.8))"
BOWTIE = "POLYGON((-1.6 53.8,-1.5 53.9,-1.5 53.8,-1.6 53.9,-1.6 53.8))"


def ballots_table(data_root):
    table = pq.read_table(data_root / "current_ballots" / "current_ballots.parquet")
    return table.to_pylist()


def report(data_root):
    with open(data_root / "rejected" / "current_ballots.csv", newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.parametrize(
    "header",
    [
        "election_id,division_id,geometry,source_table",
        "election_id,geography_id,geography_text,source_table",
    ],
)
def test_both_export_headers_are_accepted(tmp_path, data_root, run_assets, header):
    export = write_lines(
        tmp_path / "ballots.csv",
        [header, ballot_line("local.leeds.headingley.2027-05-06", "E05001", SQUARE, "Division")],
    )
    assert run_assets(BALLOTS, ballots=export).success
    assert [r["election_id"] for r in ballots_table(data_root)] == [
        "local.leeds.headingley.2027-05-06"
    ]


def test_any_other_header_stops_with_line_one(tmp_path, run_assets):
    export = write_lines(tmp_path / "ballots.csv", ["ballot,geometry,source_table,division"])
    message = failure_messages(run_assets(BALLOTS, ballots=export))
    assert f"{export}:1: the header must be election_id,division_id,geometry" in message


def test_geometries_parse_from_wkt_and_ewkt_and_invalid_ones_are_repaired(
    tmp_path, data_root, run_assets
):
    export = write_lines(
        tmp_path / "ballots.csv",
        [
            "election_id,division_id,geometry,source_table",
            ballot_line("local.leeds.a.2027-05-06", "E05001", f"SRID=4326;{SQUARE}", "Division"),
            ballot_line(
                "local.leeds.b.2027-05-06",
                "E05002",
                "MULTIPOLYGON(((-1 53,-0.9 53,-0.9 53.1,-1 53)),((0 53,0.1 53,0.1 53.1,0 53)))",
                "Division",
            ),
            ballot_line("mayor.west-yorkshire.2027-05-06", "E47001", BOWTIE, "Organisation"),
            "parl.leeds-central.2027-05-06,,,None",
        ],
    )
    result = run_assets(BALLOTS, ballots=export)
    assert result.success
    rows = {r["election_id"]: r for r in ballots_table(data_root)}
    assert set(rows) == {
        "local.leeds.a.2027-05-06", "local.leeds.b.2027-05-06", "mayor.west-yorkshire.2027-05-06"
    }  # fmt: skip
    bowtie = shapely.from_wkb(rows["mayor.west-yorkshire.2027-05-06"]["geometry"])
    assert bowtie.is_valid and rows["mayor.west-yorkshire.2027-05-06"]["repaired"]
    assert bowtie.area == pytest.approx(shapely.make_valid(shapely.from_wkt(BOWTIE)).area)
    assert shapely.from_wkb(rows["local.leeds.a.2027-05-06"]["geometry"]).equals(
        shapely.from_wkt(SQUARE)
    )
    metadata = materialization(result, "current_ballots")
    assert metadata["repaired_geometries"] == 1
    assert metadata["skipped_without_geography"] == 1
    assert [(r["line"], r["status"]) for r in report(data_root)] == [("5", "skipped")]


def test_unusable_rows_are_rejected_naming_file_line_and_reason(tmp_path, data_root, run_assets):
    export = write_lines(
        tmp_path / "ballots.csv",
        [
            "election_id,division_id,geometry,source_table",
            ballot_line("local.leeds.a.2027-05-06", "E05001", SQUARE, "Division"),
            ballot_line(
                "local.leeds.b.2027-05-06", "E05002", "POLYGON((-1.6 53.8,-1.5", "Division"
            ),
            ballot_line("local.leeds.c.2027-05-06", "E05003", "POINT(-1.6 53.8)", "Division"),
            ballot_line(
                "local.leeds.d.2027-05-06",
                "E05004",
                "SRID=27700;POLYGON((430000 433000,431000 433000,431000 434000,430000 433000))",
                "Division",
            ),
            ballot_line(
                "local.leeds.e.2027-05-06",
                "E05005",
                "POLYGON((430000 433000,431000 433000,431000 434000,430000 433000))",
                "Division",
            ),
            ballot_line("local.leeds.2027-05-06", "E08001", SQUARE, "Organisation"),
            ballot_line("not-an-id", "E05006", SQUARE, "Division"),
            ballot_line("local.leeds.f.2027-05-06", "E05007", SQUARE, "Ward"),
            "local.leeds.g.2027-05-06,E05008,,Division",
            "just,three,fields",
        ],
    )
    result = run_assets(BALLOTS, ballots=export)
    assert not result.success
    assert f"{export}:3: geometry is not valid WKT" in failure_messages(result)
    reasons = {int(r["line"]): r["reason"] for r in report(data_root)}
    assert reasons == {
        3: 'geometry is not valid WKT: "POLYGON((-1.6 53.8,-1.5..."',
        4: "geometry is a POINT, not a POLYGON or MULTIPOLYGON",
        5: "geometry is in SRID 27700, not 4326 (lon/lat)",
        6: "geometry is outside Great Britain: are the coordinates lon/lat?",
        7: 'election_id "local.leeds.2027-05-06" is not a valid ballot ID: '
        "election_type local must have a division in order to create a ballot id",
        8: 'election_id "not-an-id" is not a valid ballot ID: '
        "Not enough parts: must have at least an election type and a date",
        9: 'source_table "Ward" is not Organisation, Division or None',
        10: "geometry is empty",
        11: "not a CSV record of 4 fields (election_id,division_id,geometry,source_table)",
    }
    assert not (data_root / "current_ballots").exists()


def test_rejected_ballot_rows_are_allowed_up_to_a_share_of_the_export(
    tmp_path, data_root, run_assets
):
    """One bad row in 1,000 is reported and left out by default; a second stops the bake."""
    rows = [
        ballot_line(f"local.leeds.w{n}.2027-05-06", f"E05{n:05}", SQUARE, "Division")
        for n in range(999)
    ]
    bad = ballot_line("local.leeds.bad.2027-05-06", "E09999", "POINT(-1.6 53.8)", "Division")
    header = "election_id,division_id,geometry,source_table"
    result = run_assets(BALLOTS, ballots=write_lines(tmp_path / "one.csv", [header, *rows, bad]))
    assert result.success
    metadata = materialization(result, "current_ballots")
    assert (metadata["rows"], metadata["rejected_rows"], metadata["rejected_rows_allowed"]) == (
        999,
        1,
        1,
    )
    two = write_lines(tmp_path / "two.csv", [header, *rows[:-1], bad, bad])
    result = run_assets(BALLOTS, ballots=two)
    assert not result.success
    assert "2 rejected row(s), 1 allowed of 1000 rows" in failure_messages(result)


def test_a_missing_export_is_a_clear_error(tmp_path, run_assets):
    message = failure_messages(run_assets(BALLOTS, ballots=tmp_path / "none.csv"))
    assert f"ballots export not found: {tmp_path / 'none.csv'}" in message


HEADER = "election_id,division_id,geometry,source_table"
RING = "(-1.6 53.8,-1.5 53.8,-1.5 53.9,-1.6 53.9,-1.6 53.8)"
FAR_RING = "(-1 53,-0.9 53,-0.9 53.1,-1 53.1,-1 53)"
NOT_CLOSED = "geometry has a ring that does not close (its last point is not its first)"
TOO_SHORT = "geometry has a ring of fewer than 4 points"
NOT_FINITE = "geometry has a coordinate that is not a finite number"
# Geometries that parse but that GEOS raises on, or that hold no area, each with its reason.
BROKEN_GEOMETRIES = {
    "POLYGON((-1.6 53.8,-1.5 53.8,-1.5 53.9,-1.6 53.9))": NOT_CLOSED,
    f"POLYGON({RING},(-1.58 53.82,-1.52 53.82,-1.52 53.88))": NOT_CLOSED,
    f"MULTIPOLYGON(({FAR_RING}),((-1.6 53.8,-1.5 53.8,-1.5 53.9)))": NOT_CLOSED,
    "POLYGON((-1.6 53.8,-1.5 53.8))": NOT_CLOSED,
    "POLYGON((-1.6 53.8))": NOT_CLOSED,
    "POLYGON((-1.6 53.8,-1.5 53.8,-1.6 53.8))": TOO_SHORT,
    f"POLYGON({RING},EMPTY)": TOO_SHORT,
    "POLYGON EMPTY": "geometry is an empty POLYGON",
    "POLYGON(EMPTY)": "geometry is an empty POLYGON",
    "MULTIPOLYGON EMPTY": "geometry is an empty MULTIPOLYGON",
    "POLYGON((1e400 53.8,-1.5 53.8,-1.5 53.9,1e400 53.8))": NOT_FINITE,
    "POLYGON((-1.6 53.8,-1.5 -1e999,-1.5 53.9,-1.6 53.8))": NOT_FINITE,
    "POLYGON((NaN 53.8,-1.5 53.8,-1.5 53.9,NaN 53.8))": "not WKT",
    "POLYGON((Infinity 53.8,-1.5 53.8,-1.5 53.9,Infinity 53.8))": "not WKT",
    "POLYGON" + "(" * 100_000 + "-1.6 53.8" + ")" * 100_000: "not WKT",
    "POLYGON((1e300 53.8,-1.5 53.8,-1.5 53.9,1e300 53.8))": (
        "geometry is outside Great Britain: are the coordinates lon/lat?"
    ),
    "POLYGON((-1.6 53.8,-1.6 53.8,-1.6 53.8,-1.6 53.8))": (
        "geometry is invalid and could not be repaired into a polygon"
    ),
}


def test_geometries_geos_cannot_read_are_rejected_with_their_line_and_the_rest_bakes(
    tmp_path, data_root, run_assets
):
    """GEOS raises, instead of answering, on a ring that does not close or has fewer than
    4 points, or on a coordinate that is not a number: each is a rejected line of its own."""
    broken = [
        ballot_line(f"local.leeds.w{n}.2027-05-06", f"E05{n:05}", wkt, "Division")
        for n, wkt in enumerate(BROKEN_GEOMETRIES)
    ]
    good = ballot_line("local.leeds.good.2027-05-06", "E09001", SQUARE, "Division")
    bowtie = ballot_line("local.leeds.bowtie.2027-05-06", "E09002", BOWTIE, "Division")
    export = write_lines(tmp_path / "ballots.csv", [HEADER, good, *broken, bowtie])
    result = run_assets(BALLOTS, ballots=export, max_rejected_rows=len(broken))
    assert result.success, failure_messages(result)
    expected = {
        line: f'geometry is not valid WKT: "{wkt[:40]}..."' if reason == "not WKT" else reason
        for line, (wkt, reason) in enumerate(BROKEN_GEOMETRIES.items(), start=3)
    }
    assert {int(r["line"]): r["reason"] for r in report(data_root)} == expected
    rows = {r["election_id"]: r for r in ballots_table(data_root)}
    assert set(rows) == {"local.leeds.good.2027-05-06", "local.leeds.bowtie.2027-05-06"}
    assert rows["local.leeds.bowtie.2027-05-06"]["source_line"] == len(broken) + 3
    metadata = materialization(result, "current_ballots")
    assert (metadata["rows"], metadata["rejected_rows"]) == (2, len(broken))


@pytest.mark.parametrize(
    ("first", "rest"),
    [
        (f"POLYGON({RING})", f",({FAR_RING})"),
        (f"POLYGON({RING})", f" POLYGON({FAR_RING})"),
        (f"MULTIPOLYGON(({RING}))", f",({FAR_RING})"),
        (SQUARE, " junk"),
        (SQUARE, ";"),
        ("POLYGON EMPTY", f" {SQUARE}"),
    ],
)
def test_a_geometry_field_going_on_after_its_geometry_is_rejected(
    tmp_path, data_root, run_assets, first, rest
):
    """DuckDB's WKT reader stops after the first geometry: the rest would be dropped."""
    lines = [
        HEADER,
        ballot_line("local.leeds.a.2027-05-06", "E05001", SQUARE, "Division"),
        ballot_line("local.leeds.b.2027-05-06", "E05002", first + rest, "Division"),
    ]
    result = run_assets(BALLOTS, ballots=write_lines(tmp_path / "ballots.csv", lines))
    assert not result.success
    kind = first.split("(")[0].split()[0]
    reason = f'geometry goes on after its {kind} ends: "{rest.strip()[:40]}..."'
    assert [(r["line"], r["reason"]) for r in report(data_root)] == [("3", reason)]


HEXADECIMAL = "POLYGON((0x1 53.8,-1.5 53.8,-1.5 53.9,0x1 53.8))"
"""Read by DuckDB (as 1), but no WKT number."""


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        (f"srid=27700;{SQUARE}", "geometry is in SRID 27700, not 4326 (lon/lat)"),
        (f"Srid=3857;{SQUARE}", "geometry is in SRID 3857, not 4326 (lon/lat)"),
        (f"SRID=4326 ;{SQUARE}", f'geometry is not valid WKT: "SRID=4326 ;{SQUARE[:29]}..."'),
        (f"SRID=;{SQUARE}", f'geometry is not valid WKT: "SRID=;{SQUARE[:34]}..."'),
        (
            f"SRID=EPSG:4326;{SQUARE}",
            f'geometry is not valid WKT: "SRID=EPSG:4326;{SQUARE[:25]}..."',
        ),
        (HEXADECIMAL, f'geometry is not valid WKT: "{HEXADECIMAL[:40]}..."'),
    ],
)
def test_an_srid_other_than_4326_in_any_case_or_an_unreadable_prefix_is_rejected(
    tmp_path, data_root, run_assets, geometry, reason
):
    lines = [HEADER, ballot_line("local.leeds.b.2027-05-06", "E05002", geometry, "Division")]
    result = run_assets(BALLOTS, ballots=write_lines(tmp_path / "ballots.csv", lines))
    assert not result.success
    assert [(r["line"], r["reason"]) for r in report(data_root)] == [("2", reason)]


@pytest.mark.parametrize(
    "geometry",
    [
        f"SRID=4326;{SQUARE}",
        f"srid=4326;{SQUARE}",
        f"  SRID=4326;  {SQUARE}  ",
        SQUARE.lower(),
        "POLYGON ( ( -1.6 53.8 , -1.5 53.8 , -1.5 53.9 , -1.6 53.9 , -1.6 53.8 ) )",
        "POLYGON((-16e-1 5.38E+1,-1.5 53.8,-1.50 53.9,-1.6 53.9,-16e-1 5.38E+1))",
        "POLYGON Z((-1.6 53.8 1,-1.5 53.8 1,-1.5 53.9 1,-1.6 53.9 1,-1.6 53.8 1))",
        "POLYGONM((-1.6 53.8 1,-1.5 53.8 1,-1.5 53.9 1,-1.6 53.9 1,-1.6 53.8 1))",
        f"MULTIPOLYGON(({RING}),EMPTY)",
        f"MULTIPOLYGON(({RING}),({FAR_RING}))",
    ],
)
def test_one_polygon_or_multipolygon_is_read_in_any_case_spacing_and_dimensions(
    tmp_path, data_root, run_assets, geometry
):
    lines = [HEADER, ballot_line("local.leeds.a.2027-05-06", "E05001", geometry, "Division")]
    result = run_assets(BALLOTS, ballots=write_lines(tmp_path / "ballots.csv", lines))
    assert result.success, failure_messages(result)
    (row,) = ballots_table(data_root)
    assert shapely.from_wkb(row["geometry"]).covers(shapely.from_wkt(SQUARE))


def test_a_line_longer_than_64_mib_is_rejected_and_the_lines_after_keep_their_numbers(
    tmp_path, data_root, run_assets
):
    points = ",".join(["-1.55 53.85"] * 5_700_000)
    huge = f'local.leeds.huge.2027-05-06,E05002,"POLYGON((-1.6 53.8,{points},-1.6 53.8))",Division'
    assert len(huge) > 64 * 2**20
    lines = [
        HEADER,
        ballot_line("local.leeds.a.2027-05-06", "E05001", SQUARE, "Division"),
        huge,
        ballot_line("local.leeds.b.2027-05-06", "E05003", SQUARE, "Division"),
        "just,three,fields",
    ]
    export = write_lines(tmp_path / "ballots.csv", lines)
    result = run_assets(BALLOTS, ballots=export, max_rejected_rows=2)
    assert result.success, failure_messages(result)
    assert [(r["line"], r["reason"], r["text"][:30]) for r in report(data_root)] == [
        ("3", "line is longer than 64 MiB, the most a line may hold", huge[:30]),
        ("5", "not a CSV record of 4 fields (election_id,division_id,geometry,source_table)",
         "just,three,fields"),
    ]  # fmt: skip
    assert [(r["election_id"], r["source_line"]) for r in ballots_table(data_root)] == [
        ("local.leeds.a.2027-05-06", 2),
        ("local.leeds.b.2027-05-06", 4),
    ]
    # The line names its ballot: to the guard rails, the ballot is still in the export.
    metadata = materialization(result, "current_ballots")
    assert metadata["ballot_ids_without_area"] == ["local.leeds.huge.2027-05-06"]
    assert "| local.leeds.huge.2027-05-06 |" in metadata["ballots_without_area"]


def test_an_export_that_is_not_utf8_stops_naming_its_first_bad_line(tmp_path, run_assets):
    lines = [HEADER, ballot_line("local.leeds.a.2027-05-06", "E05001", SQUARE, "Division")]
    lines += ["local.leeds.b.2027-05-06,Caf\xe9,,None", "local.leeds.c.2027-05-06,\xe9,,None"]
    export = tmp_path / "ballots.csv"
    export.write_bytes("\n".join(lines).encode("latin-1"))
    message = failure_messages(run_assets(BALLOTS, ballots=export))
    assert f"{export}:3: not UTF-8 encoded" in message


def test_a_ballots_export_with_blank_lines_bakes_with_its_lines_numbered(
    tmp_path, data_root, run_assets
):
    """Blank lines (LF or CRLF) hold no row and are not rejected; they still count as lines."""
    export = tmp_path / "ballots.csv"
    export.write_bytes(
        f"{HEADER}\n\n{ballot_line('local.leeds.a.2027-05-06', 'E05001', SQUARE, 'Division')}"
        f"\r\n\r\n\n{ballot_line('local.leeds.b.2027-05-06', 'E05002', SQUARE, 'Division')}"
        "\n\n".encode()
    )
    result = run_assets(BALLOTS, ballots=export)
    assert result.success, failure_messages(result)
    assert [(r["election_id"], r["source_line"]) for r in ballots_table(data_root)] == [
        ("local.leeds.a.2027-05-06", 3),
        ("local.leeds.b.2027-05-06", 6),
    ]
    assert report(data_root) == []


def _around(line: str) -> list[str]:
    """``line`` as line 3 of an export, between two good lines, with a bad line 5 after."""
    return [
        HEADER,
        ballot_line("local.leeds.a.2027-05-06", "E05001", SQUARE, "Division"),
        line,
        ballot_line("local.leeds.c.2027-05-06", "E05003", SQUARE, "Division"),
        "just,three,fields",
    ]


NOT_A_RECORD = "not a CSV record of 4 fields (election_id,division_id,geometry,source_table)"
NUL_LINES = {
    "before a second geometry": ballot_line(
        "local.leeds.b.2027-05-06", "E05002", SQUARE, "Division\0"
    )
    + f',"POLYGON({FAR_RING})"',
    "inside the geometry": ballot_line(
        "local.leeds.b.2027-05-06", "E05002", SQUARE.replace(" 53.8,", " 53.8\0,", 1), "Division"
    ),
    "after the source table None": "local.leeds.b.2027-05-06,E05002,,None\0",
}


@pytest.mark.parametrize("line", NUL_LINES.values(), ids=NUL_LINES.keys())
def test_a_nul_byte_makes_its_whole_line_a_rejected_row(tmp_path, data_root, run_assets, line):
    """A NUL byte is a character of its line, not its end: the line is rejected whole and
    reported with all its text, never read as the part before the NUL."""
    export = tmp_path / "ballots.csv"
    export.write_bytes("".join(f"{text}\n" for text in _around(line)).encode())
    result = run_assets(BALLOTS, ballots=export, max_rejected_rows=2)
    assert result.success, failure_messages(result)
    assert [(r["line"], r["status"], r["reason"], r["text"]) for r in report(data_root)] == [
        ("3", "rejected", "line holds a NUL byte", line),
        ("5", "rejected", NOT_A_RECORD, "just,three,fields"),
    ]
    assert [(r["election_id"], r["source_line"]) for r in ballots_table(data_root)] == [
        ("local.leeds.a.2027-05-06", 2),
        ("local.leeds.c.2027-05-06", 4),
    ]


CR_LINES = {
    "inside the geometry, LF endings": (
        ballot_line(
            "local.leeds.b.2027-05-06",
            "E05002",
            SQUARE.replace(" 53.8,", " 53.8,\r", 1),
            "Division",
        ),
        "\n",
    ),
    "inside the geometry, CRLF endings": (
        ballot_line(
            "local.leeds.b.2027-05-06",
            "E05002",
            SQUARE.replace(" 53.8,", " 53.8,\r", 1),
            "Division",
        ),
        "\r\n",
    ),
    "before the CRLF ending": (
        ballot_line("local.leeds.b.2027-05-06", "E05002", SQUARE, "Division") + "\r",
        "\r\n",
    ),
    "starting the line": (
        "\r" + ballot_line("local.leeds.b.2027-05-06", "E05002", SQUARE, "Division"),
        "\n",
    ),
}


@pytest.mark.parametrize(("line", "newline"), CR_LINES.values(), ids=CR_LINES.keys())
def test_a_lone_carriage_return_is_a_character_of_its_line(
    tmp_path, data_root, run_assets, line, newline
):
    """Lines end at LF or CRLF only: a lone CR neither splits its line nor is lost, so the
    line is reported whole and the lines after it keep their numbers."""
    export = write_lines(tmp_path / "ballots.csv", _around(line), newline=newline)
    result = run_assets(BALLOTS, ballots=export, max_rejected_rows=2)
    assert result.success, failure_messages(result)
    assert [(r["line"], r["reason"], r["text"]) for r in report(data_root)] == [
        ("3", "line holds a carriage return that does not end it", line),
        ("5", NOT_A_RECORD, "just,three,fields"),
    ]
    assert [(r["election_id"], r["source_line"]) for r in ballots_table(data_root)] == [
        ("local.leeds.a.2027-05-06", 2),
        ("local.leeds.c.2027-05-06", 4),
    ]


def test_a_header_holding_a_carriage_return_stops_naming_line_one(tmp_path, run_assets):
    export = tmp_path / "ballots.csv"
    export.write_bytes(f"{HEADER}\r\r\n".encode())
    message = failure_messages(run_assets(BALLOTS, ballots=export))
    assert (
        f"{export}:1: the header must be election_id,division_id,geometry,source_table or "
        "election_id,geography_id,geography_text,source_table, "
        f"not {HEADER + chr(13)!r} (line holds a carriage return that does not end it)"
    ) in message


def _beside_a_namesake(folder, name: str) -> None:
    """An export named ``name`` next to ``ballots1.csv``, which a glob ``name`` would match."""
    write_lines(
        folder / name,
        [HEADER, ballot_line("local.leeds.named.2027-05-06", "E05001", SQUARE, "Division")],
    )
    write_lines(
        folder / "ballots1.csv",
        [HEADER, ballot_line("local.leeds.namesake.2027-05-06", "E05002", SQUARE, "Division")],
    )


@pytest.mark.parametrize("name", ["ballots[1].csv", "ballots?.csv", "ballots*.csv"])
def test_the_export_is_read_by_its_own_name_never_as_a_pattern(
    tmp_path, data_root, run_assets, name
):
    _beside_a_namesake(tmp_path, name)
    result = run_assets(BALLOTS, ballots=tmp_path / name)
    assert result.success, failure_messages(result)
    assert [(r["election_id"], r["source_line"]) for r in ballots_table(data_root)] == [
        ("local.leeds.named.2027-05-06", 2)
    ]
    assert materialization(result, "current_ballots")["ballots_source"] == str(tmp_path / name)


def test_an_export_on_s3_is_read_by_its_own_key_never_as_a_pattern(
    tmp_path, data_root, run_assets, s3_env
):
    bucket = s3_env.new_bucket()
    _beside_a_namesake(tmp_path, "ballots[1].csv")
    for name in ("ballots[1].csv", "ballots1.csv"):
        s3_env.client().upload_file(str(tmp_path / name), bucket, f"exports/{name}")
    result = run_assets(BALLOTS, ballots=f"s3://{bucket}/exports/ballots[1].csv")
    assert result.success, failure_messages(result)
    assert [r["election_id"] for r in ballots_table(data_root)] == ["local.leeds.named.2027-05-06"]


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        ('a.1,E1,"POLYGON((1 2,3 4))",Division', ("a.1", "E1", "POLYGON((1 2,3 4))", "Division")),
        (',,"",', ("", "", "", "")),
        ('a.1,,"",None', ("a.1", "", "", "None")),
        ('é.1,É1,"SRID=4326;ü",Dívision', ("é.1", "É1", "SRID=4326;ü", "Dívision")),
        ('a.1,E1,"say ""it""",Division', ("a.1", "E1", 'say "it"', "Division")),
        ('"a,1",E1,"g",Division', ("a,1", "E1", "g", "Division")),
        ('a.1,"E1","g","Division"', ("a.1", "E1", "g", "Division")),
        ('a"1,E1,"g",Division', ('a"1', "E1", "g", "Division")),
        ('a.1,E1,"g",Div"ision', ("a.1", "E1", "g", 'Div"ision')),
        ("a.1,E1,g,Division", ("a.1", "E1", "g", "Division")),
        ('a.1,E1,"g\r",Division', ("a.1", "E1", "g\r", "Division")),
        ('a.1,E1,"g",Division,x', None),
        ('a.1,E1,x,"g",Division', None),
        ('a.1,"g",Division', None),
        ('a.1,E1,"g"x,Division', None),
        ('a.1,E1,"g,Division', None),
        ('"a.1,E1,"g",Division', None),
    ],
)
def test_each_line_is_cut_into_the_four_fields_of_its_csv_record(tmp_path, engine, line, fields):
    """A line as exports write it is cut at its quotes and commas, any other by the RFC 4180
    record pattern: either way into the same fields; a line that is no record of 4 fields is
    not well formed."""
    export = write_lines(tmp_path / "ballots.csv", [HEADER, line])
    cut = run_on_lines(
        engine,
        ballots_assets.FIELDS_QUERY,
        {"record_pattern": record_pattern(4)},
        files=[str(export)],
        table="export_lines_read",
        max_line_bytes=MAX_LINE_BYTES,
    )
    (row,) = [row for row in cut.to_pylist() if row["line_no"] == 2]
    names = ("election_id", "division_id", "geometry_text", "source_table")
    if fields is None:
        assert not row["well_formed"]
    else:
        assert tuple(row[name] for name in names) == fields
        assert row["well_formed"] == ("\r" not in line)
    assert row["text"] == line


def test_only_the_ids_of_lines_with_a_usable_area_are_listed_as_invalid(
    tmp_path, data_root, run_assets
):
    """An ID is checked once its line has an area: a line whose geometry is refused is
    rejected for its geometry, and its ID is not among the invalid ones."""
    lines = [
        HEADER,
        ballot_line("not-a-ballot", "E05001", "POLYGON((-1.6 53.8,-1.5 53.8))", "Division"),
        ballot_line("nor-this", "E05002", SQUARE, "Division"),
        ballot_line("local.leeds.a.2027-05-06", "E05003", SQUARE, "Division"),
        "no-ballot-either,,,None",
    ]
    export = write_lines(tmp_path / "ballots.csv", lines)
    result = run_assets(BALLOTS, ballots=export, max_rejected_rows=2)
    assert result.success, failure_messages(result)
    assert [(r["line"], r["status"], r["reason"]) for r in report(data_root)] == [
        ("2", "rejected", NOT_CLOSED),
        ("3", "rejected", 'election_id "nor-this" is not a valid ballot ID: '
         "Not enough parts: must have at least an election type and a date"),
        ("5", "skipped", "no geography (source_table None)"),
    ]  # fmt: skip
    invalid = materialization(result, "current_ballots")["invalid_ballot_ids"]
    assert "| nor-this |" in invalid
    assert "not-a-ballot" not in invalid and "no-ballot-either" not in invalid


def test_the_ids_are_checked_while_the_geometries_are_parsed(
    tmp_path, data_root, run_assets, monkeypatch
):
    """Checking the IDs is Python's work and parsing the geometries DuckDB's: each starts
    before the other has ended, rather than one after the other."""
    parsing, checking = threading.Event(), threading.Event()
    saw_the_other: dict[str, bool] = {}
    run_sql, check = DuckDBQueryEngine.run_sql, ballots_assets.invalid_ballot_ids

    def parse_seeing_the_check(self, query, *args, **kwargs):
        if query == ballots_assets.PARSED_QUERY:
            parsing.set()
            saw_the_other["parse"] = checking.wait(timeout=5)
        return run_sql(self, query, *args, **kwargs)

    def check_seeing_the_parse(election_ids):
        checking.set()
        saw_the_other["check"] = parsing.wait(timeout=5)
        return check(election_ids)

    monkeypatch.setattr(DuckDBQueryEngine, "run_sql", parse_seeing_the_check)
    monkeypatch.setattr(ballots_assets, "invalid_ballot_ids", check_seeing_the_parse)
    lines = [HEADER, ballot_line("local.leeds.a.2027-05-06", "E05001", SQUARE, "Division")]
    result = run_assets(BALLOTS, ballots=write_lines(tmp_path / "ballots.csv", lines))
    assert result.success, failure_messages(result)
    assert saw_the_other == {"parse": True, "check": True}
    assert [r["election_id"] for r in ballots_table(data_root)] == ["local.leeds.a.2027-05-06"]
