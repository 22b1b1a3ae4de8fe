"""The boundary-reviews join: each address with a JSON object per boundary review redrawing it.

A crafted map of squares near Leeds (in ``boundary_reviews_tables``) holds every case the layer
tells apart. The expected lists are computed here, independently of the join's SQL:
containment per piece with shapely, the taking-part addresses of each division as Python sets,
the JSON with ``json.dumps``.
"""

import json
from collections import defaultdict
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import shapely

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.assets.boundary_reviews import BOUNDARY_REVIEW_DIVISIONS_TABLE
from databaker.assets.current_boundary_reviews.join import (
    ADDRESSES_IN_DIVISIONS,
    DIVISIONS_JOIN,
    REVIEWS_QUERY,
    join_boundary_reviews,
)
from databaker.layers import JoinRun
from databaker.resources import DuckDBQueryEngine, LocalLayerStore
from databaker_tests.boundary_reviews_tables import (
    ADDRESSES,
    LEEDS,
    PIECES,
    Address,
    Piece,
    cells,
    write_addresses,
    write_divisions,
)

DETAILS = (
    "consultation_url",
    "legislation_title",
    "effective_date",
    "organisation_name",
    "organisation_official_name",
    "organisation_gss",
)
"""The review's fields in ``boundary_review_details``, in order."""


def expected_reviews(addresses: list[Address], pieces: list[Piece]) -> dict[str, list[str]]:
    """Each address's list, computed from the definition with shapely and Python sets."""
    first = sorted(pieces, key=lambda piece: (piece.source_file, piece.source_line))
    division: dict[str, Piece] = {}
    review_row: dict[int, dict] = {}
    for piece in first:
        division.setdefault(piece.key, piece)
        review_row.setdefault(piece.review.boundary_review_id, piece.row())
    inside = {
        a.uprn: {p.key for p in pieces if shapely.contains_xy(p.shape, a.lon, a.lat)}
        for a in addresses
    }
    pairs: dict[str, list[tuple[str, str]]] = {}
    taking_part: dict[str, set[str]] = defaultdict(set)
    for uprn, keys in inside.items():
        found = [division[k] for k in keys]
        pairs[uprn] = [
            (old.key, new.key)
            for old in found
            for new in found
            if (old.generation, new.generation) == ("old", "new")
            and (old.review, old.division_type) == (new.review, new.division_type)
        ]
        for old, new in pairs[uprn]:
            taking_part[old].add(uprn)
            taking_part[new].add(uprn)

    expected = {}
    for uprn, found in pairs.items():
        by_review = defaultdict(list)
        for old_key, new_key in found:
            old, new = division[old_key], division[new_key]
            same_name = old.slug == new.slug
            same_boundary = taking_part[old_key] == taking_part[new_key]
            scenario = {
                (True, True): "NO_CHANGE",
                (False, True): "NAME_CHANGED",
                (True, False): "BOUNDARY_CHANGED",
                (False, False): "BOTH_CHANGED",
            }[(same_name, same_boundary)]
            by_review[old.review.boundary_review_id].append(
                {
                    "division_type": old.division_type,
                    "old_division_slug": old.slug,
                    "old_division_name": old.name,
                    "old_division_official_identifier": old.official_identifier,
                    "old_divisionset_pmtiles_url": old.pmtiles_url,
                    "new_division_slug": new.slug,
                    "new_division_name": new.name,
                    "new_division_official_identifier": new.official_identifier,
                    "new_divisionset_pmtiles_url": new.pmtiles_url,
                    "change_scenario": scenario,
                }
            )
        expected[uprn] = [
            json.dumps(
                {
                    "boundary_review_id": review_id,
                    "boundary_review_details": {
                        name: review_row[review_id][name] for name in DETAILS
                    },
                    "changes": sorted(
                        changes,
                        key=lambda c: (
                            c["division_type"],
                            c["old_division_slug"],
                            c["new_division_slug"],
                        ),
                    ),
                },
                separators=(",", ":"),
                ensure_ascii=False,
            )
            for review_id, changes in sorted(by_review.items())
        ]
    return expected


def run_join(root: Path, letters: list[str]) -> dict[str, dict]:
    """Join the crafted tables for ``letters``; the written rows by UPRN."""
    store = LocalLayerStore(root=str(root))
    write_addresses(store, ADDRESSES)
    write_divisions(store, PIECES)
    join_boundary_reviews(
        JoinRun(
            engine=DuckDBQueryEngine(),
            store=store,
            letters=letters,
            output=store.uri_for_writing("joined/"),
            scratch="_scratch/",
        )
    )
    return read_rows(store.uri("joined/"))


def read_rows(folder: str) -> dict[str, dict]:
    with duckdb.connect() as conn:
        cursor = conn.execute(
            "SELECT * FROM read_parquet(?, hive_partitioning = true)", [folder + "**/*.parquet"]
        )
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    assert names == ["uprn", "boundary_reviews", "first_letter"]
    by_uprn = {row["uprn"]: row for row in rows}
    assert len(by_uprn) == len(rows), "an address was written twice"
    return by_uprn


def scenarios(elements: list[str]) -> dict[tuple[int, str], list[str]]:
    """``(review, division type) -> change scenarios``, read back from the JSON."""
    found = defaultdict(list)
    for element in elements:
        review = json.loads(element)
        for change in review["changes"]:
            found[(review["boundary_review_id"], change["division_type"])].append(
                change["change_scenario"]
            )
    return dict(found)


def element(row: dict, review_id: int) -> dict:
    (found,) = [
        review
        for review in map(json.loads, row["boundary_reviews"])
        if review["boundary_review_id"] == review_id
    ]
    return found


@pytest.fixture(scope="module")
def joined(tmp_path_factory) -> dict[str, dict]:
    return run_join(tmp_path_factory.mktemp("boundary_reviews"), ["L", "W"])


def test_every_address_gets_exactly_the_reviews_computed_from_the_definition(joined):
    expected = expected_reviews(ADDRESSES, PIECES)
    assert set(joined) == {a.uprn for a in ADDRESSES}
    for address in ADDRESSES:
        row = joined[address.uprn]
        assert row["boundary_reviews"] == expected[address.uprn], address.uprn
        assert row["first_letter"] == address.letter
        for found, wanted in zip(row["boundary_reviews"], expected[address.uprn], strict=True):
            assert json.loads(found) == json.loads(wanted)


def test_the_map_holds_every_scenario(joined):
    """The crafted map reaches each case, so the comparison above covers them all."""
    found = {uprn: scenarios(row["boundary_reviews"]) for uprn, row in joined.items()}
    assert found["101"] == {(963, "CED"): ["NO_CHANGE"], (963, "DIW"): ["NO_CHANGE"]}
    assert [c["division_type"] for c in element(joined["101"], 963)["changes"]] == ["CED", "DIW"]
    assert found["111"][(963, "DIW")] == ["NAME_CHANGED"]
    assert found["121"][(963, "DIW")] == ["BOUNDARY_CHANGED"]
    assert found["122"][(963, "DIW")] == ["BOTH_CHANGED"]
    assert found["123"][(963, "DIW")] == ["BOUNDARY_CHANGED"]
    assert found["131"][(963, "DIW")] == found["132"][(963, "DIW")] == ["BOTH_CHANGED"]
    assert found["141"][(963, "DIW")] == found["142"][(963, "DIW")] == ["NO_CHANGE"]
    # On the edge between two old wards, or between two pieces of one: in no old ward.
    edges = shapely.boundary(cells(4, 0, 6, 1)), shapely.boundary(cells(9, 0, 10, 1))
    for uprn, edge in zip(("124", "143"), edges, strict=True):
        (address,) = [a for a in ADDRESSES if a.uprn == uprn]
        assert shapely.intersects_xy(edge, address.lon, address.lat)
        assert found[uprn] == {(963, "CED"): ["NO_CHANGE"]}
    # In the old divisionset only, and in no review: an empty list, never null.
    assert joined["103"]["boundary_reviews"] == joined["199"]["boundary_reviews"] == []
    # In north-annex, which has no new division of its type: no element for review 1200.
    assert set(found["141"]) == {(963, "CED"), (963, "DIW")}
    # Two reviews, ordered by ID as a number; in two old divisions of one type (overlapping
    # areas): a change per (old, new) pair, ordered by old slug.
    reviews = [json.loads(e)["boundary_review_id"] for e in joined["132"]["boundary_reviews"]]
    assert reviews == [963, 1200]
    assert [
        (c["old_division_slug"], c["new_division_slug"], c["change_scenario"])
        for c in element(joined["132"], 1200)["changes"]
    ] == [("north", "south", "BOTH_CHANGED"), ("north-annex", "south", "NAME_CHANGED")]


def test_the_json_is_compact_and_keeps_welsh_names_and_quotes(joined):
    text = joined["141"]["boundary_reviews"][0]
    assert text.startswith('{"boundary_review_id":963,"boundary_review_details":{"consultation_')
    assert '"old_division_name":"Ynys Môn"' in text
    merged = element(joined["131"], 963)
    assert merged["changes"][1]["new_division_name"] == 'East & West "Quarter" \\ Back Lane'
    assert merged["boundary_review_details"] == LEEDS.details
    assert list(merged["boundary_review_details"]) == list(DETAILS)


def test_a_reviews_details_come_from_its_first_row(joined):
    details = element(joined["161"], 1200)["boundary_review_details"]
    assert details["consultation_url"] == "https://early.example/wy"
    assert details["legislation_title"] == ""


def test_building_some_letters_counts_addresses_of_every_letter(joined, tmp_path):
    """Gamma's gain of part of delta is seen through an address of a letter not built."""
    only_l = run_join(tmp_path, ["L"])
    assert set(only_l) == {a.uprn for a in ADDRESSES if a.letter == "L"}
    assert only_l == {uprn: row for uprn, row in joined.items() if row["first_letter"] == "L"}
    assert scenarios(only_l["121"]["boundary_reviews"])[(963, "DIW")] == ["BOUNDARY_CHANGED"]
    scratch = LocalLayerStore(root=str(tmp_path)).uri("_scratch/" + ADDRESSES_IN_DIVISIONS.prefix)
    with duckdb.connect() as conn:
        keys = dict(
            conn.execute(
                "SELECT uprn, division_keys FROM read_parquet(?, hive_partitioning = true)",
                [scratch + "**/*.parquet"],
            ).fetchall()
        )
    assert keys["122"] == [
        "963/new/CED/leeds-north",
        "963/new/DIW/gamma",
        "963/old/CED/leeds-north",
        "963/old/DIW/delta",
    ]
    assert keys["199"] == []


def test_the_divisions_join_writes_what_its_sql_writes(tmp_path):
    """The embedded engine's own point-in-area join and the join's SQL agree on the map, its
    edges and its pieces included."""
    store = LocalLayerStore(root=str(tmp_path))
    write_addresses(store, ADDRESSES)
    write_divisions(store, PIECES)
    engine = DuckDBQueryEngine()
    params = {
        "addressbase_partitioned": ADDRESSBASE_PARTITIONED_TABLE.in_store(store),
        "boundary_review_divisions": BOUNDARY_REVIEW_DIVISIONS_TABLE.in_store(store),
        "letters": ["L", "W"],
    }
    engine.run(DIVISIONS_JOIN, {**params, "output": store.uri_for_writing("native/")})
    engine.run_sql(DIVISIONS_JOIN.sql, {**params, "output": store.uri_for_writing("sql/")})
    native, sql = read_table(store.uri("native/")), read_table(store.uri("sql/"))
    assert native == sql
    assert len(native) == len(ADDRESSES)
    assert {row[0]: row[1] for row in native}["143"] == [
        "963/new/CED/leeds-north",
        "963/new/DIW/ynys-mon",
        "963/old/CED/leeds-north",
    ]


@pytest.mark.parametrize("scratch_order", ["as_addressbase", "reversed"])
def test_the_reviews_query_s_python_version_writes_what_its_sql_writes(tmp_path, scratch_order):
    """The embedded engine runs the reviews query in Python (in bounded memory); its DuckDB SQL,
    the definition, writes the same rows, text for text, for every letter or some, whatever the
    order of the scratch table's rows (the engine's join writes them in the partitioned
    AddressBase's order; reversed here)."""
    store = LocalLayerStore(root=str(tmp_path))
    write_addresses(store, ADDRESSES)
    write_divisions(store, PIECES)
    engine = DuckDBQueryEngine()
    engine.run(
        DIVISIONS_JOIN,
        {
            "addressbase_partitioned": ADDRESSBASE_PARTITIONED_TABLE.in_store(store),
            "boundary_review_divisions": BOUNDARY_REVIEW_DIVISIONS_TABLE.in_store(store),
            "letters": ["L", "W"],
            "output": store.uri_for_writing("divisions/"),
        },
    )
    if scratch_order == "reversed":
        for file in (tmp_path / "divisions").glob("first_letter=*/*.parquet"):
            rows = pq.read_table(file)
            pq.write_table(rows.take(list(reversed(range(rows.num_rows)))), file)
    for letters in (["L", "W"], ["W"]):
        params = {
            "addresses_in_review_divisions": store.uri("divisions/"),
            "boundary_review_divisions": BOUNDARY_REVIEW_DIVISIONS_TABLE.in_store(store),
            "letters": letters,
        }
        native, sql = f"native-{len(letters)}/", f"sql-{len(letters)}/"
        engine.run(REVIEWS_QUERY, {**params, "output": store.uri_for_writing(native)})
        engine.run_sql(REVIEWS_QUERY.sql, {**params, "output": store.uri_for_writing(sql)})
        written = read_table(store.uri(native))
        assert written == read_table(store.uri(sql))
        assert {row[-1] for row in written} == set(letters)


def read_table(folder: str) -> list[tuple]:
    with duckdb.connect() as conn:
        return conn.execute(
            "SELECT * FROM read_parquet(?, hive_partitioning = true) ORDER BY uprn",
            [folder + "**/*.parquet"],
        ).fetchall()


def test_with_no_review_at_all_every_address_has_none(tmp_path):
    """An export of no reviews leaves a divisions table of no rows, whose file has no
    GeoParquet metadata: its geometry reads back as a plain BLOB."""
    store = LocalLayerStore(root=str(tmp_path))
    write_addresses(store, ADDRESSES)
    write_divisions(store, [])
    join_boundary_reviews(
        JoinRun(
            engine=DuckDBQueryEngine(),
            store=store,
            letters=["L", "W"],
            output=store.uri_for_writing("joined/"),
            scratch="_scratch/",
        )
    )
    rows = read_rows(store.uri("joined/"))
    assert set(rows) == {a.uprn for a in ADDRESSES}
    assert all(row["boundary_reviews"] == [] for row in rows.values())
