"""The organisations export taken from EveryElection's database (EE): which organisations, areas
and divisions, in the organisations CSV's exact format, read by the ``organisation_areas`` asset
as a delivered file is, without a rejected row; the columns it may read; the graph and events
of a deployment whose organisations come from EE; and the layer baked from EE, on either side
of a divisionset's start, holding what the issue's definition gives for the same organisations.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from databaker.assets.organisations import ORGANISATION_AREAS, organisation_areas
from databaker.assets.organisations.assets import HEADER
from databaker.assets.organisations.organisations_export import export_organisations
from databaker.bake import bake
from databaker.definitions import Settings, build_defs
from databaker.resources import DuckDBQueryEngine, LocalLayerStore
from databaker.resources.every_election import EveryElectionDatabase
from databaker.resources.input_locations import InputLocations
from databaker.sources import SAMPLE_BALLOTS, SAMPLE_BOUNDARY_REVIEWS, SAMPLE_DROPS
from databaker_tests.conftest import failure_messages
from databaker_tests.every_election_db import (
    ORGANISATIONS_EXPORT_COLUMNS,
    EveryElectionDb,
    division,
    every_election_fixture,  # noqa: F401
    every_election_server_fixture,  # noqa: F401
)
from databaker_tests.test_current_organisations import (
    LAYER,
    ON,
    ROWS,
    expected,
    read_layer,
    write_drop,
)

AS_OF = date(2027, 4, 10)
D = date


def square(lon: float, lat: float) -> str:
    """A square of 0.01 degrees, its coordinates written as PostGIS writes them back."""
    west, south, east, north = (f"{round(v, 6):g}" for v in (lon, lat, lon + 0.01, lat + 0.01))
    return f"POLYGON(({west} {south},{east} {south},{east} {north},{west} {north},{west} {south}))"


def multipolygon(*polygons: str) -> str:
    return "MULTIPOLYGON(" + ",".join(p.removeprefix("POLYGON") for p in polygons) + ")"


SHIRE_WEST = square(-2.0, 52.0)
SHIRE_EAST = square(-1.99, 52.0)
SHIRE_BEFORE = square(-2.0, 52.01)
NORTH = square(-2.0, 52.02)
SOUTH_WEST = square(-2.0, 52.03)
SOUTH_EAST = square(-1.99, 52.03)
VALE_WEST = square(-1.9, 52.0)
VALE_EAST = square(-1.89, 52.0)
OLD_WARD = square(-1.9, 52.01)
CASTLE = square(-1.9, 52.02)
NAMELESS = square(-1.9, 52.03)
VALE_NORTH = square(-1.9, 52.04)
VALE_SOUTH = square(-1.9, 52.05)
KINGDOM = square(-3.0, 51.0)
SHIRE_AND_VALE = square(-1.95, 52.0)
POLICE = square(-2.1, 52.0)
GONE = square(-2.2, 52.0)
LAST = square(-2.3, 52.0)
UNITARY = square(-2.4, 52.0)
UNITARY_LATER = square(-2.4, 52.01)


def delete_pieces(ee: EveryElectionDb, kind: str, geography_id: int) -> None:
    """EE holds the geography, but has not subdivided it."""
    ee.execute(
        f"DELETE FROM organisations_{kind}geographysubdivided WHERE {kind}_geography_id = %s",
        (geography_id,),
    )


def add_geography(
    ee: EveryElectionDb, organisation_id: int, gss: str, start: date, end: date | None, wkt: str
) -> None:
    """Another geography of an organisation, subdivided into the one piece ``wkt``."""
    ((geography_id,),) = ee.execute(
        "INSERT INTO organisations_organisationgeography (organisation_id, gss, start_date,"
        " end_date, geography) VALUES (%s, %s, %s, %s, ST_Multi(ST_GeomFromText(%s, 4326)))"
        " RETURNING id",
        (organisation_id, gss, start, end, wkt),
    )
    ee.execute(
        "INSERT INTO organisations_organisationgeographysubdivided (organisation_geography_id,"
        " geography) VALUES (%s, ST_GeomFromText(%s, 4326))",
        (geography_id, wkt),
    )


def crafted(ee: EveryElectionDb) -> None:
    """EE's organisations of every kind the export tells apart, as of ``AS_OF``.

    ``SHR``, a county, has its current geography in two pieces (the one before it, with
    another GSS code, ended in 2019) and a divisionset of CED divisions, one in two pieces.
    ``VAL``, a district named only by its common name, has a geography EE has not subdivided;
    its divisionsets: one that ended in 2019, the current one (a ward named with a comma and
    quotes, a ward without an area and one without a slug) and one that starts in May, one of
    whose wards is not subdivided either. ``parl`` has WMC divisions; the police area has no
    name but its identifier; ``GONE`` ended the day before ``AS_OF``, ``LAST`` ends on it;
    ``NEW`` starts in May, with a later geography beside the one it starts with; ``WYCA`` has
    no geography at all.
    """
    shire = ee.organisation(
        "SHR", SHIRE_WEST, SHIRE_EAST, official_name="Shire County Council",
        common_name="Shire", start_date=D(1974, 4, 1), gss="E10000001",
    )  # fmt: skip
    assert shire.geography is not None
    ee.execute(
        "UPDATE organisations_organisationgeography SET start_date = '2019-04-01' WHERE id = %s",
        (shire.geography.id,),
    )
    add_geography(ee, shire.id, "E10000099", D(1974, 4, 1), D(2019, 3, 31), SHIRE_BEFORE)
    ee.divisionset(
        shire,
        division("north", NORTH, name="North", official_identifier="E58000001",
                 division_type="CED"),
        division("south", SOUTH_WEST, SOUTH_EAST, name="South",
                 official_identifier="E58000002", division_type="CED"),
        start_date=D(2017, 5, 4),
    )  # fmt: skip

    vale = ee.organisation(
        "VAL", VALE_WEST, VALE_EAST, common_name="Vale", start_date=D(1974, 4, 1),
        gss="E07000001",
    )  # fmt: skip
    assert vale.geography is not None
    delete_pieces(ee, "organisation", vale.geography.id)
    ee.divisionset(
        vale, division("old-ward", OLD_WARD), start_date=D(2003, 5, 1), end_date=D(2019, 5, 1)
    )
    ee.divisionset(
        vale,
        division("castle", CASTLE, name='Castle & Vale, "the Castle"',
                 official_identifier="gss:E05000001"),
        division("abbey", name="Abbey", official_identifier="gss:E05000002"),
        division("", NAMELESS, name="Nameless", official_identifier="gss:E05000003"),
        start_date=D(2019, 5, 2), end_date=D(2027, 5, 5),
    )  # fmt: skip
    new_wards = ee.divisionset(
        vale,
        division("vale-north", VALE_NORTH, name="Vale North", official_identifier=""),
        division("vale-south", VALE_SOUTH, name="Vale South",
                 official_identifier="unit_id:41"),
        start_date=D(2027, 5, 6),
    )  # fmt: skip
    north_area = new_wards.divisions["vale-north"].geography
    assert north_area is not None
    delete_pieces(ee, "division", north_area.id)

    parl = ee.organisation(
        "parl", KINGDOM, organisation_type="parl", official_name="House of Commons",
        start_date=D(1801, 1, 1),
    )  # fmt: skip
    ee.divisionset(
        parl,
        division("shire-and-vale", SHIRE_AND_VALE, name="Shire and Vale",
                 official_identifier="gss:E14000001", division_type="WMC"),
        start_date=D(2024, 7, 4),
    )  # fmt: skip
    ee.organisation("shire", POLICE, organisation_type="police-area", start_date=D(2012, 11, 15))
    gone = ee.organisation("GONE", GONE, start_date=D(1974, 4, 1), end_date=AS_OF - timedelta(1))
    ee.divisionset(gone, division("gone-ward", GONE), start_date=D(2015, 5, 7))
    ee.organisation(
        "LAST", LAST, official_name="Last Borough", start_date=D(1974, 4, 1), end_date=AS_OF
    )
    unitary = ee.organisation(
        "NEW", UNITARY, official_name="New Unitary", start_date=D(2027, 5, 6), gss="E06000099"
    )
    ee.execute(
        "UPDATE organisations_organisationgeography SET end_date = '2030-03-31'"
        " WHERE organisation_id = %s",
        (unitary.id,),
    )
    add_geography(ee, unitary.id, "E06000100", D(2030, 4, 1), None, UNITARY_LATER)
    ee.organisation(
        "WYCA", organisation_type="combined-authority", common_name="West Yorkshire",
        start_date=D(2014, 4, 1),
    )  # fmt: skip


SHIRE = ["local-authority", "SHR", "Shire County Council", "E10000001", "1974-04-01", ""]
VALE = ["local-authority", "VAL", "Vale", "E07000001", "1974-04-01", ""]
PARL = ["parl", "parl", "House of Commons", "", "1801-01-01", ""]
OWN_AREA = ["", "", "", "", "", ""]
CURRENT_WARDS = ["2019-05-02", "2027-05-05"]
NEW_WARDS = ["2027-05-06", ""]
EXPECTED_ROWS = [
    ["local-authority", "LAST", "Last Borough", "", "1974-04-01", AS_OF.isoformat(),
     *OWN_AREA, LAST],
    ["local-authority", "NEW", "New Unitary", "E06000099", "2027-05-06", "", *OWN_AREA, UNITARY],
    [*SHIRE, *OWN_AREA, SHIRE_WEST],
    [*SHIRE, *OWN_AREA, SHIRE_EAST],
    [*SHIRE, "2017-05-04", "", "CED", "north", "North", "E58000001", NORTH],
    [*SHIRE, "2017-05-04", "", "CED", "south", "South", "E58000002", SOUTH_WEST],
    [*SHIRE, "2017-05-04", "", "CED", "south", "South", "E58000002", SOUTH_EAST],
    [*VALE, *OWN_AREA, multipolygon(VALE_WEST, VALE_EAST)],
    [*VALE, *CURRENT_WARDS, "DIW", "castle", 'Castle & Vale, "the Castle"', "gss:E05000001",
     CASTLE],
    [*VALE, *NEW_WARDS, "DIW", "vale-north", "Vale North", "", multipolygon(VALE_NORTH)],
    [*VALE, *NEW_WARDS, "DIW", "vale-south", "Vale South", "unit_id:41", VALE_SOUTH],
    [*PARL, *OWN_AREA, KINGDOM],
    [*PARL, "2024-07-04", "", "WMC", "shire-and-vale", "Shire and Vale", "gss:E14000001",
     SHIRE_AND_VALE],
    ["police-area", "shire", "shire", "", "2012-11-15", "", *OWN_AREA, POLICE],
]  # fmt: skip
"""The export's rows, in its order: by type and identifier, each organisation's own area
first, then its divisionsets by start date, their divisions by type and slug."""


def as_csv(rows: Sequence[Sequence[str]]) -> str:
    """RFC 4180 text, as Python's csv module writes it: a field quoted only when it must be."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return text.getvalue()


def export(url: str, as_of: date = AS_OF) -> tuple[bytes, dict[str, int]]:
    out = io.BytesIO()
    with EveryElectionDatabase(url).snapshot() as snapshot:
        counts = export_organisations(snapshot, out, as_of=as_of)
    return out.getvalue(), counts


def test_the_export_holds_each_piece_of_every_organisation_not_ended_in_the_csv_format(
    every_election,
):
    crafted(every_election)
    exported, counts = export(every_election.url)
    assert exported.decode() == as_csv(EXPECTED_ROWS)
    assert counts == {
        "organisations": 6,
        "divisionsets": 4,
        "divisions": 6,
        "rows": 14,
        "organisation_rows": 7,
        "division_rows": 7,
        "whole_areas": 2,
        "organisations_without_area": 1,
        "organisations_with_divisions_as_area": 0,
        "divisions_without_area": 1,
        "divisions_without_slug": 1,
    }


def save_again(ee: EveryElectionDb, table: str, rows: str) -> None:
    """Delete the ``rows`` of ``table`` and insert them anew: they move to the table's end."""
    ee.execute(f"CREATE TEMP TABLE saved AS SELECT * FROM {table} WHERE {rows}")
    ee.execute(f"DELETE FROM {table} WHERE {rows}")
    ee.execute(f"INSERT INTO {table} SELECT * FROM saved")
    ee.execute("DROP TABLE saved")


def test_an_unchanged_database_exports_the_same_bytes_and_subdividing_an_area_shows(
    every_election,
):
    crafted(every_election)
    first, _ = export(every_election.url)
    for kind in ("organisation", "division"):
        table = f"organisations_{kind}geographysubdivided"
        save_again(every_election, table, f"id IN (SELECT min(id) FROM {table})")
    assert export(every_election.url)[0] == first

    # EE subdivides the Vale's area: its one row becomes its pieces.
    every_election.execute(
        "INSERT INTO organisations_organisationgeographysubdivided (organisation_geography_id,"
        " geography) SELECT g.id, ST_GeomFromText(piece, 4326)"
        " FROM organisations_organisationgeography AS g"
        " JOIN organisations_organisation AS o ON o.id = g.organisation_id,"
        " unnest(%s::text[]) AS piece WHERE o.official_identifier = 'VAL'",
        ([VALE_WEST, VALE_EAST],),
    )
    subdivided, counts = export(every_election.url)
    vale = EXPECTED_ROWS.index([*VALE, *OWN_AREA, multipolygon(VALE_WEST, VALE_EAST)])
    pieces = [[*VALE, *OWN_AREA, VALE_WEST], [*VALE, *OWN_AREA, VALE_EAST]]
    assert subdivided.decode() == as_csv(EXPECTED_ROWS[:vale] + pieces + EXPECTED_ROWS[vale + 1 :])
    assert (counts["rows"], counts["whole_areas"]) == (15, 1)


def test_an_export_taken_as_of_another_day_holds_what_is_not_ended_then(every_election):
    crafted(every_election)
    rows = list(csv.reader(io.StringIO(export(every_election.url, D(2030, 4, 1))[0].decode())))
    kept = {(row[1], row[6], row[9]) for row in rows[1:]}
    # GONE, LAST and the Vale's current wards have ended; NEW has its later geography.
    assert {identifier for identifier, _, _ in kept} == {"NEW", "SHR", "VAL", "parl", "shire"}
    assert ("VAL", "2019-05-02", "castle") not in kept
    assert ("VAL", "2027-05-06", "vale-north") in kept
    (unitary,) = [row for row in rows if row[1] == "NEW"]
    assert (unitary[3], unitary[12]) == ("E06000100", UNITARY_LATER)


def test_an_organisation_without_an_area_of_its_own_takes_its_current_divisions_areas(
    every_election,
):
    """EE's boundary imports find areas by GSS code, which Parliament and the Scottish
    Parliament lack: their ballots take their constituencies' areas. Such an organisation's
    area is the pieces of the divisions of its divisionset current on the day (a division
    without an area adds none), exported as its own area's rows, so an address in one of its
    constituencies is in it."""
    ee = every_election
    first, second, later = square(-4.3, 55.8), square(-4.29, 55.8), square(-4.3, 55.81)
    sp = ee.organisation(
        "sp", organisation_type="sp", official_name="Scottish Parliament",
        start_date=D(1999, 5, 6),
    )  # fmt: skip
    ee.divisionset(
        sp,
        division("glasgow-a", first, second, name="Glasgow A", official_identifier="S1",
                 division_type="SPC"),
        division("glasgow-b", name="Glasgow B", official_identifier="S2", division_type="SPC"),
        start_date=D(2011, 5, 5), end_date=D(2027, 5, 5),
    )  # fmt: skip
    ee.divisionset(
        sp,
        division("glasgow-c", later, name="Glasgow C", official_identifier="S3",
                 division_type="SPC"),
        start_date=D(2027, 5, 6),
    )  # fmt: skip
    owner = ["sp", "sp", "Scottish Parliament", "", "1999-05-06", ""]
    old = [*owner, "2011-05-05", "2027-05-05", "SPC", "glasgow-a", "Glasgow A", "S1"]
    new = [*owner, "2027-05-06", "", "SPC", "glasgow-c", "Glasgow C", "S3"]

    exported, counts = export(ee.url, AS_OF)
    assert exported.decode() == as_csv(
        [[*owner, *OWN_AREA, first], [*owner, *OWN_AREA, second],
         [*old, first], [*old, second], [*new, later]]
    )  # fmt: skip
    assert counts["organisations_with_divisions_as_area"] == 1
    assert counts["organisations_without_area"] == 0
    exported, _ = export(ee.url, D(2027, 6, 1))
    assert exported.decode() == as_csv([[*owner, *OWN_AREA, later], [*new, later]])


def organisation_areas_read(export_file: Path, data_root: Path, on: date) -> dg.MaterializeResult:
    result = dg.materialize(
        [organisation_areas],
        resources={
            "reader": DuckDBQueryEngine(),
            "store": LocalLayerStore(root=str(data_root)),
            "inputs": InputLocations(
                addressbase_drops=str(SAMPLE_DROPS),
                ballots=str(SAMPLE_BALLOTS),
                boundary_reviews=str(SAMPLE_BOUNDARY_REVIEWS),
                organisations=str(export_file),
            ),
        },
        run_config={
            "ops": {"organisation_areas": {"config": {"max_rejected_rows": 0, "on": str(on)}}}
        },
        raise_on_error=False,
    )
    assert result.success, failure_messages(result)
    return result


def test_the_organisation_areas_asset_reads_the_export_without_rejecting_a_row(
    every_election, tmp_path
):
    crafted(every_election)
    path = tmp_path / "organisations.csv"
    path.write_bytes(export(every_election.url)[0])

    result = organisation_areas_read(path, tmp_path / "data", AS_OF)

    (event,) = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["rejected_rows"] == 0
    # Current on AS_OF: all but NEW and the Vale's wards of May (3 rows skipped).
    assert (metadata["organisations"], metadata["divisions"]) == (5, 4)
    assert (metadata["rows"], metadata["skipped_rows"]) == (11, 3)
    table = pq.read_table(tmp_path / "data" / ORGANISATION_AREAS).to_pylist()
    pieces: dict[str, int] = defaultdict(int)
    for row in table:
        pieces[row["area_key"]] += 1
    assert pieces == {
        "local-authority/LAST/1974-04-01": 1,
        "local-authority/SHR/1974-04-01": 2,
        "local-authority/SHR/1974-04-01/2017-05-04/CED/north": 1,
        "local-authority/SHR/1974-04-01/2017-05-04/CED/south": 2,
        "local-authority/VAL/1974-04-01": 1,
        "local-authority/VAL/1974-04-01/2019-05-02/DIW/castle": 1,
        "parl/parl/1801-01-01": 1,
        "parl/parl/1801-01-01/2024-07-04/WMC/shire-and-vale": 1,
        "police-area/shire/2012-11-15": 1,
    }


def test_the_export_reads_only_the_columns_the_fixture_grants_it(every_election):
    crafted(every_election)
    only_granted = every_election.reader(ORGANISATIONS_EXPORT_COLUMNS)
    assert export(only_granted)[0] == export(every_election.url)[0]


def test_organisations_from_every_election_are_exported_before_they_are_read():
    url = "postgresql://baker@127.0.0.1/every_election"
    queue = "https://sqs.eu-west-2.amazonaws.com/123456789012/EveryElectionEvents.fifo"
    from_file = build_defs(Settings()).resolve_asset_graph()
    defs = build_defs(Settings(organisations=url, events_queue=queue))

    assert dg.AssetKey("organisations_export") not in from_file.get_all_asset_keys()
    reading = defs.get_assets_def(dg.AssetKey("organisation_areas"))
    assert dg.AssetKey("organisations_export") in reading.keys_by_input_name.values()
    sensor = defs.resolve_sensor_def("every_election_events")
    assert {target.job_name for target in sensor.targets} == {"current_organisations_from_export"}


def as_every_election_holds_them(rows: list[list[str]]) -> list[list[str]]:
    """The crafted map's rows as EE can hold them: a division's official identifier is unique
    in its divisionset, so an empty one is EE's temporary ``unit_id:`` instead."""
    return [
        [*row[:11], row[11] or (f"unit_id:{row[9]}" if row[9] else ""), row[12]] for row in rows
    ]


def load(ee: EveryElectionDb, rows: list[list[str]]) -> None:
    """The export's rows into EE's tables: an organisation per type, identifier and start
    date, with one geography of its own area's pieces (subdivided into exactly them, but one
    given as a MULTIPOLYGON, which EE holds whole), and its divisions in a divisionset per
    pair of dates."""
    organisations: dict[tuple[str, ...], list[list[str]]] = defaultdict(list)
    for row in rows:
        organisations[tuple(row[:6])].append(row)
    for (kind, identifier, name, gss, start, end), own in organisations.items():
        made = ee.organisation(
            identifier, organisation_type=kind, official_name=name,
            start_date=D.fromisoformat(start), end_date=D.fromisoformat(end) if end else None,
        )  # fmt: skip
        area = [row[12].removeprefix("SRID=4326;") for row in own if not row[9]]
        ((geography,),) = ee.execute(
            "INSERT INTO organisations_organisationgeography (organisation_id, gss, start_date,"
            " end_date, geography) SELECT %s, %s, %s, %s, ST_Multi(ST_CollectionExtract("
            " ST_Collect(ST_GeomFromText(piece, 4326)), 3)) FROM unnest(%s::text[]) AS piece"
            " RETURNING id",
            (made.id, gss, start, end or None, area),
        )
        if all(piece.startswith("POLYGON") for piece in area):
            for piece in area:
                ee.execute(
                    "INSERT INTO organisations_organisationgeographysubdivided"
                    " (organisation_geography_id, geography)"
                    " VALUES (%s, ST_GeomFromText(%s, 4326))",
                    (geography, piece),
                )
        sets: dict[tuple[str, str], list[list[str]]] = defaultdict(list)
        for row in own:
            if row[9]:
                sets[row[6], row[7]].append(row)
        for (set_start, set_end), divisions in sets.items():
            ee.divisionset(
                made,
                *(division(r[9], r[12], name=r[10], official_identifier=r[11],
                           division_type=r[8]) for r in divisions),
                start_date=D.fromisoformat(set_start),
                end_date=D.fromisoformat(set_end) if set_end else None,
            )  # fmt: skip


def test_the_layer_baked_from_every_election_is_what_its_organisations_give(
    every_election, tmp_path
):
    rows = as_every_election_holds_them(ROWS)
    load(every_election, rows)
    drop = write_drop(tmp_path / "drop")

    for day in (ON, ON - timedelta(days=1)):
        root = tmp_path / day.isoformat()
        baked = bake(
            layer=LAYER,
            addressbase=str(drop),
            organisations=every_election.url,
            on=day.isoformat(),
            settings=Settings(data_root=str(root)),
        )
        assert baked.metadata["organisations_export"]["as_of"] == day.isoformat()
        assert baked.metadata["organisation_areas"]["rejected_rows"] == 0
        assert read_layer(root) == {
            uprn: elements for uprn, elements in expected(day, rows).items() if uprn != 107
        }
