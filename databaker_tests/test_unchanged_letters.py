"""A rebuild keeps the joined letters whose rows cannot have changed, and its layer is still
exactly what a bake from scratch of the same inputs gives.

Map (lon, lat), all squares; addresses in two postcode letters far apart:
  Leeds (L)  LS1 1AA at -1.55, 53.80 and LS1 1AB at -1.54, 53.81;  LEEDS ward around both
  Exeter (E) EX1 1AA at -3.53, 50.72 and EX1 1AB at -3.50, 50.74;  EXETER ward around both
Expected lists are worked out by hand in each test.
"""

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from databaker.assets.current_elections.layer import CURRENT_ELECTIONS as LAYER
from databaker.layers import unchanged_letters
from databaker.layers.unchanged_letters import AREAS_FOLDER
from databaker.layers.versions import published_manifest
from databaker.resources import LocalLayerStore
from databaker.staging import partition_record
from databaker_tests.conftest import (
    ALLOW,
    REBUILD,
    address_line,
    asset_runner,
    ballot_line,
    square,
    write_lines,
)

DATE = "2027-05-06"
LEEDS, EXETER = f"local.leeds.city.{DATE}", f"local.exeter.st-davids.{DATE}"
NEW_LEEDS = f"local.leeds.hyde-park.{DATE}"
HEADER = "election_id,geography_id,geography_text,source_table"
ADDRESSES = [
    address_line("1", "1 Briggate", "LS1 1AA", -1.55, 53.80),
    address_line("2", "2 Briggate", "LS1 1AB", -1.54, 53.81),
    address_line("3", "3 Fore Street", "EX1 1AA", -3.53, 50.72),
    address_line("4", "4 Fore Street", "EX1 1AB", -3.50, 50.74),
]


def ballots(*lines: str) -> list[str]:
    return [
        HEADER,
        ballot_line(LEEDS, "E05001", square(-1.6, -1.5, 53.75, 53.85), "Division"),
        *lines,
    ]


EXETER_BOTH = ballot_line(EXETER, "E05002", square(-3.6, -3.4, 50.7, 50.8), "Division")
EXETER_WEST = ballot_line(EXETER, "E05002", square(-3.6, -3.52, 50.7, 50.8), "Division")


@pytest.fixture
def bake(tmp_path: Path):
    """Bake the drop once, then rebuild from other exports on the same AddressBase; return
    the joined table's rows ``{uprn: ballot_ids}`` and its letters' tokens after each run."""
    data_root = tmp_path / "data"
    run = asset_runner(data_root)
    drop = write_lines(tmp_path / "drop.csv", ADDRESSES)
    joined = LAYER.joined.prefix

    def bake(lines: list[str], *, first: bool = False) -> tuple[dict, dict]:
        export = write_lines(tmp_path / "ballots.csv", lines)
        if first:
            result = run(addressbase=drop, ballots=export)
        else:
            result = run(REBUILD, ballots=export, guard_rails=ALLOW)
        assert result.success
        rows = pq.read_table(data_root / joined, partitioning="hive").to_pylist()
        store = run_store(data_root)
        tokens = {letter: partition_record(store, joined, letter).token for letter in "EL"}
        return {r["uprn"]: r["ballot_ids"] for r in rows}, tokens

    bake.data_root = data_root
    return bake


def run_store(data_root: Path) -> LocalLayerStore:
    return LocalLayerStore(root=str(data_root))


def test_a_changed_area_rebuilds_the_letters_with_addresses_in_its_box_only(bake):
    rows, first = bake(ballots(EXETER_BOTH), first=True)
    assert rows == {"1": [LEEDS], "2": [LEEDS], "3": [EXETER], "4": [EXETER]}
    rows, second = bake(ballots(EXETER_WEST))
    assert rows == {"1": [LEEDS], "2": [LEEDS], "3": [EXETER], "4": []}
    assert second["L"] == first["L"]
    assert second["E"] != first["E"]
    new_ward = ballot_line(NEW_LEEDS, "E05003", square(-1.545, -1.5, 53.805, 53.9), "Division")
    rows, third = bake(ballots(EXETER_WEST, new_ward))
    assert rows == {"1": [LEEDS], "2": [LEEDS, NEW_LEEDS], "3": [EXETER], "4": []}
    assert third["E"] == second["E"]
    assert third["L"] != second["L"]


def test_the_layer_of_a_rebuild_that_kept_letters_is_the_layer_baked_from_scratch(bake, tmp_path):
    """Outcode files, counts, sample: what the version took from the letters it kept, unread,
    is what reading them gives."""
    _, first = bake(ballots(EXETER_BOTH), first=True)
    _, second = bake(ballots(EXETER_WEST))
    assert second["L"] == first["L"], "Leeds kept"
    scratch = tmp_path / "scratch"
    drop = write_lines(tmp_path / "drop.csv", ADDRESSES)
    export = write_lines(tmp_path / "scratch.csv", ballots(EXETER_WEST))
    assert asset_runner(scratch)(addressbase=drop, ballots=export).success
    kept, fresh = (
        published_manifest(run_store(root), LAYER.prefix) for root in (bake.data_root, scratch)
    )
    assert kept.files == fresh.files
    assert (kept.rows, kept.rows_with_ids, kept.addresses_per_id) == (
        fresh.rows,
        fresh.rows_with_ids,
        fresh.addresses_per_id,
    )
    assert fresh.addresses_per_id == {LEEDS: 2, EXETER: 1}


def test_an_area_whose_box_holds_no_address_keeps_every_letter(bake):
    rows, first = bake(ballots(EXETER_BOTH), first=True)
    highlands = ballot_line(
        f"local.highland.wick.{DATE}", "S1", square(-3.2, -3.0, 58.4, 58.5), "Division"
    )
    again, second = bake(ballots(EXETER_BOTH, highlands))
    assert again == rows
    assert second == first
    store = run_store(bake.data_root)
    areas = store.list_keys(LAYER.joined.prefix + AREAS_FOLDER)
    assert len(areas) == 1, "the areas file of the first export is pruned once no letter names it"
    assert all(
        partition_record(store, LAYER.joined.prefix, letter).built_from["areas"]
        == areas[0].rpartition("/")[2].removesuffix(".parquet")
        for letter in "EL"
    )


def test_a_kept_letter_is_not_joined_again(bake):
    """The proof that nothing reads a kept letter: rows planted in it stay as they are."""
    bake(ballots(EXETER_BOTH), first=True)
    leeds = next((bake.data_root / LAYER.joined.prefix / "first_letter=L").glob("*.parquet"))
    table = pq.read_table(leeds)
    planted = pa.array([["planted"]] * table.num_rows, table.schema.field("ballot_ids").type)
    pq.write_table(
        table.set_column(table.schema.get_field_index("ballot_ids"), "ballot_ids", planted), leeds
    )
    rows, _ = bake(ballots(EXETER_WEST))
    assert rows == {"1": ["planted"], "2": ["planted"], "3": [EXETER], "4": []}


def test_other_code_or_a_lost_areas_file_rebuilds_every_letter(bake, monkeypatch):
    _, first = bake(ballots(EXETER_BOTH), first=True)
    monkeypatch.setattr(unchanged_letters, "code_version", lambda: "other code")
    rows, second = bake(ballots(EXETER_BOTH))
    assert rows == {"1": [LEEDS], "2": [LEEDS], "3": [EXETER], "4": [EXETER]}
    assert not set(first.values()) & set(second.values())
    store = run_store(bake.data_root)
    store.delete(store.list_keys(LAYER.joined.prefix + AREAS_FOLDER))
    _, third = bake(ballots(EXETER_BOTH))
    assert not set(second.values()) & set(third.values())


def test_a_new_addressbase_letter_rebuilds_its_joined_letter(bake, tmp_path):
    _, first = bake(ballots(EXETER_BOTH), first=True)
    drop = write_lines(tmp_path / "drop.csv", ADDRESSES)
    result = asset_runner(bake.data_root)(
        addressbase=drop, ballots=tmp_path / "ballots.csv", guard_rails=ALLOW
    )
    assert result.success
    store = run_store(bake.data_root)
    tokens = {letter: partition_record(store, LAYER.joined.prefix, letter).token for letter in "EL"}
    assert not set(first.values()) & set(tokens.values())


def test_input_rows_kept_and_read_back_show_no_change_whatever_their_digests(tmp_path):
    """Digests are compared as kept: one ending in a zero byte once lost it (numpy's ``S32``),
    so an unchanged row passed for a changed one and failed the bake."""
    wkb = shapely.to_wkb(shapely.box(-1.6, 53.7, -1.5, 53.8))

    def digest(election_id: str) -> bytes:
        parts = [election_id.encode(), wkb]
        data = b"".join(len(p).to_bytes(8, "little") + p for p in parts)
        return hashlib.sha256(data).digest()

    ids = [f"local.x{i}.{DATE}" for i in range(2000)]
    zero_ended = next(i for i in ids if digest(i).endswith(b"\x00"))
    table = pa.table({"election_id": [zero_ended, ids[0]], "geometry": [wkb, wkb]})
    store = run_store(tmp_path)
    store.write_bytes("inputs/part.parquet", parquet_bytes(table))
    rows = unchanged_letters.input_rows(store, "inputs/", ["election_id", "geometry"], "geometry")
    assert bytes.fromhex(rows.digests[0]) == digest(zero_ended)
    unchanged_letters.write_areas(store, "joined/", rows)
    boxes = unchanged_letters._changed_boxes(store, "joined/", rows.version, rows)
    assert boxes is not None and len(boxes) == 0


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize("name", ["part-0.parquet", "20261205_093000_00012_abcde_0"])
@pytest.mark.parametrize("statistics", [True, False])
def test_an_address_in_a_changed_box_is_found_in_whichever_row_group_it_is(
    tmp_path, statistics, name
):
    """Row groups whose locations' statistics lie outside every box are skipped, never one
    that holds an address inside a box (edges included); a file is read whatever its name
    (Athena's ``UNLOAD`` names its parquet files without a suffix)."""
    store = run_store(tmp_path)
    far = [(-5.0 + i * 0.01, 50.0) for i in range(6)]
    in_box = (1.0, 52.0)  # on the box's corner
    points = pa.table(
        {
            "longitude": [x for x, _ in far] + [in_box[0]],
            "latitude": [y for _, y in far] + [in_box[1]],
        }
    )
    sink = pa.BufferOutputStream()
    pq.write_table(points, sink, row_group_size=2, write_statistics=statistics)
    store.write_bytes(
        f"addressbase_partitioned/first_letter=Q/{name}", sink.getvalue().to_pybytes()
    )
    box = np.array([[1.0, 52.0, 1.5, 52.5]])
    grid = unchanged_letters.BoxGrid.of(box)
    assert unchanged_letters._any_address_in(store, "Q", grid)
    elsewhere = unchanged_letters.BoxGrid.of(
        np.array([[1.1, 52.1, 1.5, 52.5], [-6, 49, -5.5, 49.5]])
    )
    assert not unchanged_letters._any_address_in(store, "Q", elsewhere)


@pytest.mark.parametrize(
    ("box", "meets"),
    [
        ((1.1, 52.1, 1.2, 52.2), True),  # inside the covered corner
        ((0.0, 51.0, 1.0, 52.0), True),  # touching it at its corner only
        ((1.0, 52.6, 1.4, 53.0), False),  # inside the grid, above the covered cells
        ((-9.0, 45.0, -8.0, 46.0), False),  # outside the grid
        ((-9.0, 45.0, 9.0, 60.0), True),  # around the whole grid
        ((np.nan, np.nan, np.nan, np.nan), False),  # an empty geometry's
    ],
)
def test_a_box_meets_the_grid_where_it_holds_a_covered_cell(box, meets):
    """``meets`` tests many boxes at once, as ``covers_box`` tests one, so that no box holding
    a point that ``covers`` is left out: the boxes of 2 changed areas, the lower one's corner
    covered and a gap above it."""
    grid = unchanged_letters.BoxGrid.of(np.array([[1.0, 52.0, 1.5, 52.5], [2.0, 53.5, 2.5, 54.0]]))
    boxes = np.array([box, box])
    assert grid.meets(boxes).tolist() == [meets, meets]
    if not np.isnan(box).any():
        assert grid.covers_box(*box) is meets
    x = np.linspace(box[0], box[2], 41).repeat(41)
    y = np.tile(np.linspace(box[1], box[3], 41), 41)
    if grid.covers_any(x, y):
        assert meets
