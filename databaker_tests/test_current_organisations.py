"""The organisations layer on a crafted map: a county with its divisions and two districts inside
it with their wards, a constituency across the districts' border, a police area, a combined
authority, a district in two pieces and one a MULTIPOLYGON with a hole, an organisation that
ended the day before the bake's date and one that starts the day after, and a district's
wards replaced on that date. Addresses sit inside, on edges and in the hole.

What each address should hold is computed here from the export's rows with shapely and the
definition in the issue (dates, ``ST_Contains``, the order of types), not by the baker's code;
the layer is read with polars, as a consumer reads it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
import shapely

from databaker.assets import layer_named
from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.assets.current_organisations.join import JOINED_TABLE, ORGANISATIONS_QUERY
from databaker.assets.organisations import ORGANISATION_AREAS_TABLE
from databaker.bake import BakeFailed, bake
from databaker.cli import main
from databaker.definitions import Settings
from databaker.layers.diff import DIFF, LayerDiff
from databaker.layers.versions import published_manifest, version_prefix
from databaker.resources import DuckDBQueryEngine, LocalLayerStore, point_in_area
from databaker.staging import partition_record
from databaker.status import layer_statuses
from databaker_tests.conftest import address_line, write_lines
from databaker_tests.layer_diffs import diff_of_files
from databaker_tests.test_athena_queries import athena_rows_in_duckdb

LAYER = "current_organisations"
ON = date(2026, 5, 7)
"""The date the Vale's new wards start on; the bakes are as of it or of the day before."""
HEADER = [
    "organisation_type",
    "official_identifier",
    "organisation_name",
    "gss",
    "start_date",
    "end_date",
    "divisionset_start_date",
    "divisionset_end_date",
    "division_type",
    "division_slug",
    "division_name",
    "division_official_identifier",
    "geometry",
]
FIELDS = [
    "organisation_type",
    "official_identifier",
    "organisation_name",
    "gss",
    "division_type",
    "division_slug",
    "division_name",
    "division_official_identifier",
]
TYPES = [
    "parl",
    "sp",
    "senedd",
    "nia",
    "gla",
    "combined-authority",
    "police-area",
    "local-authority",
]


def at(x: float, y: float) -> tuple[float, float]:
    """The crafted map's unit is a hundredth of a degree, from (-2, 52)."""
    return round(-2 + x / 100, 6), round(52 + y / 100, 6)


def ring(x0: float, x1: float, y0: float, y1: float) -> str:
    corners = [at(x0, y0), at(x1, y0), at(x1, y1), at(x0, y1), at(x0, y0)]
    return "(" + ",".join(f"{x} {y}" for x, y in corners) + ")"


def box(x0: float, x1: float, y0: float, y1: float, *, srid: bool = False) -> str:
    return ("SRID=4326;" if srid else "") + f"POLYGON({ring(x0, x1, y0, y1)})"


OLD_WARDS = ("2019-05-02", (ON - timedelta(days=1)).isoformat())
NEW_WARDS = (ON.isoformat(), "")


def organisation(kind, identifier, name, gss, start, end, geometry) -> list[str]:
    return [kind, identifier, name, gss, start, end, "", "", "", "", "", "", geometry]


def division(owner: list[str], divisionset, kind, slug, name, official, geometry) -> list[str]:
    return [*owner[:6], *divisionset, kind, slug, name, official, geometry]


COUNTY = organisation(
    "local-authority", "SHR", "Shire County Council", "E10000001", "1974-04-01", "",
    box(0, 10, 0, 10),
)  # fmt: skip
VALE = organisation(
    "local-authority", "VAL", 'Vale District Council, "the Vale"', "E07000001", "1974-04-01",
    "", box(0, 5, 0, 5),
)  # fmt: skip
MOOR = organisation(
    "local-authority", "MOR", "Moor District Council", "E07000002", "1974-04-01", "",
    f"MULTIPOLYGON(({ring(5, 10, 0, 5)}),({ring(5, 10, 5, 10)},{ring(7, 8, 7, 8)}))",
)  # fmt: skip
PARL = organisation("parl", "parl", "House of Commons", "", "1801-01-01", "", box(-5, 15, -5, 15))
POLICE = organisation(
    "police-area", "shire", "Shire Police", "", "2012-11-15", "", box(0, 10, 0, 10, srid=True)
)
AUTHORITY = organisation(
    "combined-authority", "VCA", "Vale Combined Authority", "E47000001", "2017-03-01", "",
    box(0, 5, 0, 10),
)  # fmt: skip
ENDED = organisation(
    "local-authority", "OLD", "Old Borough", "E07000009", "1974-04-01",
    (ON - timedelta(days=1)).isoformat(), box(0, 10, 0, 10),
)  # fmt: skip
STARTING = organisation(
    "local-authority", "NEW", "New Unitary", "E06000099", (ON + timedelta(days=1)).isoformat(),
    "", box(0, 10, 0, 10),
)  # fmt: skip
COUNTY_SET = ("2017-05-04", "")
ROWS = [
    COUNTY,
    division(COUNTY, COUNTY_SET, "CED", "north", "North", "E58000001", box(0, 10, 5, 10)),
    division(COUNTY, COUNTY_SET, "CED", "south", "South", "E58000002", box(0, 10, 0, 5)),
    VALE,
    # The Vale's area in two pieces.
    [*VALE[:12], box(0, 5, 5, 10)],
    division(VALE, OLD_WARDS, "DIW", "west-vale", "West Vale", "E05000001", box(0, 2.5, 0, 10)),
    division(VALE, OLD_WARDS, "DIW", "east-vale", "East Vale", "E05000002", box(2.5, 5, 0, 10)),
    division(VALE, NEW_WARDS, "DIW", "vale-south", "Vale South", "", box(0, 5, 0, 5)),
    division(VALE, NEW_WARDS, "DIW", "vale-north", "Vale North", "", box(0, 5, 5, 10)),
    MOOR,
    division(MOOR, ("2015-05-07", ""), "DIW", "moor", "Moor", "E05000010", box(5, 10, 0, 10)),
    PARL,
    division(PARL, ("2024-07-04", ""), "WMC", "west-shire", "West Shire", "gss:E14000001",
             box(-5, 2.5, -5, 15)),
    division(PARL, ("2024-07-04", ""), "WMC", "vale-and-moor", "Vale and Moor",
             "gss:E14000002", box(2.5, 7.5, 0, 10)),
    division(PARL, ("2024-07-04", ""), "WMC", "east-shire", "East Shire", "gss:E14000003",
             box(7.5, 15, -5, 15)),
    POLICE,
    AUTHORITY,
    ENDED,
    STARTING,
]  # fmt: skip
ADDRESSES = {
    # UPRN: (postcode, x, y, what it tests)
    "100": ("SH1 1AA", 1, 1, "inside everything of the Vale's south-west"),
    "101": ("SH1 1AA", 4, 6, "the Vale's second piece; a constituency across the border"),
    "102": ("SH1 1AB", 6, 4, "Moor's first polygon, the same constituency"),
    "103": ("SH2 1AA", 7.5, 7.5, "Moor's hole; on the edge of two constituencies"),
    "104": ("SH2 1AA", 5, 2, "on the edge between the Vale and Moor"),
    "105": ("SH2 1AB", 3, 12, "outside the county, in no constituency"),
    "106": ("SH1 1AB", 2.5, 3, "on the edge of the Vale's old wards"),
    "107": ("ZZ9 9ZZ", 20, 20, "in nothing"),
} | {
    # Most of the letter lies where nothing changes from one day to the next, so that a
    # rebuild joins again only the addresses where something does.
    str(200 + i): (f"SH3 1A{'ABCDEFGH'[i]}", 3, 13 + i, "in Parliament's area only")
    for i in range(8)
}


def write_export(path: Path, rows: list[list[str]] = ROWS) -> Path:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    path.write_text(text.getvalue(), encoding="utf-8")
    return path


def write_drop(folder: Path) -> Path:
    lines = [
        address_line(uprn, f"{uprn} Crafted Road, Shire", postcode, *at(x, y))
        for uprn, (postcode, x, y, _) in ADDRESSES.items()
    ]
    write_lines(folder / "addressbase_cleaned" / "part-000.csv", lines)
    return folder


def current(start: str, end: str, on: date) -> bool:
    return date.fromisoformat(start) <= on and (not end or on <= date.fromisoformat(end))


def expected(on: date, rows: list[list[str]] = ROWS) -> dict[int, list[dict]]:
    """Each address's organisations by the issue's definition, with shapely."""
    records = [dict(zip(HEADER, row, strict=True)) for row in rows]
    shapes = [shapely.from_wkt(r["geometry"].removeprefix("SRID=4326;")) for r in records]
    answers = {}
    for uprn, (_, x, y, _) in ADDRESSES.items():
        point = shapely.Point(*at(x, y))
        inside = [r for r, s in zip(records, shapes, strict=True) if s.contains(point)]
        elements = []
        owners = {
            (r["organisation_type"], r["official_identifier"], r["start_date"]) for r in inside
        }
        for kind, identifier, start in owners:
            own = [
                r
                for r in inside
                if (r["organisation_type"], r["official_identifier"], r["start_date"])
                == (kind, identifier, start)
            ]
            head = own[0]
            if not current(head["start_date"], head["end_date"], on):
                continue
            if not any(r["division_slug"] == "" for r in own):
                continue
            divisions = [
                r
                for r in own
                if r["division_slug"]
                and current(r["divisionset_start_date"], r["divisionset_end_date"], on)
            ]
            assert len(divisions) <= 1, "the crafted map has no overlapping divisions"
            element = {f: head[f] or None for f in FIELDS[:4]}
            for f in FIELDS[4:]:
                element[f] = (divisions[0][f] or None) if divisions else None
            elements.append(element)
        elements.sort(key=lambda e: (TYPES.index(e["organisation_type"]), e["official_identifier"]))
        answers[int(uprn)] = elements
    return answers


@pytest.fixture(scope="module", autouse=True)
def joined_by_band_segments() -> Iterator[None]:
    """The crafted map's few addresses are joined as a bake's letters are, by the index's
    band segments, not by the bounding boxes that join a few points (a rebake's)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(point_in_area, "FEW_POINTS", 0)
        yield


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("organisations")
    return write_drop(folder / "drop"), write_export(folder / "organisations.csv")


@pytest.fixture(scope="module")
def baked(inputs, tmp_path_factory) -> Path:
    drop, export = inputs
    root = tmp_path_factory.mktemp("baked") / "data"
    bake(
        layer=LAYER,
        addressbase=str(drop),
        organisations=str(export),
        on=ON.isoformat(),
        settings=Settings(data_root=str(root)),
    )
    return root


def read_layer(root: Path) -> dict[int, list[dict]]:
    """Every address of the layer, as polars reads the files."""
    frames = [
        pl.read_parquet(path)
        for path in sorted((root / f"{LAYER}_parquet").glob("*.parquet"))
        if path.stat().st_size and pl.read_parquet_schema(path)
    ]
    layer = pl.concat(frames)
    return {
        int(uprn): orgs
        for uprn, orgs in zip(
            layer["uprn"].to_list(), layer["organisations"].to_list(), strict=True
        )
    }


def test_the_crafted_map_is_what_the_test_says():
    answers = expected(ON)
    assert [e["official_identifier"] for e in answers[100]] == [
        "parl",
        "VCA",
        "shire",
        "SHR",
        "VAL",
    ]
    assert answers[103][0]["division_slug"] is None  # on the edge of two constituencies
    assert "MOR" not in {e["official_identifier"] for e in answers[103]}  # in the hole
    assert {e["official_identifier"] for e in answers[104]} == {"parl", "shire", "SHR"}
    assert answers[107] == []
    before = expected(ON - timedelta(days=1))
    assert "OLD" in {e["official_identifier"] for e in before[100]}
    assert "NEW" not in {e["official_identifier"] for e in answers[100]}


def test_each_address_holds_the_organisations_the_definition_gives(baked):
    assert read_layer(baked) == {
        uprn: elements for uprn, elements in expected(ON).items() if uprn != 107
    }


def test_baking_on_either_side_of_a_new_divisionset_gives_the_old_or_the_new_wards(
    inputs, baked, tmp_path
):
    drop, export = inputs
    day_before = ON - timedelta(days=1)
    root = tmp_path / "data"
    bake(
        layer=LAYER,
        addressbase=str(drop),
        organisations=str(export),
        on=day_before.isoformat(),
        settings=Settings(data_root=str(root)),
    )
    before = read_layer(root)
    assert before == {uprn: e for uprn, e in expected(day_before).items() if uprn != 107}
    vale = {
        uprn: [e for e in es if e["official_identifier"] == "VAL"] for uprn, es in before.items()
    }
    assert vale[100][0]["division_slug"] == "west-vale"
    assert vale[106][0]["division_slug"] is None  # on the old wards' edge
    after = read_layer(baked)
    vale = {
        uprn: [e for e in es if e["official_identifier"] == "VAL"] for uprn, es in after.items()
    }
    assert vale[100][0]["division_slug"] == "vale-south"
    assert vale[106][0]["division_slug"] == "vale-south"
    manifest = published_manifest(LocalLayerStore(root=str(root)), f"{LAYER}_parquet/")
    assert manifest.input_as_of == day_before.isoformat()


def test_polars_reads_a_postcode_s_organisations_by_field_name(baked):
    outcode = baked / f"{LAYER}_parquet" / "SH1.parquet"
    frame = pl.read_parquet(outcode).filter(pl.col("postcode") == "SH1 1AA")
    assert frame.columns == [
        "uprn",
        "address",
        "postcode",
        "addressbase_source",
        "organisations",
        "outcode",
    ]
    assert frame.schema["organisations"] == pl.List(pl.Struct({f: pl.String for f in FIELDS}))
    assert frame["uprn"].to_list() == ["100", "101"]
    councils = (
        frame.explode("organisations")
        .filter(pl.col("organisations").struct.field("organisation_type") == "local-authority")
        .select(
            "uprn",
            pl.col("organisations").struct.field("official_identifier"),
            pl.col("organisations").struct.field("division_slug"),
        )
    )
    assert councils.rows() == [
        ("100", "SHR", "south"),
        ("100", "VAL", "vale-south"),
        ("101", "SHR", "north"),
        ("101", "VAL", "vale-north"),
    ]


def test_an_outcode_where_no_address_has_an_organisation_is_an_empty_file(baked):
    empty = baked / f"{LAYER}_parquet" / "ZZ9.parquet"
    assert empty.exists()
    assert pl.read_parquet_schema(empty) == {}


def test_lookup_json_prints_each_address_with_its_organisations(baked, capsys):
    assert main(["lookup", "SH2 1AA", "--layer", LAYER, "--json", "--data-root", str(baked)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["organisation_ids"] == ["local-authority/SHR", "parl/parl", "police-area/shire"]
    by_uprn = {a["uprn"]: a["organisations"] for a in answer["addresses"]}
    assert by_uprn == {103: expected(ON)[103], 104: expected(ON)[104]}


def test_an_organisation_reaching_no_address_refuses_the_bake_unless_allowed(inputs, tmp_path):
    drop, _ = inputs
    far = organisation(
        "police-area", "far", "Far Police", "", "2012-11-15", "", box(50, 60, 50, 60)
    )
    export = write_export(tmp_path / "organisations.csv", [*ROWS, far])
    settings = Settings(data_root=str(tmp_path / "data"))
    common = {"layer": LAYER, "addressbase": str(drop), "organisations": str(export)}
    with pytest.raises(BakeFailed, match="police-area/far"):
        bake(**common, on=ON.isoformat(), settings=settings)
    assert not (tmp_path / "data" / f"{LAYER}_parquet" / "SH1.parquet").exists()
    bake(**common, on=ON.isoformat(), settings=settings, allow=["organisations_without_addresses"])
    assert read_layer(tmp_path / "data")[100] == expected(ON)[100]


def test_addresses_losing_their_council_refuse_the_bake(inputs, tmp_path):
    drop, export = inputs
    settings = Settings(data_root=str(tmp_path / "data"))
    bake(layer=LAYER, addressbase=str(drop), organisations=str(export), on=ON.isoformat(),
         settings=settings)  # fmt: skip
    without_county = [row for row in ROWS if row[1] not in {"SHR", "VAL", "MOR"}]
    smaller = write_export(tmp_path / "smaller.csv", without_county)
    with pytest.raises(BakeFailed, match="lost their council"):
        bake(layer=LAYER, addressbase=str(drop), organisations=str(smaller), on=ON.isoformat(),
             settings=settings)  # fmt: skip


# ---- The join's SQL, both dialects, held to the embedded engine's rows -------------------


def joined_rows(rows: list[dict]) -> list[tuple]:
    return sorted((r["uprn"], tuple(r["organisations"])) for r in rows)


def read_joined(store: LocalLayerStore) -> list[dict]:
    """The joined table's letters (its folder also holds the areas a rebuild compares)."""
    with duckdb.connect() as conn:
        found = conn.execute(
            "SELECT * FROM read_parquet(?, hive_partitioning = true)",
            [store.uri(JOINED_TABLE.prefix) + "first_letter=*/*.parquet"],
        )
        names = [column[0] for column in found.description]
        return [dict(zip(names, row, strict=True)) for row in found.fetchall()]


def test_the_join_s_sql_in_both_dialects_gives_the_embedded_engine_s_rows(baked, tmp_path):
    """The embedded engine runs the join on integer columns; its DuckDB SQL (the definition)
    and the Athena SQL transpiled to DuckDB must give the same elements, text for text."""
    store = LocalLayerStore(root=str(baked))
    params = {
        "addressbase_partitioned": ADDRESSBASE_PARTITIONED_TABLE.in_store(store),
        "organisation_areas": ORGANISATION_AREAS_TABLE.in_store(store),
        "letters": ["S", "Z"],
    }
    embedded = read_joined(store)
    output = LocalLayerStore(root=str(tmp_path))
    DuckDBQueryEngine().run(
        ORGANISATIONS_QUERY.sql,
        {**params, "output": output.uri_for_writing(JOINED_TABLE.prefix)},
    )
    in_sql = read_joined(output)
    athena = athena_rows_in_duckdb(ORGANISATIONS_QUERY.sql, {**params, "output": "s3://x/"})
    assert joined_rows(in_sql) == joined_rows(embedded)
    assert joined_rows(athena) == joined_rows(embedded)
    assert len(embedded) == len(ADDRESSES)
    only_z = athena_rows_in_duckdb(
        ORGANISATIONS_QUERY.sql, {**params, "letters": ["Z"], "output": "s3://x/"}
    )
    assert [r["uprn"] for r in only_z] == ["107"]


def test_a_rebake_on_the_next_day_publishes_what_a_bake_from_scratch_does(inputs, baked, tmp_path):
    """The day's change reaches the letters through the areas that stopped or started being
    current: a rebuild on the AddressBase already baked joins again only the addresses in
    their boxes, and must publish the very files of a bake from scratch on that day."""
    drop, export = inputs
    root = tmp_path / "data"
    settings = Settings(data_root=str(root))
    common = {"layer": LAYER, "organisations": str(export), "settings": settings}
    bake(**common, addressbase=str(drop), on=(ON - timedelta(days=1)).isoformat())
    rebaked = bake(**common, keep_addressbase=True, on=ON.isoformat())
    version = rebaked.metadata[f"{LAYER}_version"]
    assert version["addresses_changed"] > 0
    ours = {p.name: p.read_bytes() for p in (root / f"{LAYER}_parquet").glob("*.parquet")}
    scratch = {p.name: p.read_bytes() for p in (baked / f"{LAYER}_parquet").glob("*.parquet")}
    assert ours == scratch
    store = LocalLayerStore(root=str(root))
    published = published_manifest(store, f"{LAYER}_parquet/")
    diff = LayerDiff.from_json(
        store.read_bytes(version_prefix(f"{LAYER}_parquet/", published.bake_id) + DIFF)
    )
    assert "local-authority/OLD" in diff.ids_disappearing
    assert diff.addresses_losing_kind == {}
    layer = layer_named(LAYER)
    record = partition_record(store, layer.joined.prefix, "S")
    assert record.changes.rows, "the letter rebuilt in part keeps its changed lists"
    first = version["baseline"]
    assert diff == diff_of_files(store, layer, first), "counted from them as from the files"


def test_versions_and_status_name_the_date_the_layer_was_baked_as_of(inputs, tmp_path, capsys):
    drop, export = inputs
    root = tmp_path / "data"
    with dg.DagsterInstance.ephemeral() as instance:
        bake(layer=LAYER, addressbase=str(drop), organisations=str(export), on=ON.isoformat(),
             settings=Settings(data_root=str(root)), instance=instance)  # fmt: skip
        (status,) = layer_statuses(instance, layers=(layer_named(LAYER),))
    assert status.as_of == ("organisations_on", ON.isoformat())
    assert status.healthy, status.problems
    capsys.readouterr()
    assert main(["versions", "--layer", LAYER, "--data-root", str(root)]) == 0
    assert f"on {ON.isoformat()}" in capsys.readouterr().out


def test_on_is_refused_for_a_layer_not_baked_as_of_a_date(tmp_path):
    with pytest.raises(ValueError, match="not baked as of a date"):
        bake(
            layer="current_elections", on=ON.isoformat(), settings=Settings(data_root=str(tmp_path))
        )
    with pytest.raises(SystemExit) as refused:
        main(["bake", "--layer", LAYER, "--on", "2026-5-7", "--data-root", str(tmp_path)])
    assert refused.value.code == 2
