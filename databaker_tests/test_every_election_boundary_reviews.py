"""The boundary-reviews export taken from EveryElection's database (EE): the selected reviews'
old and new divisions, a row per piece of a division's area, in the part-file layout the
export's reader takes; read by the test role that may SELECT only the columns the export needs.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
import shapely

from databaker.assets.boundary_reviews import BOUNDARY_REVIEW_DIVISIONS, boundary_review_divisions
from databaker.assets.boundary_reviews.from_every_election import (
    PMTILES_BASE_URL,
    write_boundary_reviews_export,
)
from databaker.bake import bake
from databaker.definitions import Settings
from databaker.layers.exported import ExportFiles, ExportRequest
from databaker.resources import DuckDBQueryEngine, LocalLayerStore
from databaker.resources.every_election import EveryElectionDatabase
from databaker.resources.input_locations import InputLocations
from databaker.sources import (
    SAMPLE_ADDRESSBASE,
    SAMPLE_BALLOTS,
    SAMPLE_BOUNDARY_REVIEWS,
    SAMPLE_DROPS,
)
from databaker_tests.conftest import failure_messages
from databaker_tests.every_election_db import (
    EveryElectionDb,
    division,
    every_election_fixture,  # noqa: F401
    every_election_server_fixture,  # noqa: F401
)

AS_OF = datetime.date(2026, 3, 1)
D = datetime.date

ABBEY_WEST = "POLYGON((-1.6 53.8,-1.59 53.8,-1.59 53.81,-1.6 53.81,-1.6 53.8))"
ABBEY_EAST = "POLYGON((-1.59 53.8,-1.58 53.8,-1.58 53.81,-1.59 53.81,-1.59 53.8))"
CASTLE = "POLYGON((-1.6 53.81,-1.58 53.81,-1.58 53.82,-1.6 53.82,-1.6 53.81))"
VALE = "POLYGON((-1.6 53.81,-1.57 53.81,-1.57 53.83,-1.6 53.83,-1.6 53.81))"
PARISH = "POLYGON((-1.6 53.8,-1.57 53.8,-1.57 53.83,-1.6 53.8))"
BEX_CENTRAL = "POLYGON((0.1 51.4,0.12 51.4,0.12 51.42,0.1 51.42,0.1 51.4))"
BEX_EAST = "POLYGON((0.12 51.4,0.14 51.4,0.14 51.42,0.12 51.42,0.12 51.4))"
BEX_LATER = "POLYGON((0.1 51.4,0.14 51.4,0.14 51.43,0.1 51.43,0.1 51.4))"
COWLEY = "POLYGON((-1.2 51.7,-1.18 51.7,-1.18 51.72,-1.2 51.72,-1.2 51.7))"
DUNMORE = "POLYGON((-3.9 56.1,-3.88 56.1,-3.88 56.12,-3.9 56.12,-3.9 56.1))"
HASH = "0123456789abcdef0123456789abcdef"


def set_timestamps(db: EveryElectionDb, review: int, created: str, modified: str) -> None:
    db.execute(
        "UPDATE organisations_organisationboundaryreview SET created = %s, modified = %s"
        " WHERE id = %s",
        (created, modified, review),
    )


def crafted(db: EveryElectionDb) -> dict[str, int]:
    """Four reviews of four councils, by name.

    ``ashby`` (CURRENT): its old divisionset is the one that ended last, not the one before;
    the new set has a ward in two pieces, a type (CPC) the old set has not, a ward without an
    area and a division whose type cannot name a folder; the council's GSS code is its latest
    geography's. ``bexmoor`` (COMPLETED): its new divisionset has since been replaced twice;
    its old one is the set that ended before the new one began. ``cowley`` (CURRENT) has no
    new divisionset yet, ``dunmore`` (CURRENT) no old one.
    """
    ashby = db.organisation(
        "ASH", CASTLE, slug="ashby", common_name="Ashby",
        official_name="Ashby District Council", gss="E07000001",
    )  # fmt: skip
    db.execute(
        "INSERT INTO organisations_organisationgeography (organisation_id, start_date, gss)"
        " VALUES (%s, '2021-04-01', 'E07000901')",
        (ashby.id,),
    )
    db.divisionset(
        ashby, division("abbey", ABBEY_WEST, division_type="UTW"),
        start_date=D(2003, 5, 1), end_date=D(2015, 5, 6), pmtiles_md5_hash=HASH,
    )  # fmt: skip
    old_ashby = db.divisionset(
        ashby,
        division("castle", CASTLE, name="Castle", official_identifier="gss:E05000002",
                 division_type="UTW"),
        division("abbey", ABBEY_WEST, ABBEY_EAST, name="Abbey", official_identifier="gss:E05000001",
                 division_type="UTW"),
        start_date=D(2015, 5, 7), end_date=D(2027, 5, 5),
    )  # fmt: skip
    new_ashby = db.divisionset(
        ashby,
        division("abbey", ABBEY_WEST, ABBEY_EAST, name="Abbey", official_identifier="gss:E05010001",
                 division_type="UTW"),
        division("castle-and-vale", VALE, name="Castle & Vale", official_identifier="",
                 division_type="UTW"),
        division("moorside", name="Moorside", division_type="UTW"),
        division("ashby-parish", PARISH, name="Ashby", official_identifier="gss:E04000001",
                 division_type="CPC"),
        division("typeless", VALE, division_type=""),
        start_date=D(2027, 5, 6), pmtiles_md5_hash=HASH,
    )  # fmt: skip
    assert old_ashby.id < new_ashby.id
    bexmoor = db.organisation(
        "BEX", BEX_LATER, slug="bexmoor", common_name="Bexmoor",
        official_name="London Borough of Bexmoor", gss="E09000004",
    )  # fmt: skip
    old_bexmoor = db.divisionset(bexmoor, division("bex-central", BEX_CENTRAL, division_type="LBW"),
                                 start_date=D(2002, 5, 2), end_date=D(2017, 5, 3))  # fmt: skip
    new_bexmoor = db.divisionset(
        bexmoor,
        division("bex-central", BEX_CENTRAL, name="Bexmoor Central",
                 official_identifier="gss:E05011001", division_type="LBW"),
        division("bex-east", BEX_EAST, name="Bexmoor East", official_identifier="gss:E05011002",
                 division_type="LBW"),
        start_date=D(2017, 5, 4), end_date=D(2022, 5, 4), pmtiles_md5_hash=HASH,
    )  # fmt: skip
    db.divisionset(bexmoor, division("bex-all", BEX_LATER, division_type="LBW"),
                   start_date=D(2022, 5, 5), end_date=D(2026, 5, 6))  # fmt: skip
    db.divisionset(bexmoor, start_date=D(2026, 5, 7))
    cowley = db.organisation("COW", COWLEY, slug="cowley", common_name="Cowley")
    old_cowley = db.divisionset(
        cowley,
        division("cowley-town", COWLEY, name="Cowley Town", official_identifier="gss:E05012001",
                 division_type="UTW"),
        start_date=D(2003, 5, 1), end_date=D(2019, 5, 1),
    )  # fmt: skip
    dunmore = db.organisation("DUN", DUNMORE, slug="dunmore", common_name="Dunmore")
    new_dunmore = db.divisionset(
        dunmore,
        division("dunmore-north", DUNMORE, name="Dunmore North",
                 official_identifier="unit_id:41", division_type="UTW"),
        start_date=D(2027, 5, 6),
    )  # fmt: skip
    reviews = {
        "ashby": db.boundary_review(
            ashby, "ashby", divisionset=new_ashby, latest_event="Final recommendations",
            consultation_url="https://www.lgbce.org.uk/all-reviews/ashby",
        ),
        "bexmoor": db.boundary_review(
            bexmoor, "bexmoor", status="COMPLETED", divisionset=new_bexmoor, latest_event="Made",
            legislation_title='The Bexmoor (Electoral Changes) Order 2017, "as made"',
            effective_date=D(2017, 5, 4),
        ),
        "cowley": db.boundary_review(cowley, "cowley"),
        "dunmore": db.boundary_review(dunmore, "dunmore", divisionset=new_dunmore),
    }  # fmt: skip
    set_timestamps(db, reviews["ashby"], "2024-07-15 01:14:17.175616+00", "2024-08-22 17:06:39+01")
    set_timestamps(db, reviews["bexmoor"], "2015-01-02 10:00:00.5+00", "2017-06-01 09:00:00+00")
    set_timestamps(db, reviews["cowley"], "2025-01-01 00:00:00+00", "2025-01-01 00:00:00+00")
    set_timestamps(db, reviews["dunmore"], "2025-02-01 00:00:00+00", "2025-02-01 00:00:00+00")
    return reviews | {
        "old_ashby": old_ashby.id, "new_ashby": new_ashby.id, "old_bexmoor": old_bexmoor.id,
        "new_bexmoor": new_bexmoor.id, "old_cowley": old_cowley.id, "new_dunmore": new_dunmore.id,
    }  # fmt: skip


def exported(
    db: EveryElectionDb,
    tmp_path: Path,
    *,
    ids: Sequence[int] = (),
    statuses: Sequence[str] | None = None,
) -> tuple[dict[str, int], dict[str, list[list[str]]], dict[str, bytes]]:
    """Export as the deployment would, with that selection: the counts, and each written file's
    rows and bytes by its path below the export."""
    inputs = InputLocations(
        addressbase_drops=str(SAMPLE_DROPS),
        ballots=str(SAMPLE_BALLOTS),
        boundary_reviews=db.url,
        boundary_review_ids=list(ids),
        **({} if statuses is None else {"boundary_review_statuses": list(statuses)}),
    )
    store = LocalLayerStore(root=str(tmp_path / "root"))
    files = ExportFiles(store, "export/")
    with EveryElectionDatabase(db.url).snapshot() as snapshot:
        counts = dict(write_boundary_reviews_export(snapshot, files, ExportRequest(AS_OF, inputs)))
    folder = tmp_path / "root" / "export"
    raw = {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    assert set(raw) == set(files.written)
    rows = {name: list(csv.reader(io.StringIO(data.decode()))) for name, data in raw.items()}
    return counts, rows, raw


def part(review: int, generation: str, division_type: str) -> str:
    return (
        f"boundary_review_id={review}/divisionset_generation={generation}/"
        f"division_type={division_type}/part-00000.csv"
    )


def pmtiles(organisation: str, divisionset: int) -> str:
    return f"{PMTILES_BASE_URL}pmtiles-store/{organisation}_{divisionset}_{HASH}.pmtiles"


def test_the_current_reviews_old_and_new_divisions_a_row_per_piece(every_election, tmp_path):
    ids = crafted(every_election)
    counts, rows, raw = exported(every_election, tmp_path)

    ashby = [
        "ashby", "CURRENT", "Final recommendations", "https://www.lgbce.org.uk/all-reviews/ashby",
        "", "", "2024-07-15T01:14:17.175616+00:00", "2024-08-22T16:06:39+00:00",
        "Ashby", "Ashby District Council", "E07000901",
    ]  # fmt: skip
    review, old, new = ids["ashby"], str(ids["old_ashby"]), str(ids["new_ashby"])
    new_tiles = pmtiles("ashby", ids["new_ashby"])
    cowley = ["cowley", "CURRENT", "", "", "", "", "2025-01-01T00:00:00+00:00",
              "2025-01-01T00:00:00+00:00", "Cowley", "", ""]  # fmt: skip
    dunmore = ["dunmore", "CURRENT", "", "", "", "", "2025-02-01T00:00:00+00:00",
               "2025-02-01T00:00:00+00:00", "Dunmore", "", ""]  # fmt: skip
    assert rows == {
        part(review, "new", "CPC"): [
            [*ashby, new, new_tiles, "ashby-parish", "Ashby", "gss:E04000001", PARISH,
             str(review), "new", "CPC"],
        ],
        part(review, "new", "UTW"): [
            [*ashby, new, new_tiles, "abbey", "Abbey", "gss:E05010001", ABBEY_WEST,
             str(review), "new", "UTW"],
            [*ashby, new, new_tiles, "abbey", "Abbey", "gss:E05010001", ABBEY_EAST,
             str(review), "new", "UTW"],
            [*ashby, new, new_tiles, "castle-and-vale", "Castle & Vale", "", VALE,
             str(review), "new", "UTW"],
        ],
        part(review, "old", "UTW"): [
            [*ashby, old, "", "abbey", "Abbey", "gss:E05000001", ABBEY_WEST,
             str(review), "old", "UTW"],
            [*ashby, old, "", "abbey", "Abbey", "gss:E05000001", ABBEY_EAST,
             str(review), "old", "UTW"],
            [*ashby, old, "", "castle", "Castle", "gss:E05000002", CASTLE,
             str(review), "old", "UTW"],
        ],
        part(ids["cowley"], "old", "UTW"): [
            [*cowley, str(ids["old_cowley"]), "", "cowley-town", "Cowley Town", "gss:E05012001",
             COWLEY, str(ids["cowley"]), "old", "UTW"],
        ],
        part(ids["dunmore"], "new", "UTW"): [
            [*dunmore, str(ids["new_dunmore"]), "", "dunmore-north", "Dunmore North",
             "unit_id:41", DUNMORE, str(ids["dunmore"]), "new", "UTW"],
        ],
    }  # fmt: skip
    assert counts == {
        "boundary_reviews": 3,
        "boundary_reviews_without_new_divisionset": 1,
        "boundary_reviews_without_old_divisionset": 1,
        "divisions": 7,
        "division_pieces": 9,
        "divisions_without_area": 1,
        "divisions_of_a_type_no_folder_can_name": 1,
    }
    # Empty fields are bare, as the export's other writers leave them; LF line ends.
    assert raw[part(ids["cowley"], "old", "UTW")].startswith(
        b"cowley,CURRENT,,,,,2025-01-01T00:00:00+00:00,"
    )
    assert raw[part(review, "new", "CPC")].endswith(b",new,CPC\n")


def test_reviews_named_by_id_whatever_their_status(every_election, tmp_path):
    ids = crafted(every_election)
    counts, rows, raw = exported(every_election, tmp_path, ids=[ids["bexmoor"]])

    bexmoor = [
        "bexmoor", "COMPLETED", "Made", "", 'The Bexmoor (Electoral Changes) Order 2017, "as made"',
        "2017-05-04", "2015-01-02T10:00:00.500000+00:00", "2017-06-01T09:00:00+00:00",
        "Bexmoor", "London Borough of Bexmoor", "E09000004",
    ]  # fmt: skip
    review, new = ids["bexmoor"], str(ids["new_bexmoor"])
    old = str(ids["old_bexmoor"])
    tiles = pmtiles("bexmoor", ids["new_bexmoor"])
    assert rows == {
        part(review, "new", "LBW"): [
            [*bexmoor, new, tiles, "bex-central", "Bexmoor Central", "gss:E05011001",
             BEX_CENTRAL, str(review), "new", "LBW"],
            [*bexmoor, new, tiles, "bex-east", "Bexmoor East", "gss:E05011002", BEX_EAST,
             str(review), "new", "LBW"],
        ],
        part(review, "old", "LBW"): [
            [*bexmoor, old, "", "bex-central", "Bex Central", "gss:bex-central", BEX_CENTRAL,
             str(review), "old", "LBW"],
        ],
    }  # fmt: skip
    assert (
        b',"The Bexmoor (Electoral Changes) Order 2017, ""as made""",'
        in raw[part(review, "old", "LBW")]
    )
    assert counts["boundary_reviews"] == 1
    assert counts["boundary_reviews_without_old_divisionset"] == 0

    counts, rows, _ = exported(every_election, tmp_path / "completed", statuses=["COMPLETED"])
    assert sorted(rows) == [part(review, "new", "LBW"), part(review, "old", "LBW")]
    counts, rows, _ = exported(every_election, tmp_path / "none", statuses=[])
    assert (counts["boundary_reviews"], rows) == (0, {})


def test_a_review_id_that_ee_does_not_have_stops_the_export(every_election, tmp_path):
    ids = crafted(every_election)
    unknown = max(ids.values()) + 1000
    with pytest.raises(dg.Failure, match=rf"has no boundary review {unknown}, which "):
        exported(every_election, tmp_path, ids=[ids["ashby"], unknown])


def sample_reviews() -> dict[int, dict[tuple[str, str, str], list[list[str]]]]:
    """The bundled export's rows, by review, then by (generation, type, division slug)."""
    reviews: dict[int, dict[tuple[str, str, str], list[list[str]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for path in sorted(SAMPLE_BOUNDARY_REVIEWS.rglob("*.csv")):
        for row in csv.reader(path.read_text().splitlines()):
            reviews[int(row[17])][row[18], row[19], row[13]].append(row)
    return reviews


def polygons(rows: list[list[str]]) -> list[str]:
    """The polygons of the rows' areas, a MULTIPOLYGON split into its own."""
    shapes = shapely.get_parts(shapely.from_wkt([row[16] for row in rows]))
    return list(shapely.to_wkt(shapes, rounding_precision=-1))


def load_sample(db: EveryElectionDb) -> list[int]:
    """The bundled export's reviews as EE holds them: each council with an old divisionset
    that ended the day before its review's new one began, every division with its area's
    pieces (a MULTIPOLYGON row split into its polygons, as EE subdivides areas into polygons),
    the review under its own ID with its own timestamps."""
    for review_id, divisions in sample_reviews().items():
        first = next(iter(divisions.values()))[0]
        organisation = db.organisation(
            first[10], "POLYGON((0 0,1 0,1 1,0 0))", slug=first[0], common_name=first[8],
            official_name=first[9], gss=first[10],
        )  # fmt: skip
        sets = {}
        for generation, dates in (
            ("old", (D(2004, 5, 6), D(2027, 5, 5))),
            ("new", (D(2027, 5, 6), None)),
        ):
            made = [
                division(
                    slug,
                    *polygons(rows),
                    name=rows[0][14],
                    official_identifier=rows[0][15],
                    division_type=kind,
                )
                for (of, kind, slug), rows in divisions.items()
                if of == generation
            ]
            sets[generation] = db.divisionset(
                organisation, *made, start_date=dates[0], end_date=dates[1],
                pmtiles_md5_hash=HASH,
            )  # fmt: skip
        review = db.boundary_review(
            organisation, first[0], status=first[1], divisionset=sets["new"],
            latest_event=first[2], consultation_url=first[3], legislation_title=first[4],
            effective_date=D.fromisoformat(first[5]) if first[5] else None,
        )  # fmt: skip
        db.execute(
            "UPDATE organisations_organisationboundaryreview SET id = %s, created = %s,"
            " modified = %s WHERE id = %s",
            (review_id, first[6], first[7], review),
        )
    return sorted(sample_reviews())


def divisions_read(data_root: Path) -> dict[str, tuple[dict[str, str], int, float]]:
    """Each division the boundary-reviews table holds: its review's and its own fields but
    those of the divisionset (EE has one divisionset per review and generation, the sample
    one per division type), its pieces and the area they cover."""
    table = pq.read_table(data_root / BOUNDARY_REVIEW_DIVISIONS).to_pylist()
    kept = ("slug", "status", "latest_event", "consultation_url", "legislation_title",
            "effective_date", "review_created", "review_modified", "organisation_name",
            "organisation_official_name", "organisation_gss", "division_slug", "division_name",
            "division_official_identifier")  # fmt: skip
    pieces = defaultdict(list)
    fields = {}
    for row in table:
        pieces[row["division_key"]].append(shapely.from_wkb(row["geometry"]))
        fields[row["division_key"]] = {name: row[name] for name in kept}
    return {
        key: (fields[key], len(shapes), shapely.union_all(shapes).area)
        for key, shapes in pieces.items()
    }


def divisions_table(export: Path, data_root: Path) -> dict[str, tuple[dict[str, str], int, float]]:
    """The boundary-reviews table materialised from the export folder ``export``."""
    result = dg.materialize(
        [boundary_review_divisions],
        resources={
            "reader": DuckDBQueryEngine(),
            "store": LocalLayerStore(root=str(data_root)),
            "inputs": InputLocations(
                addressbase_drops=str(SAMPLE_DROPS),
                ballots=str(SAMPLE_BALLOTS),
                boundary_reviews=str(export),
            ),
        },
        run_config={"ops": {"boundary_review_divisions": {"config": {"max_rejected_rows": 0}}}},
        raise_on_error=False,
    )
    assert result.success, failure_messages(result)
    return divisions_read(data_root)


def test_the_bundled_samples_reviews_loaded_into_ee_export_to_the_same_divisions(
    every_election, tmp_path
):
    review_ids = load_sample(every_election)
    counts, _, _ = exported(every_election, tmp_path, ids=review_ids)
    assert counts["boundary_reviews"] == len(review_ids) == 2

    exported_divisions = divisions_table(tmp_path / "root" / "export", tmp_path / "from_ee")
    sample_divisions = divisions_table(SAMPLE_BOUNDARY_REVIEWS, tmp_path / "from_files")
    assert sorted(exported_divisions) == sorted(sample_divisions)
    assert len(sample_divisions) == counts["divisions"] == 116
    for key, (fields, pieces, area) in sample_divisions.items():
        exported_fields, exported_pieces, exported_area = exported_divisions[key]
        assert exported_fields == fields, key
        assert exported_pieces >= pieces, key
        assert exported_area == pytest.approx(area, rel=1e-9), key


def reviews_by_address(data_root: Path) -> dict[str, list[dict]]:
    """Each address's reviews in the published layer, without what names a divisionset (its
    map tiles' URL): EE holds one divisionset per review and generation, the sample one per
    division type."""
    found = {}
    for path in sorted((data_root / "current_boundary_reviews_parquet").glob("*.parquet")):
        table = pq.read_table(path)
        if not table.num_columns:
            continue
        for uprn, elements in zip(
            table["uprn"].to_pylist(), table["boundary_reviews"].to_pylist(), strict=True
        ):
            reviews = [json.loads(element) for element in elements]
            for review in reviews:
                for change in review["changes"]:
                    del change["old_divisionset_pmtiles_url"], change["new_divisionset_pmtiles_url"]
            found[uprn] = reviews
    return found


def test_the_layer_baked_from_ee_is_the_one_the_same_reviews_give_as_files(
    every_election, tmp_path
):
    load_sample(every_election)
    settings = {"addressbase": str(SAMPLE_ADDRESSBASE), "layer": "current_boundary_reviews"}
    reviews = (952, 955)

    bake(**settings, settings=Settings(data_root=str(tmp_path / "from_files")))
    baked = bake(
        **settings,
        settings=Settings(data_root=str(tmp_path / "from_ee"), boundary_review_ids=reviews),
        boundary_reviews=every_election.url,
    )

    assert baked.metadata["boundary_reviews_export"]["boundary_reviews"] == 2
    from_ee = reviews_by_address(tmp_path / "from_ee")
    assert from_ee == reviews_by_address(tmp_path / "from_files")
    assert sum(bool(reviews) for reviews in from_ee.values()) > 100


def test_an_export_of_no_reviews_bakes_a_layer_of_empty_outcode_files(every_election, tmp_path):
    baked = bake(
        addressbase=str(SAMPLE_ADDRESSBASE),
        layer="current_boundary_reviews",
        settings=Settings(data_root=str(tmp_path)),
        boundary_reviews=every_election.url,
    )

    assert baked.metadata["boundary_reviews_export"]["files"] == 0
    assert baked.metadata["boundary_review_divisions"]["rows"] == 0
    files = list((tmp_path / "current_boundary_reviews_parquet").glob("*.parquet"))
    assert files and all(pq.read_table(path).num_columns == 0 for path in files)
