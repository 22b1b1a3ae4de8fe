"""The ballots table: both export headers, WKT and EWKT, repairs, skips and rejections."""

import csv

import pyarrow.parquet as pq
import pytest
import shapely

from databaker_tests.conftest import ballot_line, failure_messages, materialization, write_lines

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
