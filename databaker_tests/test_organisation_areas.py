"""The organisations table: the organisations export, one CSV file with a header row, read as of
a date into one row per piece of a current organisation's area or of one of its current
divisions'; rows that are not current reported as skipped, bad rows as rejected, each by file,
line and reason; a wrong header refuses the whole export."""

import csv
import datetime
import io
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from databaker.assets.organisations import (
    ORGANISATION_AREAS,
    ORGANISATION_AREAS_TABLE,
    organisation_areas,
)
from databaker.resources import LocalLayerStore
from databaker.resources.input_locations import InputLocations
from databaker.sources import SAMPLE_BALLOTS, SAMPLE_BOUNDARY_REVIEWS, SAMPLE_DROPS
from databaker_tests.conftest import failure_messages, materialization, write_lines
from databaker_tests.test_current_ballots import BROKEN_GEOMETRIES

ASSET = "organisation_areas"
FIELDS = [
    "organisation_type", "official_identifier", "organisation_name", "gss", "start_date",
    "end_date", "divisionset_start_date", "divisionset_end_date", "division_type",
    "division_slug", "division_name", "division_official_identifier", "geometry",
]  # fmt: skip
HEADER = ",".join(FIELDS)
SCHEMA = pa.schema(
    [(name, pa.string()) for name in FIELDS[:4]]
    + [(name, pa.date32()) for name in FIELDS[4:8]]
    + [(name, pa.string()) for name in FIELDS[8:12]]
    + [
        ("organisation_key", pa.string()),
        ("area_key", pa.string()),
        ("geometry", pa.binary()),
        ("repaired", pa.bool_()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
    ]
)

ON = "2026-12-06"
DAY_BEFORE = "2026-12-05"
DAY_AFTER = "2026-12-07"


def box(lon: float, lat: float, size: float = 0.05) -> str:
    return (
        f"POLYGON(({lon} {lat},{lon + size} {lat},{lon + size} {lat + size},"
        f"{lon} {lat + size},{lon} {lat}))"
    )


KENT_AREA = f"MULTIPOLYGON({box(0.40, 51.10, 0.3)[7:]},{box(0.80, 51.10, 0.3)[7:]})"
CENTRAL = box(0.50, 51.25)
MAIDSTONE_WEST = box(0.45, 51.20)
MAIDSTONE_EAST = box(0.50, 51.20)
HIGH_STREET = box(0.52, 51.27, 0.01)
BOWTIE = "POLYGON((0.40 51.20,0.60 51.30,0.60 51.20,0.40 51.30,0.40 51.20))"
"""A polygon crossing itself: invalid, repaired into two triangles."""
POLICE = box(0.30, 51.00, 0.9)
COMBINED = box(0.35, 51.05, 0.8)
SCOTLAND = box(-3.20, 55.90)
WALES = box(-3.20, 51.45)
LONDON = box(-0.10, 51.50)
BELFAST = box(-5.90, 54.58)

KENT = {
    "organisation_type": "local-authority",
    "official_identifier": "KEN",
    "organisation_name": "Kent County Council",
    "gss": "E10000016",
    "start_date": "1974-04-01",
}
MAIDSTONE = {
    "organisation_type": "local-authority",
    "official_identifier": "MAI",
    "organisation_name": "Maidstone Borough Council",
    "gss": "E07000110",
    "start_date": "1974-04-01",
}
CONSTITUENCY = {
    "organisation_type": "parl",
    "official_identifier": "E14001354",
    "organisation_name": 'Maidstone and Malling, "M&M"',
    "start_date": "2024-07-04",
}
POLICE_AREA = {
    "organisation_type": "police-area",
    "official_identifier": "kent",
    "organisation_name": "Kent Police",
    "start_date": "2000-04-01",
    "end_date": ON,
}
COMBINED_AUTHORITY = {
    "organisation_type": "combined-authority",
    "official_identifier": "KMCA",
    "organisation_name": "Kent and Medway Combined Authority",
    "start_date": ON,
}
ENDED = {
    "organisation_type": "sp",
    "official_identifier": "S16000100",
    "organisation_name": "Scottish Parliament",
    "start_date": "2011-05-05",
    "end_date": DAY_BEFORE,
}
STARTING = {
    "organisation_type": "senedd",
    "official_identifier": "senedd",
    "organisation_name": "Senedd Cymru",
    "start_date": DAY_AFTER,
}
ASSEMBLY = {
    "organisation_type": "nia",
    "official_identifier": "NIA",
    "organisation_name": "Northern Ireland Assembly",
    "start_date": "1998-06-25",
}
GLA = {
    "organisation_type": "gla",
    "official_identifier": "GLA",
    "organisation_name": "Greater London Authority",
    "start_date": "2000-05-04",
}


def org_row(**values: str) -> str:
    """One line of the export, every field empty unless given, quoted as RFC 4180 writers quote
    (Python's csv writer: only where needed, quotes doubled)."""
    unknown = set(values) - set(FIELDS)
    assert not unknown, unknown
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([values.get(name, "") for name in FIELDS])
    return out.getvalue()


def write_export(path: Path, rows: list[str]) -> Path:
    return write_lines(path, [HEADER, *rows])


CRAFTED = [
    # line 2: the county's own area, a MULTIPOLYGON, its WKT bare
    org_row(**KENT, geometry=KENT_AREA),
    # line 3: a county division, its geometry EWKT
    org_row(
        **KENT, divisionset_start_date="2017-05-04", division_type="CED",
        division_slug="maidstone-central", division_name="Maidstone Central",
        division_official_identifier="E58000725", geometry=f"SRID=4326;{CENTRAL}",
    ),
    # lines 4 and 6: a district inside it, its area in two pieces, a blank line between them
    org_row(**MAIDSTONE, geometry=MAIDSTONE_WEST),
    "",
    org_row(**MAIDSTONE, geometry=MAIDSTONE_EAST),
    # line 7: a district ward, its name holding a comma and quotes
    org_row(
        **MAIDSTONE, divisionset_start_date="2024-05-02", division_type="DIW",
        division_slug="high-street", division_name='High Street, "Town"', geometry=HIGH_STREET,
    ),
    # line 8: a constituency crossing them, an invalid polygon repaired
    org_row(**CONSTITUENCY, geometry=BOWTIE),
    # line 9: ends on the day; line 10: starts on the day
    org_row(**POLICE_AREA, geometry=POLICE),
    org_row(**COMBINED_AUTHORITY, geometry=COMBINED),
    # line 11: ended the day before; line 12: starts the day after
    org_row(**ENDED, geometry=SCOTLAND),
    org_row(**STARTING, geometry=WALES),
    # lines 13 and 14: county divisions of a divisionset that ended the day before, and of one
    # that starts the day after
    org_row(
        **KENT, divisionset_start_date="2005-05-05", divisionset_end_date=DAY_BEFORE,
        division_type="CED", division_slug="maidstone-rural", geometry=CENTRAL,
    ),
    org_row(
        **KENT, divisionset_start_date=DAY_AFTER, division_type="CED",
        division_slug="maidstone-north", geometry=CENTRAL,
    ),
    # line 15: a divisionset that ends on the day; line 16: one that starts on the day
    org_row(
        **GLA, divisionset_start_date="2000-05-04", divisionset_end_date=ON,
        division_type="LAC", division_slug="city-and-east", division_name="City and East",
        geometry=LONDON,
    ),
    org_row(
        **ASSEMBLY, divisionset_start_date=ON, division_type="NIAC",
        division_slug="belfast-east", division_name="Belfast East", geometry=BELFAST,
    ),
    # line 17: a current divisionset of an organisation that ended
    org_row(
        **ENDED, divisionset_start_date="2011-05-05", division_type="SPC",
        division_slug="edinburgh-central", geometry=SCOTLAND,
    ),
]  # fmt: skip
SKIPPED = {
    11: f"not current on {ON}: the organisation ended {DAY_BEFORE}",
    12: f"not current on {ON}: the organisation starts {DAY_AFTER}",
    13: f"not current on {ON}: the divisionset ended {DAY_BEFORE}",
    14: f"not current on {ON}: the divisionset starts {DAY_AFTER}",
    17: f"not current on {ON}: the organisation ended {DAY_BEFORE}",
}


def day(text: str | None) -> datetime.date | None:
    return datetime.date.fromisoformat(text) if text else None


def expected_row(file: Path, line: int, organisation: dict, **kw) -> dict:
    """A row of the table as the export's fields give it; keys and geometry aside."""
    return {
        "organisation_type": organisation["organisation_type"],
        "official_identifier": organisation["official_identifier"],
        "organisation_name": organisation["organisation_name"],
        "gss": organisation.get("gss", ""),
        "start_date": day(organisation["start_date"]),
        "end_date": day(organisation.get("end_date")),
        "divisionset_start_date": day(kw.get("divisionset_start_date")),
        "divisionset_end_date": day(kw.get("divisionset_end_date")),
        "division_type": kw.get("division_type", ""),
        "division_slug": kw.get("division_slug", ""),
        "division_name": kw.get("division_name", ""),
        "division_official_identifier": kw.get("division_official_identifier", ""),
        "repaired": kw.get("repaired", False),
        "source_file": str(file),
        "source_line": line,
    }


@pytest.fixture
def materialise(engine, data_root):
    """Materialise the table alone, reading the export the deployment names (or ``source``)."""

    def run(export, *, on=ON, source=None, **limits) -> dg.ExecuteInProcessResult:
        inputs = InputLocations(
            addressbase_drops=str(SAMPLE_DROPS),
            ballots=str(SAMPLE_BALLOTS),
            boundary_reviews=str(SAMPLE_BOUNDARY_REVIEWS),
            organisations=str(export),
        )
        config = {"max_rejected_rows": 0, **limits}
        if on is not None:
            config["on"] = on
        if source is not None:
            config["source"] = source
        return dg.materialize(
            [organisation_areas],
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
    return pq.read_table(data_root / ORGANISATION_AREAS)


def keys(data_root: Path) -> list[tuple[str, str, int]]:
    rows = table(data_root).select(["organisation_key", "area_key", "source_line"]).to_pylist()
    return [(row["organisation_key"], row["area_key"], row["source_line"]) for row in rows]


def report(data_root: Path) -> list[dict[str, str]]:
    with open(data_root / "rejected" / f"{ASSET}.csv", newline="") as file:
        return list(csv.DictReader(file))


def data_version(result: dg.ExecuteInProcessResult) -> str:
    (event,) = result.get_asset_materialization_events()
    return event.step_materialization_data.materialization.tags["dagster/data_version"]


def test_every_piece_of_a_current_area_is_a_row_with_its_keys(tmp_path, data_root, materialise):
    export = write_export(tmp_path / "organisations.csv", CRAFTED)
    assert '"Maidstone and Malling, ""M&M"""' in org_row(**CONSTITUENCY)
    result = materialise(export)
    assert result.success, failure_messages(result)

    rows = table(data_root).to_pylist()
    geometries = {row["source_line"]: shapely.from_wkb(row.pop("geometry")) for row in rows}
    rows = [{k: v for k, v in row.items() if not k.endswith("_key")} for row in rows]
    central = {"divisionset_start_date": "2017-05-04", "division_type": "CED"}
    assert rows == [
        expected_row(export, 10, COMBINED_AUTHORITY),
        expected_row(export, 15, GLA, divisionset_start_date="2000-05-04",
                     divisionset_end_date=ON, division_type="LAC",
                     division_slug="city-and-east", division_name="City and East"),
        expected_row(export, 2, KENT),
        expected_row(export, 3, KENT, **central, division_slug="maidstone-central",
                     division_name="Maidstone Central", division_official_identifier="E58000725"),
        expected_row(export, 4, MAIDSTONE),
        expected_row(export, 6, MAIDSTONE),
        expected_row(export, 7, MAIDSTONE, divisionset_start_date="2024-05-02",
                     division_type="DIW", division_slug="high-street",
                     division_name='High Street, "Town"'),
        expected_row(export, 16, ASSEMBLY, divisionset_start_date=ON, division_type="NIAC",
                     division_slug="belfast-east", division_name="Belfast East"),
        expected_row(export, 8, CONSTITUENCY, repaired=True),
        expected_row(export, 9, POLICE_AREA),
    ]  # fmt: skip
    assert keys(data_root) == [
        ("combined-authority/KMCA/2026-12-06", "combined-authority/KMCA/2026-12-06", 10),
        ("gla/GLA/2000-05-04", "gla/GLA/2000-05-04/2000-05-04/LAC/city-and-east", 15),
        ("local-authority/KEN/1974-04-01", "local-authority/KEN/1974-04-01", 2),
        (
            "local-authority/KEN/1974-04-01",
            "local-authority/KEN/1974-04-01/2017-05-04/CED/maidstone-central",
            3,
        ),
        ("local-authority/MAI/1974-04-01", "local-authority/MAI/1974-04-01", 4),
        ("local-authority/MAI/1974-04-01", "local-authority/MAI/1974-04-01", 6),
        (
            "local-authority/MAI/1974-04-01",
            "local-authority/MAI/1974-04-01/2024-05-02/DIW/high-street",
            7,
        ),
        ("nia/NIA/1998-06-25", "nia/NIA/1998-06-25/2026-12-06/NIAC/belfast-east", 16),
        ("parl/E14001354/2024-07-04", "parl/E14001354/2024-07-04", 8),
        ("police-area/kent/2000-04-01", "police-area/kent/2000-04-01", 9),
    ]

    expected_areas = {
        2: KENT_AREA, 3: CENTRAL, 4: MAIDSTONE_WEST, 6: MAIDSTONE_EAST, 7: HIGH_STREET,
        9: POLICE, 10: COMBINED, 15: LONDON, 16: BELFAST,
    }  # fmt: skip
    for line, wkt in expected_areas.items():
        assert geometries[line].equals(shapely.from_wkt(wkt)), (line, geometries[line])
    assert geometries[2].geom_type == "MultiPolygon"
    assert geometries[8].is_valid
    assert geometries[8].equals(shapely.make_valid(shapely.from_wkt(BOWTIE)))

    assert report(data_root) == [
        {"file": str(export), "line": str(line), "status": "skipped", "reason": reason,
         "text": CRAFTED[line - 2]}
        for line, reason in SKIPPED.items()
    ]  # fmt: skip

    metadata = materialization(result, ASSET)
    inputs = InputLocations(
        addressbase_drops="", ballots="", boundary_reviews="", organisations=str(export)
    )
    version = inputs.organisations_version()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", version)
    assert metadata == {
        "organisations_source": str(export),
        "organisations_version": version,
        "organisations_on": ON,
        "organisations": 7,
        "divisions": 4,
        "dagster/row_count": 10,
        "rows": 10,
        "skipped_rows": 5,
        "repaired_geometries": 1,
        "rejected_rows": 0,
        "rejected_rows_allowed": 0,
        "organisations_in_export": [
            "combined-authority/KMCA",
            "gla/GLA",
            "local-authority/KEN",
            "local-authority/MAI",
            "nia/NIA",
            "parl/E14001354",
            "police-area/kent",
        ],
        "rejected_report": str(data_root / "rejected" / f"{ASSET}.csv"),
        "path": str(data_root / ORGANISATION_AREAS),
    }
    assert data_version(result) == f"{version} on {ON}"


def test_the_table_has_the_columns_others_read_and_glue_declares_them(
    tmp_path, data_root, materialise
):
    assert materialise(write_export(tmp_path / "organisations.csv", CRAFTED)).success
    written = pq.read_schema(data_root / ORGANISATION_AREAS)
    assert written.remove_metadata() == SCHEMA
    declaration = ORGANISATION_AREAS_TABLE.declaration.text("athena")
    declared = re.findall(r"^\s+(\w+) (\w+),?$", declaration, re.MULTILINE)
    athena = {
        pa.int64(): "BIGINT",
        pa.string(): "STRING",
        pa.bool_(): "BOOLEAN",
        pa.date32(): "DATE",
        pa.binary(): "BINARY",
    }
    assert declared == [(field.name, athena[field.type]) for field in SCHEMA]
    schema = organisation_areas.metadata_by_key[organisation_areas.key]["dagster/column_schema"]
    assert [column.name for column in schema.columns] == SCHEMA.names


COUNCIL = {
    "organisation_type": "local-authority",
    "official_identifier": "LDS",
    "organisation_name": "Leeds City Council",
    "gss": "E08000035",
    "start_date": "1974-04-01",
}
OLD, NEW = "2004-06-10", "2027-05-06"
LAST_OLD_DAY = "2027-05-05"


def ward(divisionset: str, slug: str, lon: float) -> str:
    end = LAST_OLD_DAY if divisionset == OLD else ""
    return org_row(
        **COUNCIL, divisionset_start_date=divisionset, divisionset_end_date=end,
        division_type="MTW", division_slug=slug, geometry=box(lon, 53.80),
    )  # fmt: skip


def test_a_divisionset_replaced_on_a_date_gives_the_old_wards_before_it_and_the_new_after(
    tmp_path, data_root, materialise
):
    export = write_export(
        tmp_path / "organisations.csv",
        [
            org_row(**COUNCIL, geometry=box(-1.70, 53.70, 0.3)),  # line 2
            ward(OLD, "adel", -1.60),  # line 3
            ward(OLD, "headingley", -1.55),  # line 4
            ward(NEW, "adel", -1.62),  # line 5
            ward(NEW, "kirkstall", -1.57),  # line 6
        ],
    )
    council = "local-authority/LDS/1974-04-01"

    before = materialise(export, on=LAST_OLD_DAY)
    assert before.success, failure_messages(before)
    assert keys(data_root) == [
        (council, council, 2),
        (council, f"{council}/2004-06-10/MTW/adel", 3),
        (council, f"{council}/2004-06-10/MTW/headingley", 4),
    ]
    assert [(r["line"], r["status"], r["reason"]) for r in report(data_root)] == [
        (str(line), "skipped", "not current on 2027-05-05: the divisionset starts 2027-05-06")
        for line in (5, 6)
    ]

    after = materialise(export, on=NEW)
    assert after.success, failure_messages(after)
    assert keys(data_root) == [
        (council, council, 2),
        (council, f"{council}/2027-05-06/MTW/adel", 5),
        (council, f"{council}/2027-05-06/MTW/kirkstall", 6),
    ]
    assert [(r["line"], r["status"], r["reason"]) for r in report(data_root)] == [
        (str(line), "skipped", "not current on 2027-05-06: the divisionset ended 2027-05-05")
        for line in (3, 4)
    ]

    first, second = materialization(before, ASSET), materialization(after, ASSET)
    assert first["organisations_version"] == second["organisations_version"]
    assert (first["organisations_on"], second["organisations_on"]) == (LAST_OLD_DAY, NEW)
    assert (first["divisions"], first["skipped_rows"]) == (2, 2)
    assert data_version(before) != data_version(after)


NOT_A_RECORD = (
    "not a CSV record of 13 fields (organisation_type,official_identifier,organisation_name,"
    "...,division_official_identifier,geometry)"
)
OWN_AREA = "must be empty on a piece of the organisation's own area (its division_slug is empty)"
GOOD = box(-1.60, 53.80)
DIVISION = {"divisionset_start_date": "2022-05-05", "division_type": "MTW", "division_slug": "adel"}


def council(**values: str) -> str:
    """A row of a current council's own area; ``values`` override any field."""
    return org_row(**{**COUNCIL, "geometry": GOOD, **values})


def division(**values: str) -> str:
    """A row of a current division of the council; ``values`` override any field."""
    return council(**{**DIVISION, **values})


BAD_ROWS = [
    # (the line, why it is rejected)
    ("just,three,fields", NOT_A_RECORD),
    (council(official_identifier="E0714") + ",one too many", NOT_A_RECORD),
    (council(organisation_type="county"), (
        'organisation_type "county" is not one of parl, sp, senedd, nia, gla, '
        "combined-authority, police-area, local-authority"
    )),
    (council(official_identifier=""), "official_identifier is empty"),
    (council(official_identifier="LDS2", organisation_name=" "), "organisation_name is empty"),
    (
        council(official_identifier="LDS9", organisation_name="Leeds\x1eCity"),
        "a field holds a control character (only tab is allowed)",
    ),
    (council(start_date=""), "start_date is empty"),
    (council(start_date="2026-02-30"), 'start_date "2026-02-30" is not a date (YYYY-MM-DD)'),
    (council(start_date="06/12/2026"), 'start_date "06/12/2026" is not a date (YYYY-MM-DD)'),
    (council(end_date="2026-13-01"), 'end_date "2026-13-01" is not a date (YYYY-MM-DD)'),
    (council(start_date="2020-01-01", end_date="2019-12-31"),
     "end_date 2019-12-31 is before start_date 2020-01-01"),
    (division(divisionset_start_date=""), "divisionset_start_date is empty"),
    (division(divisionset_start_date="2022-5-5"),
     'divisionset_start_date "2022-5-5" is not a date (YYYY-MM-DD)'),
    (division(divisionset_end_date="soon"),
     'divisionset_end_date "soon" is not a date (YYYY-MM-DD)'),
    (division(divisionset_end_date="2022-05-04"),
     "divisionset_end_date 2022-05-04 is before divisionset_start_date 2022-05-05"),
    (division(division_type=" "), "division_type is empty"),
    (council(divisionset_start_date="2022-05-05", division_name="Adel"),
     f"divisionset_start_date, division_name {OWN_AREA}"),
    (council(division_type="MTW"), f"division_type {OWN_AREA}"),
    (council(geometry=""), "geometry is empty"),
    (council(geometry="POINT(-1.6 53.8)"), "geometry is a POINT, not a POLYGON or MULTIPOLYGON"),
    (council(geometry="POLYGON((53.8 -1.6,53.8 -1.5,53.9 -1.5,53.8 -1.6))"),
     "geometry is outside Great Britain: are the coordinates lon/lat?"),
    # Not current, but no usable row either: rejected, not skipped.
    (council(official_identifier="OLD", end_date="2001-01-01", geometry="POINT(-1.6 53.8)"),
     "geometry is a POINT, not a POLYGON or MULTIPOLYGON"),
    (council(official_identifier="CR", organisation_name="Leeds\rCity"),
     "line holds a carriage return that does not end it"),
]  # fmt: skip


def bad_export(path: Path) -> tuple[Path, list[str]]:
    """The bad rows between a good row of the council's own area and a good row of its
    division (and a blank line); returns the export and its lines, line 1 the header."""
    lines = [
        HEADER,
        council(),
        *(line for line, _ in BAD_ROWS),
        "",
        division(division_name="Adel & Wharfedale"),
    ]
    return write_lines(path, lines), lines


def test_rejected_rows_stop_the_table_naming_file_line_and_reason(tmp_path, data_root, materialise):
    export, _ = bad_export(tmp_path / "organisations.csv")
    result = materialise(export)
    assert not result.success
    message = failure_messages(result)
    assert f"{len(BAD_ROWS)} rejected row(s), 0 allowed of {len(BAD_ROWS) + 2} rows" in message
    assert f"{export}:3: {NOT_A_RECORD}" in message
    assert f'{export}:5: organisation_type "county" is not one of' in message
    assert not (data_root / ORGANISATION_AREAS).exists()
    assert len(report(data_root)) == len(BAD_ROWS)


def test_rejected_rows_within_the_allowance_are_reported_and_left_out(
    tmp_path, data_root, materialise
):
    export, lines = bad_export(tmp_path / "organisations.csv")
    result = materialise(export, max_rejected_rows=len(BAD_ROWS))
    assert result.success, failure_messages(result)
    assert report(data_root) == [
        {"file": str(export), "line": str(line), "status": "rejected", "reason": reason,
         "text": lines[line - 1]}
        for line, (_, reason) in enumerate(BAD_ROWS, start=3)
    ]  # fmt: skip
    council_key = "local-authority/LDS/1974-04-01"
    last = len(BAD_ROWS) + 4
    assert keys(data_root) == [
        (council_key, council_key, 2),
        (council_key, f"{council_key}/2022-05-05/MTW/adel", last),
    ]
    metadata = materialization(result, ASSET)
    assert (metadata["rows"], metadata["skipped_rows"], metadata["rejected_rows"]) == (
        2,
        0,
        len(BAD_ROWS),
    )
    assert metadata["rejected_rows_allowed"] == len(BAD_ROWS)
    # Every organisation a rejected row names by a known type and an identifier is still in
    # the export (a broken row is no withdrawn organisation): the row of 14 fields' too, the
    # one that ended, and the one whose line holds a carriage return; the unknown type's and
    # the empty identifier's are not.
    assert metadata["organisations_in_export"] == [
        "local-authority/CR",
        "local-authority/E0714",
        "local-authority/LDS",
        "local-authority/LDS2",
        "local-authority/LDS9",
        "local-authority/OLD",
    ]


def test_the_ballots_geometry_rules_and_reasons_apply(tmp_path, data_root, materialise):
    """Every export of areas is read alike: a geometry the ballots export rejects is rejected
    here with the same reason, including those GEOS would raise on."""
    rows = [
        council(official_identifier=f"C{n}", geometry=wkt)
        for n, wkt in enumerate(BROKEN_GEOMETRIES)
    ]
    export = write_export(tmp_path / "organisations.csv", rows)
    result = materialise(export, max_rejected_rows=len(rows))
    assert result.success, failure_messages(result)
    assert {int(row["line"]): row["reason"] for row in report(data_root)} == {
        line: f'geometry is not valid WKT: "{wkt[:40]}..."' if reason == "not WKT" else reason
        for line, (wkt, reason) in enumerate(BROKEN_GEOMETRIES.items(), start=2)
    }
    assert table(data_root).num_rows == 0


@pytest.mark.parametrize(
    ("first_line", "shown"),
    [
        (HEADER.replace("official_identifier", "identifier"), None),
        (HEADER.replace("gss,start_date", "start_date,gss"), None),
        (HEADER.upper(), None),
        (HEADER.replace(",", ", "), None),
        (HEADER.removesuffix(",geometry"), "{line!r} (not a CSV record of 13 fields)"),
        (org_row(**COUNCIL, geometry=GOOD), None),
        (
            HEADER.replace(",gss,", ",gss\r,"),
            "{line!r} (line holds a carriage return that does not end it)",
        ),
    ],
)
def test_any_other_header_refuses_the_export_naming_line_one(
    tmp_path, data_root, materialise, first_line, shown
):
    export = write_lines(tmp_path / "organisations.csv", [first_line, council()])
    message = failure_messages(materialise(export))
    expected = shown.format(line=first_line) if shown else next(csv.reader([first_line]))
    if not shown:
        expected = ",".join(expected)
    assert f"{export}:1: the header must be {HEADER}, not {expected}" in message
    assert not (data_root / ORGANISATION_AREAS).exists()


def test_an_empty_export_has_no_header(tmp_path, materialise):
    export = write_lines(tmp_path / "organisations.csv", [])
    message = failure_messages(materialise(export))
    assert f"{export}:1: the header must be {HEADER}, not (nothing)" in message


def test_an_export_of_a_header_alone_is_an_empty_table(tmp_path, data_root, materialise):
    result = materialise(write_export(tmp_path / "organisations.csv", []))
    assert result.success, failure_messages(result)
    written = table(data_root)
    assert (written.num_rows, written.schema.remove_metadata()) == (0, SCHEMA)
    metadata = materialization(result, ASSET)
    assert (metadata["rows"], metadata["organisations"], metadata["organisations_in_export"]) == (
        0,
        0,
        [],
    )
    assert report(data_root) == []


@pytest.mark.parametrize("on", ["2026-12-6", "20261206", "2026-02-30", "tomorrow", ""])
def test_a_date_that_is_not_yyyy_mm_dd_is_refused(tmp_path, data_root, materialise, on):
    result = materialise(write_export(tmp_path / "organisations.csv", CRAFTED), on=on)
    assert f"on must be a date, YYYY-MM-DD, not {on!r}" in failure_messages(result)
    assert not (data_root / ORGANISATION_AREAS).exists()


def test_without_a_date_the_table_is_taken_as_of_today_in_london(tmp_path, materialise):
    london = ZoneInfo("Europe/London")
    before = datetime.datetime.now(london).date().isoformat()
    result = materialise(write_export(tmp_path / "organisations.csv", CRAFTED), on=None)
    after = datetime.datetime.now(london).date().isoformat()
    assert result.success, failure_messages(result)
    assert materialization(result, ASSET)["organisations_on"] in {before, after}


def test_a_missing_export_is_a_clear_error(tmp_path, materialise):
    result = materialise(tmp_path / "nowhere.csv")
    message = failure_messages(result)
    assert f"organisations export not found: {tmp_path / 'nowhere.csv'}" in message
    result = materialise(tmp_path)
    message = failure_messages(result)
    assert f"organisations export {tmp_path} is a folder; give the CSV file itself" in message
    assert "no organisations export is configured" in failure_messages(materialise(""))


def test_the_export_is_read_from_s3_into_the_same_table(tmp_path, data_root, materialise, s3_env):
    export = write_export(tmp_path / "organisations.csv", CRAFTED)
    local = materialise(export)
    assert local.success, failure_messages(local)
    on_disk = table(data_root).to_pylist()

    bucket = s3_env.new_bucket()
    url = f"s3://{bucket}/organisations/2026-12-06.csv"
    s3_env.client().upload_file(str(export), bucket, "organisations/2026-12-06.csv")
    result = materialise(tmp_path / "unused.csv", source=url)
    assert result.success, failure_messages(result)
    assert table(data_root).to_pylist() == [{**row, "source_file": url} for row in on_disk]
    metadata = materialization(result, ASSET)
    inputs = InputLocations(
        addressbase_drops="", ballots="", boundary_reviews="", organisations=url
    )
    assert metadata["organisations_version"] == inputs.organisations_version()
    assert metadata["organisations_version"].startswith("etag:")
    assert report(data_root)[0]["file"] == url
