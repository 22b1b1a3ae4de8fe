"""The boundary-reviews table: Democracy Club's export, a folder of headerless CSV part files
under ``boundary_review_id=/divisionset_generation=/division_type=`` folders, read into one row
per piece of a division's area; bad rows reported by file, line and reason; a file outside the
layout refuses the whole export."""

import csv
import gzip
import io
import re
import shutil
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from databaker.assets.boundary_reviews import (
    BOUNDARY_REVIEW_DIVISIONS,
    BOUNDARY_REVIEW_DIVISIONS_TABLE,
    boundary_review_divisions,
)
from databaker.resources import LocalLayerStore
from databaker.resources.input_locations import InputLocations
from databaker.sources import SAMPLE_BALLOTS, SAMPLE_DROPS, boundary_review_parts
from databaker_tests.conftest import failure_messages, materialization, write_lines
from databaker_tests.test_current_ballots import BOWTIE, BROKEN_GEOMETRIES, SQUARE

ASSET = "boundary_review_divisions"
FIELDS = [
    "slug", "status", "latest_event", "consultation_url", "legislation_title", "effective_date",
    "review_created", "review_modified", "organisation_name", "organisation_official_name",
    "organisation_gss", "divisionset_id", "divisionset_pmtiles_url", "division_slug",
    "division_name", "division_official_identifier", "division_boundary_wkt",
    "boundary_review_id", "divisionset_generation", "division_type",
]  # fmt: skip
REVIEW_COLUMNS = FIELDS[:16]
"""The columns a row of the table keeps as they are in the export, '' when empty."""
SCHEMA = pa.schema(
    [("boundary_review_id", pa.int64())]
    + [(name, pa.string()) for name in REVIEW_COLUMNS]
    + [
        ("divisionset_generation", pa.string()),
        ("division_type", pa.string()),
        ("division_key", pa.string()),
        ("geometry", pa.binary()),
        ("repaired", pa.bool_()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
    ]
)

WEST = "POLYGON((-1.60 53.80,-1.58 53.80,-1.58 53.83,-1.60 53.83,-1.60 53.80))"
EAST = "POLYGON((-1.58 53.80,-1.56 53.80,-1.56 53.83,-1.58 53.83,-1.58 53.80))"
KIRKSTALL = (
    "MULTIPOLYGON(((-1.62 53.81,-1.61 53.81,-1.61 53.82,-1.62 53.81)),"
    "((-1.64 53.81,-1.63 53.81,-1.63 53.82,-1.64 53.81)))"
)
HAXBY = "POLYGON((-1.08 54.01,-1.06 54.01,-1.06 54.03,-1.08 54.01))"

LEEDS = {
    "slug": "leeds-2027",
    "status": "Completed",
    "latest_event": "Order made",
    "consultation_url": "https://www.lgbce.org.uk/all-reviews/leeds",
    "legislation_title": 'The Leeds (Electoral Changes) Order 2027, "as made"',
    "effective_date": "2027-05-06",
    "review_created": "2025-01-02T10:00:00Z",
    "review_modified": "2026-11-30T09:15:00Z",
    "organisation_name": "Leeds",
    "organisation_official_name": "Leeds City Council",
    "organisation_gss": "E08000035",
}
YORK = {"slug": "york-2028", "organisation_name": "York"}
"""A review that left every optional field empty."""


def review_row(**values: str) -> str:
    """One line of a part file, every field empty unless given, quoted as RFC 4180 writers
    quote (Python's csv writer: only where needed, quotes doubled)."""
    unknown = set(values) - set(FIELDS)
    assert not unknown, unknown
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([values.get(name, "") for name in FIELDS])
    return out.getvalue()


def part_path(export: Path, review: object, generation: str, division_type: str) -> Path:
    return (
        export
        / f"boundary_review_id={review}"
        / f"divisionset_generation={generation}"
        / f"division_type={division_type}"
    )


def gzipped_lines(path: Path, lines: list[str]) -> Path:
    """A gzip part whatever the case of its suffix (``write_lines`` goes by ``.gz``)."""
    path.write_bytes(gzip.compress("".join(line + "\n" for line in lines).encode()))
    return path


def crafted_export(export: Path) -> Path:
    """Two reviews, both generations, three division types, a division in two pieces (in two
    files, one gzipped with an upper-case suffix), a MULTIPOLYGON, an EWKT geometry, a bowtie
    to repair, a quoted field with a comma and doubled quotes, empty optional fields, the
    row's own folder columns given or left empty; and files that are no part of it."""
    new_mtw = part_path(export, 12, "new", "MTW")
    write_lines(
        new_mtw / "part-00000.csv",
        [
            review_row(
                **LEEDS, divisionset_id="901", division_slug="headingley",
                division_name="Headingley & Hyde Park", division_official_identifier="E05012001",
                division_boundary_wkt=WEST, boundary_review_id="12",
                divisionset_generation="new", division_type="MTW",
            ),
            review_row(
                **LEEDS, divisionset_id="901", division_slug="kirkstall",
                division_name="Kirkstall", division_boundary_wkt=KIRKSTALL,
            ),
        ],
    )  # fmt: skip
    gzipped_lines(
        new_mtw / "part-00001.CSV.GZ",
        [
            review_row(
                **LEEDS, divisionset_id="901", division_slug="headingley",
                division_name="Headingley & Hyde Park", division_official_identifier="E05012001",
                division_boundary_wkt=f"SRID=4326;{EAST}",
            )
        ],
    )  # fmt: skip
    write_lines(
        part_path(export, 12, "old", "MTW") / "part-00000.csv",
        [
            review_row(
                **LEEDS, divisionset_id="612", divisionset_pmtiles_url="https://x/612.pmtiles",
                division_slug="headingley", division_name="Headingley",
                division_boundary_wkt=SQUARE, divisionset_generation="old",
            )
        ],
    )  # fmt: skip
    write_lines(
        part_path(export, 7, "new", "UTW") / "part-00000.csv",
        [review_row(**YORK, division_slug="central", division_boundary_wkt=BOWTIE)],
    )
    write_lines(
        part_path(export, 7, "new", "CED") / "part-00000.csv",
        [review_row(**YORK, division_slug="haxby", division_boundary_wkt=HAXBY)],
    )
    (export / "_SUCCESS").write_bytes(b"")
    (new_mtw / "_SUCCESS").write_bytes(b"")
    (export / "README.txt").write_text("not a part file")
    return export


def expected_row(review: int, generation: str, division_type: str, file: str, line: int, **kw):
    """A row of the table as the export's columns give it; geometry aside."""
    row = {"boundary_review_id": review} | {name: kw.get(name, "") for name in REVIEW_COLUMNS}
    return row | {
        "divisionset_generation": generation,
        "division_type": division_type,
        "division_key": f"{review}/{generation}/{division_type}/{kw['division_slug']}",
        "repaired": kw.get("repaired", False),
        "source_file": file,
        "source_line": line,
    }


@pytest.fixture
def materialise(engine, data_root):
    """Materialise the table alone, reading the export the deployment names (or ``source``)."""

    def run(export, *, source=None, **limits) -> dg.ExecuteInProcessResult:
        inputs = InputLocations(
            addressbase_drops=str(SAMPLE_DROPS),
            ballots=str(SAMPLE_BALLOTS),
            boundary_reviews=str(export),
        )
        config = {"max_rejected_rows": 0, **limits}
        if source is not None:
            config["source"] = source
        return dg.materialize(
            [boundary_review_divisions],
            resources={
                "reader": engine,
                "store": LocalLayerStore(root=str(data_root)),
                "inputs": inputs,
            },
            run_config={"ops": {ASSET: {"config": config}}},
            raise_on_error=False,
        )

    return run


def table(data_root: Path) -> pa.Table:
    return pq.read_table(data_root / BOUNDARY_REVIEW_DIVISIONS)


def report(data_root: Path) -> list[dict[str, str]]:
    with open(data_root / "rejected" / f"{ASSET}.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_every_piece_of_every_division_is_a_row_with_its_folders_values(
    tmp_path, data_root, materialise
):
    export = crafted_export(tmp_path / "export")
    assert '"The Leeds (Electoral Changes) Order 2027, ""as made"""' in review_row(**LEEDS)
    result = materialise(export)
    assert result.success, failure_messages(result)

    rows = table(data_root).to_pylist()
    geometries = [shapely.from_wkb(row.pop("geometry")) for row in rows]
    new_mtw = part_path(export, 12, "new", "MTW")
    leeds_new = {
        **LEEDS,
        "divisionset_id": "901",
        "division_name": "Headingley & Hyde Park",
        "division_official_identifier": "E05012001",
        "division_slug": "headingley",
    }
    assert rows == [
        expected_row(7, "new", "CED", str(part_path(export, 7, "new", "CED") / "part-00000.csv"),
                     1, **YORK, division_slug="haxby"),
        expected_row(7, "new", "UTW", str(part_path(export, 7, "new", "UTW") / "part-00000.csv"),
                     1, **YORK, division_slug="central", repaired=True),
        expected_row(12, "new", "MTW", str(new_mtw / "part-00000.csv"), 1, **leeds_new),
        expected_row(12, "new", "MTW", str(new_mtw / "part-00001.CSV.GZ"), 1, **leeds_new),
        expected_row(12, "new", "MTW", str(new_mtw / "part-00000.csv"), 2, **LEEDS,
                     divisionset_id="901", division_slug="kirkstall", division_name="Kirkstall"),
        expected_row(12, "old", "MTW", str(part_path(export, 12, "old", "MTW") / "part-00000.csv"),
                     1, **LEEDS, divisionset_id="612",
                     divisionset_pmtiles_url="https://x/612.pmtiles", division_slug="headingley",
                     division_name="Headingley"),
    ]  # fmt: skip
    assert [geometry.is_valid for geometry in geometries] == [True] * 6
    expected = [HAXBY, None, WEST, EAST, KIRKSTALL, SQUARE]
    for geometry, wkt in zip(geometries, expected, strict=True):
        if wkt is not None:
            assert geometry.equals(shapely.from_wkt(wkt)), (geometry, wkt)
    assert geometries[1].equals(shapely.make_valid(shapely.from_wkt(BOWTIE)))

    metadata = materialization(result, ASSET)
    version = metadata.pop("boundary_reviews_version")
    assert metadata == {
        "boundary_reviews_source": str(export),
        "boundary_reviews": 2,
        "divisions": 5,
        "dagster/row_count": 6,
        "rows": 6,
        "repaired_geometries": 1,
        "rejected_rows": 0,
        "rejected_rows_allowed": 0,
        "reviews_in_export": ["7", "12"],
        "rejected_report": str(data_root / "rejected" / f"{ASSET}.csv"),
        "path": str(data_root / BOUNDARY_REVIEW_DIVISIONS),
    }
    inputs = InputLocations(addressbase_drops="", ballots="", boundary_reviews=str(export))
    assert version == inputs.boundary_reviews_version()
    assert report(data_root) == []


def test_the_table_has_the_columns_others_read_and_glue_declares_them(
    tmp_path, data_root, materialise
):
    assert materialise(crafted_export(tmp_path / "export")).success
    written = pq.read_schema(data_root / BOUNDARY_REVIEW_DIVISIONS)
    assert written.remove_metadata() == SCHEMA
    declaration = BOUNDARY_REVIEW_DIVISIONS_TABLE.declaration.text("athena")
    declared = re.findall(r"^\s+(\w+) (\w+),?$", declaration, re.MULTILINE)
    athena = {pa.int64(): "BIGINT", pa.string(): "STRING", pa.bool_(): "BOOLEAN"}
    # Glue reads the geometry as the WKB it is, as it does the ballots table's.
    athena[pa.binary()] = "BINARY"
    assert declared == [(field.name, athena[field.type]) for field in SCHEMA]


def good_row(slug: str, **values: str) -> str:
    return review_row(**LEEDS, division_slug=slug, division_boundary_wkt=WEST, **values)


NOT_A_RECORD = (
    "not a CSV record of 20 fields (slug,status,...,division_boundary_wkt,"
    "boundary_review_id,divisionset_generation,division_type)"
)


def bad_export(export: Path) -> tuple[Path, Path, list[str], list[str]]:
    """A part file with two good rows among bad ones (and a blank line), and a review whose
    only row is bad; returns both files and their lines."""
    lines = [
        good_row("headingley"),
        "just,three,fields",
        good_row("adel") + ",one too many",
        good_row("bramley").replace(WEST, "POLYGON((-1.6 53.8,-1.5"),
        good_row("burley").replace(WEST, "POINT(-1.6 53.8)"),
        good_row("chapel-allerton", boundary_review_id="13"),
        good_row("farnley", divisionset_generation="old"),
        good_row("garforth", division_type="UTW"),
        good_row(" "),
        review_row(**LEEDS, division_slug="gipton"),
        "",
        good_row("kirkstall", boundary_review_id="12", divisionset_generation="new"),
    ]
    reasons = [
        NOT_A_RECORD,
        NOT_A_RECORD,
        'geometry is not valid WKT: "POLYGON((-1.6 53.8,-1.5..."',
        "geometry is a POINT, not a POLYGON or MULTIPOLYGON",
        'boundary_review_id "13" is not its folder\'s, boundary_review_id=12',
        'divisionset_generation "old" is not its folder\'s, divisionset_generation=new',
        'division_type "UTW" is not its folder\'s, division_type=MTW',
        "division_slug is empty",
        "geometry is empty",
    ]
    first = write_lines(part_path(export, 12, "new", "MTW") / "part-00000.csv", lines)
    # Latitude and longitude swapped: the only row of review 13.
    swapped = "POLYGON((53.8 -1.6,53.8 -1.5,53.9 -1.5,53.8 -1.6))"
    other = [review_row(division_slug="wortley", division_boundary_wkt=swapped)]
    second = write_lines(part_path(export, 13, "old", "DIW") / "part-00000.csv", other)
    return (
        first,
        second,
        lines,
        [*reasons, "geometry is outside Great Britain: are the coordinates lon/lat?"],
    )


def test_rejected_rows_stop_the_table_naming_file_line_and_reason(tmp_path, data_root, materialise):
    first, second, _, _ = bad_export(tmp_path / "export")
    result = materialise(tmp_path / "export")
    assert not result.success
    message = failure_messages(result)
    assert "10 rejected row(s), 0 allowed of 12 rows" in message
    assert f"{first}:2: {NOT_A_RECORD}" in message
    assert f'{first}:6: boundary_review_id "13" is not its folder\'s' in message
    assert f"{second}:1: geometry is outside Great Britain" in message
    assert not (data_root / BOUNDARY_REVIEW_DIVISIONS).exists()
    assert len(report(data_root)) == 10


def test_rejected_rows_within_the_allowance_are_reported_and_left_out(
    tmp_path, data_root, materialise
):
    first, second, lines, reasons = bad_export(tmp_path / "export")
    result = materialise(tmp_path / "export", max_rejected_rows=10)
    assert result.success, failure_messages(result)
    bad_lines = [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert report(data_root) == [
        {"file": str(first), "line": str(line), "reason": reason, "text": lines[line - 1]}
        for line, reason in zip(bad_lines, reasons[:-1], strict=True)
    ] + [
        {"file": str(second), "line": "1", "reason": reasons[-1],
         "text": second.read_text().rstrip("\n")}
    ]  # fmt: skip
    kept = table(data_root).select(["division_key", "source_line"]).to_pylist()
    assert kept == [
        {"division_key": "12/new/MTW/headingley", "source_line": 1},
        {"division_key": "12/new/MTW/kirkstall", "source_line": 12},
    ]
    metadata = materialization(result, ASSET)
    assert (metadata["rows"], metadata["rejected_rows"], metadata["rejected_rows_allowed"]) == (
        2,
        10,
        10,
    )
    # Review 13 kept no row, yet the export still names it: it is broken, not withdrawn.
    assert (metadata["boundary_reviews"], metadata["reviews_in_export"]) == (1, ["12", "13"])


def test_rejected_rows_are_allowed_up_to_a_share_of_the_export(tmp_path, data_root, materialise):
    """One bad row in 1,000 is left out by default (``max_rejected_share``); two stop it."""
    good = [good_row(f"w{n}") for n in range(999)]
    bad = good_row("bad").replace(WEST, "POINT(-1.6 53.8)")
    part = part_path(tmp_path / "export", 12, "new", "MTW") / "part-00000.csv"
    write_lines(part, [*good, bad])
    result = materialise(tmp_path / "export", max_rejected_rows=0)
    assert result.success, failure_messages(result)
    assert materialization(result, ASSET)["rejected_rows_allowed"] == 1
    write_lines(part, [*good[:-1], bad, bad])
    result = materialise(tmp_path / "export", max_rejected_rows=0)
    assert "2 rejected row(s), 1 allowed of 1000 rows" in failure_messages(result)


def test_the_ballots_geometry_rules_and_reasons_apply(tmp_path, data_root, materialise):
    """Both exports hold areas drawn the same way: a geometry the ballots export rejects is
    rejected here with the same reason, including those GEOS would raise on."""
    broken = list(BROKEN_GEOMETRIES)
    lines = [good_row(f"w{n}").replace(WEST, wkt) for n, wkt in enumerate(broken)]
    write_lines(part_path(tmp_path / "export", 12, "new", "MTW") / "part-00000.csv", lines)
    result = materialise(tmp_path / "export", max_rejected_rows=len(lines))
    assert result.success, failure_messages(result)
    assert {int(row["line"]): row["reason"] for row in report(data_root)} == {
        line: f'geometry is not valid WKT: "{wkt[:40]}..."' if reason == "not WKT" else reason
        for line, (wkt, reason) in enumerate(BROKEN_GEOMETRIES.items(), start=1)
    }
    assert table(data_root).num_rows == 0


@pytest.mark.parametrize(
    "misplaced",
    [
        "boundary_review_id=12/divisionset_generation=older/division_type=MTW/part-00000.csv",
        "boundary_review_id=twelve/divisionset_generation=new/division_type=MTW/part-00000.csv",
        "boundary_review_id=012/divisionset_generation=new/division_type=MTW/part-00000.csv",
        "boundary_review_id=12/divisionset_generation=new/division_type=M.T.W/part-00000.csv",
        "boundary_review_id=12/divisionset_generation=new/part-00000.csv",
        "boundary_review_id=12/divisionset_generation=new/division_type=MTW/x/part-00000.csv",
        "division_type=MTW/part-00000.csv.gz",
        "part-00000.csv",
    ],
)
def test_a_file_outside_the_layout_refuses_the_whole_export_naming_it(
    tmp_path, data_root, materialise, misplaced
):
    export = crafted_export(tmp_path / "export")
    write_lines(export / misplaced, [good_row("headingley")])
    result = materialise(export)
    assert not result.success
    message = failure_messages(result)
    assert f"boundary reviews export {export} refused: 1 file(s) outside its layout, " in message
    assert f"{export / misplaced}; every part file must be at boundary_review_id=<integer>/" in (
        message
    )
    assert not (data_root / BOUNDARY_REVIEW_DIVISIONS).exists()


def test_a_folder_without_part_files_is_an_export_of_no_reviews(tmp_path, data_root, materialise):
    export = tmp_path / "export"
    (export / "boundary_review_id=12").mkdir(parents=True)
    (export / "_SUCCESS").write_bytes(b"")
    result = materialise(export)
    assert result.success, failure_messages(result)
    written = table(data_root)
    assert (written.num_rows, written.schema.remove_metadata()) == (0, SCHEMA)
    metadata = materialization(result, ASSET)
    assert (metadata["rows"], metadata["boundary_reviews"], metadata["reviews_in_export"]) == (
        0,
        0,
        [],
    )
    assert report(data_root) == []


def test_a_missing_export_is_a_clear_error(tmp_path, materialise):
    result = materialise(tmp_path / "nowhere")
    assert f"boundary reviews export not found: {tmp_path / 'nowhere'}" in failure_messages(result)
    part = write_lines(tmp_path / "part-00000.csv", [good_row("headingley")])
    result = materialise(part)
    assert f"boundary reviews export {part} is a file; give the export's folder" in (
        failure_messages(result)
    )


def test_the_export_version_changes_with_its_part_files_and_only_with_them(tmp_path):
    export = crafted_export(tmp_path / "export")
    inputs = InputLocations(addressbase_drops="", ballots="", boundary_reviews=str(export))
    version = inputs.boundary_reviews_version()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", version)
    part = part_path(export, 12, "old", "MTW") / "part-00000.csv"
    original = part.read_bytes()

    (export / "_SUCCESS").write_bytes(b"done")
    part.write_bytes(original)  # rewritten, same content, newer modification time
    assert inputs.boundary_reviews_version() == version
    part.write_bytes(original.replace(b"Headingley", b"Headingly"))
    assert inputs.boundary_reviews_version() != version
    part.write_bytes(original)
    assert inputs.boundary_reviews_version() == version
    shutil.move(part, part.with_name("part-00009.csv"))
    assert inputs.boundary_reviews_version() != version
    shutil.move(part.with_name("part-00009.csv"), part)
    extra = write_lines(part.with_name("part-00001.csv"), [])
    assert inputs.boundary_reviews_version() != version
    extra.unlink()
    assert inputs.boundary_reviews_version() == version


def test_the_export_is_read_from_s3_into_the_same_table(tmp_path, data_root, materialise, s3_env):
    export = crafted_export(tmp_path / "export")
    local = materialise(export)
    assert local.success, failure_messages(local)
    on_disk = table(data_root).to_pylist()

    bucket = s3_env.new_bucket()
    client = s3_env.client()
    prefix = "boundary_reviews/2026-12-01/"
    for path in sorted(p for p in export.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, prefix + path.relative_to(export).as_posix())
    url = f"s3://{bucket}/{prefix.rstrip('/')}"
    shutil.rmtree(data_root)
    result = materialise(tmp_path / "unused", source=url)
    assert result.success, failure_messages(result)
    on_s3 = table(data_root).to_pylist()
    folder = f"s3://{bucket}/{prefix}"
    assert [row["source_file"] for row in on_s3] == [
        row["source_file"].replace(f"{export}/", folder) for row in on_disk
    ]
    assert [{**row, "source_file": ""} for row in on_s3] == [
        {**row, "source_file": ""} for row in on_disk
    ]
    metadata = materialization(result, ASSET)
    assert metadata["boundary_reviews_source"] == folder
    inputs = InputLocations(addressbase_drops="", ballots="", boundary_reviews=url)
    assert metadata["boundary_reviews_version"] == inputs.boundary_reviews_version()

    # A part rewritten changes the version; a CSV outside the layout refuses the export.
    key = (
        prefix + "boundary_review_id=7/divisionset_generation=new/division_type=UTW/part-00000.csv"
    )
    client.put_object(Bucket=bucket, Key=key, Body=review_row(division_slug="c").encode())
    assert inputs.boundary_reviews_version() != metadata["boundary_reviews_version"]
    client.put_object(Bucket=bucket, Key=prefix + "boundary_review_id=7/part.csv", Body=b"")
    with pytest.raises(dg.Failure, match=rf"{folder}boundary_review_id=7/part\.csv; every part"):
        boundary_review_parts(url)


def test_an_s3_prefix_with_only_a_marker_is_empty_and_one_with_nothing_is_not_found(s3_env):
    bucket = s3_env.new_bucket()
    s3_env.client().put_object(Bucket=bucket, Key="reviews/_SUCCESS", Body=b"")
    assert boundary_review_parts(f"s3://{bucket}/reviews") == (f"s3://{bucket}/reviews/", [])
    with pytest.raises(dg.Failure, match=f"boundary reviews export not found: s3://{bucket}/rev$"):
        boundary_review_parts(f"s3://{bucket}/rev")
    with pytest.raises(dg.Failure, match="is a file; give the export's folder"):
        boundary_review_parts(f"s3://{bucket}/reviews/_SUCCESS")
