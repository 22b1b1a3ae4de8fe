"""A rebuild joins again only the addresses of a letter that lie in the box of a changed area,
keeps the others' lists, and says which outcodes' rows changed; its layer is still the layer
a bake from scratch of the same inputs gives.

Map (lon, lat); Leeds letter L, Exeter letter E:
  1 LS1 1AA (-1.55, 53.80)   2 LS1 1AB (-1.54, 53.81)   5 LS2 7AA (-1.52, 53.83)
  6 LS6 1AA (-1.58, 53.78)   7 LS6 2AA (-1.56, 53.82)   3 EX1 1AA (-3.53, 50.72)
  LEEDS ward: the square -1.6..-1.5 x 53.75..53.85, around every L address
  EXETER ward: the square -3.6..-3.4 x 50.7..50.8, around 3
  HYDE PARK ward: the triangle (-1.57 53.815) (-1.51 53.815) (-1.51 53.84). Its box holds
  5 and 7, the triangle only 5: on the hypotenuse's line at x = -1.56 the latitude is
  53.815 + 0.01 * 0.025 / 0.06 = 53.8192 < 53.82 (7 is above it, outside); at x = -1.52 it is
  53.8358 > 53.83 (5 is below it, inside).
So adding HYDE PARK joins again 5 and 7 of L's five addresses (two in five: not most of the
letter), changes 5's list only, and only outcode LS2's rows.
"""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.assets.current_elections.layer import CURRENT_ELECTIONS as LAYER
from databaker.layers import outcode_files, rejoined_addresses
from databaker.layers.changed_lists import changed_lists, lists_equal, replaced_lists
from databaker.layers.diff import IDS_CHANGED, compare_versions
from databaker.layers.located import REJOINED, KeptLocations
from databaker.layers.unchanged_letters import BoxGrid
from databaker.layers.versions import content_hash, published_manifest, version_prefix
from databaker.resources import LocalLayerStore
from databaker.resources.athena_engine import AthenaQueryEngine
from databaker.resources.duckdb_engine import DuckDBQueryEngine
from databaker.staging import RowChanges, partition_record
from databaker_tests.conftest import (
    ALLOW,
    REBUILD,
    address_line,
    asset_runner,
    ballot_line,
    square,
    write_lines,
)
from databaker_tests.layer_diffs import diff_of_files, published_diff

DATE = "2027-05-06"
LEEDS, EXETER = f"local.leeds.city.{DATE}", f"local.exeter.st-davids.{DATE}"
HYDE_PARK = f"local.leeds.hyde-park.{DATE}"
HEADER = "election_id,geography_id,geography_text,source_table"
ADDRESSES = [
    address_line("1", "1 Briggate", "LS1 1AA", -1.55, 53.80),
    address_line("2", "2 Briggate", "LS1 1AB", -1.54, 53.81),
    address_line("5", "5 Clarendon Road", "LS2 7AA", -1.52, 53.83),
    address_line("6", "6 Otley Road", "LS6 1AA", -1.58, 53.78),
    address_line("7", "7 Otley Road", "LS6 2AA", -1.56, 53.82),
    address_line("3", "3 Fore Street", "EX1 1AA", -3.53, 50.72),
]
FIRST = [
    HEADER,
    ballot_line(
        LEEDS,
        "E05001",
        square(-1.6, -1.5, 53.75, 53.85),
        "Division",
    ),
    ballot_line(EXETER, "E05002", square(-3.6, -3.4, 50.7, 50.8), "Division"),
]
WITH_HYDE_PARK = [
    *FIRST,
    ballot_line(
        HYDE_PARK,
        "E05003",
        "POLYGON((-1.57 53.815,-1.51 53.815,-1.51 53.84,-1.57 53.815))",
        "Division",
    ),
]
FIRST_LISTS = {uprn: [LEEDS] for uprn in "12567"} | {"3": [EXETER]}


@pytest.fixture
def bake(tmp_path: Path):
    """Bake the drop with ``FIRST``, then rebuild from other exports on the same AddressBase;
    return the joined table's rows ``{uprn: ballot_ids}``."""
    data_root = tmp_path / "data"
    run = asset_runner(data_root)
    drop = write_lines(tmp_path / "drop.csv", ADDRESSES)

    def bake(lines: list[str], *, first: bool = False) -> dict:
        export = write_lines(tmp_path / "ballots.csv", lines)
        if first:
            result = run(addressbase=drop, ballots=export)
        else:
            result = run(REBUILD, ballots=export, guard_rails=ALLOW)
        assert result.success
        rows = pq.read_table(data_root / LAYER.joined.prefix, partitioning="hive").to_pylist()
        return {r["uprn"]: r["ballot_ids"] for r in rows}

    bake.store = LocalLayerStore(root=str(data_root))
    bake.data_root = data_root
    return bake


def record(bake, letter: str):
    return partition_record(bake.store, LAYER.joined.prefix, letter)


def leeds_file(bake) -> Path:
    (path,) = (bake.data_root / LAYER.joined.prefix / "first_letter=L").glob("*.parquet")
    return path


def plant(bake, uprns: set[str]) -> None:
    """Give the addresses ``uprns`` the list ``["planted"]`` in the joined Leeds letter."""
    path = leeds_file(bake)
    table = pq.read_table(path)
    lists = [
        ["planted"] if uprn in uprns else ids
        for uprn, ids in zip(
            table["uprn"].to_pylist(), table["ballot_ids"].to_pylist(), strict=True
        )
    ]
    column = pa.array(lists, table.schema.field("ballot_ids").type)
    index = table.schema.get_field_index("ballot_ids")
    pq.write_table(table.set_column(index, "ballot_ids", column), path)


def test_only_the_addresses_in_the_changed_box_are_joined_again(bake):
    """1 lies outside HYDE PARK's box, 7 inside it: a list planted in 1 stays, the one
    planted in 7 is worked out again."""
    assert bake(FIRST, first=True) == FIRST_LISTS
    plant(bake, {"1", "7"})
    rows = bake(WITH_HYDE_PARK)
    assert rows == FIRST_LISTS | {"1": ["planted"], "5": [LEEDS, HYDE_PARK]}


def test_the_record_names_the_outcodes_whose_rows_changed(bake):
    bake(FIRST, first=True)
    before = {letter: record(bake, letter) for letter in "EL"}
    rows = bake(WITH_HYDE_PARK)
    assert rows == FIRST_LISTS | {"5": [LEEDS, HYDE_PARK]}
    after = {letter: record(bake, letter) for letter in "EL"}
    assert after["E"].token == before["E"].token, "Exeter kept"
    assert after["L"].token != before["L"].token
    assert after["L"].changes == RowChanges(since=before["L"].token, outcodes=["LS2"], rows=1)
    assert after["L"].rows == 5


def test_the_letter_keeps_the_rows_whose_lists_changed_with_both_lists(bake):
    """5 changed, 7 was joined again to the same list: the letter keeps 5 alone, with its
    postcode and its lists before and after."""
    bake(FIRST, first=True)
    before = record(bake, "L")
    bake(WITH_HYDE_PARK)
    rows = changed_lists(bake.store, LAYER.joined.prefix, "L", since=before.token)
    assert rows.to_pylist() == [
        {"uprn": "5", "postcode": "LS2 7AA", "before": [LEEDS], "after": [LEEDS, HYDE_PARK]}
    ]
    assert changed_lists(bake.store, LAYER.joined.prefix, "L", since="another token") is None


def test_the_diff_counted_from_the_changed_lists_is_the_diff_of_the_files(bake):
    """The rebuild's version counts the change from the rows the letter kept; every changed
    file of both bakes read and compared gives the same diff. Given the rows, the comparison
    reads no file of the published bake: it holds none here, and the diff is the same."""
    bake(FIRST, first=True)
    first = published_manifest(bake.store, LAYER.prefix)
    before = record(bake, "L")
    bake(WITH_HYDE_PARK)
    ours = published_diff(bake.store, LAYER)
    assert ours == diff_of_files(bake.store, LAYER, first.bake_id)
    assert ours.addresses_changed == 1
    assert [(a.uprn, a.before, a.after) for a in ours.sample] == [(5, [LEEDS], [LEEDS, HYDE_PARK])]
    logged = {"L": changed_lists(bake.store, LAYER.joined.prefix, "L", since=before.token)}
    comparison = {
        "before": first,
        "after": published_manifest(bake.store, LAYER.prefix),
        "after_prefix": LAYER.prefix,
        "ids_column": LAYER.ids_column,
    }
    from_files = compare_versions(
        bake.store, before_prefix=version_prefix(LAYER.prefix, first.bake_id), **comparison
    )
    from_rows = compare_versions(
        bake.store, before_prefix="nothing here/", changed_lists=logged, **comparison
    )
    assert from_rows[0] == from_files[0] == ours
    assert from_rows[1].equals(from_files[1]), "the changed addresses the pictures draw"
    assert from_rows[1].to_pylist() == [{"uprn": 5, "change": IDS_CHANGED}]


def test_a_rebuild_version_holds_the_files_it_wrote_and_names_where_the_others_are(bake):
    """Only LS2's rows changed: the rebuild's version holds LS2's file and names the first
    bake's version for the others, which are not copied."""
    bake(FIRST, first=True)
    first = published_manifest(bake.store, LAYER.prefix)
    bake(WITH_HYDE_PARK)
    second = published_manifest(bake.store, LAYER.prefix)
    own = [
        key.rpartition("/")[2]
        for key in bake.store.list_keys(version_prefix(LAYER.prefix, second.bake_id))
        if key.endswith(".parquet")
    ]
    assert own == ["LS2.parquet"]
    assert second.held_by == {name: first.bake_id for name in first.files if name != "LS2.parquet"}
    for name, digest in second.files.items():
        data = bake.store.read_bytes(second.file_key(LAYER.prefix, name))
        assert (
            content_hash(data) == digest == content_hash(bake.store.read_bytes(LAYER.prefix + name))
        )


def test_a_letter_in_another_order_than_addressbase_is_merged_by_uprn(bake):
    """Rows joined again are looked for where they were read from AddressBase; a joined letter
    whose rows are in another order (here reversed) is merged by UPRN, not joined whole (the
    list planted in 1, outside HYDE PARK's box, stays)."""
    bake(FIRST, first=True)
    path = leeds_file(bake)
    table = pq.read_table(path)
    pq.write_table(table.take(pa.array(range(table.num_rows - 1, -1, -1))), path)
    plant(bake, {"1"})
    before = record(bake, "L")
    rows = bake(WITH_HYDE_PARK)
    assert rows == FIRST_LISTS | {"1": ["planted"], "5": [LEEDS, HYDE_PARK]}
    assert record(bake, "L").changes == RowChanges(since=before.token, outcodes=["LS2"], rows=1)


def test_the_joined_lists_are_written_as_dictionaries(bake):
    """A letter's few distinct IDs are repeated on thousands of rows: their strings are written
    once a row group, and the letter merged again keeps them so."""
    bake(FIRST, first=True)
    bake(WITH_HYDE_PARK)
    assert record(bake, "L").changes is not None
    metadata = pq.ParquetFile(leeds_file(bake)).metadata
    (ids,) = (
        metadata.row_group(0).column(i)
        for i in range(metadata.num_columns)
        if metadata.row_group(0).column(i).path_in_schema == "ballot_ids.list.element"
    )
    assert "RLE_DICTIONARY" in ids.encodings


def test_the_join_keeps_where_it_found_the_addresses_it_joined_again(bake):
    """5 and 7, those in HYDE PARK's box, with the token of the AddressBase letter they are in:
    where the version's map of changes finds the addresses whose lists changed."""
    bake(FIRST, first=True)
    bake(WITH_HYDE_PARK)
    found = KeptLocations.read(bake.store, LAYER.joined.prefix + REJOINED)
    assert sorted(found.located.to_pylist(), key=lambda row: row["uprn"]) == [
        {"uprn": "5", "longitude": -1.52, "latitude": 53.83, "letter": "L"},
        {"uprn": "7", "longitude": -1.56, "latitude": 53.82, "letter": "L"},
    ]
    addressbase = partition_record(bake.store, ADDRESSBASE_PARTITIONED_TABLE.prefix, "L")
    assert found.tokens == {"L": addressbase.token}


def test_the_addresses_joined_again_meet_only_the_ballots_near_them(bake, monkeypatch):
    """Only a ballot whose box meets a changed cell can contain an address in one: LEEDS's
    square and HYDE PARK's triangle do, EXETER's square is 250 km away."""
    given = []
    written = rejoined_addresses._rows_near

    def rows_near(store, table, geometry, grids, prefix):
        near = written(store, table, geometry, grids, prefix)
        (key,) = store.list_keys(prefix)
        with store.open_input(key) as source:
            given.append(sorted(pq.read_table(source)["election_id"].to_pylist()))
        return near

    monkeypatch.setattr(rejoined_addresses, "_rows_near", rows_near)
    bake(FIRST, first=True)
    assert bake(WITH_HYDE_PARK) == FIRST_LISTS | {"5": [LEEDS, HYDE_PARK]}
    assert given == [sorted([LEEDS, HYDE_PARK])]


def addresses_in_changed_cell(
    tmp_path, points: list[tuple[float, float]], **columns: list[str]
) -> rejoined_addresses._Found:
    """What ``_addresses_in`` finds of AddressBase letter Q, written in row groups of two (the
    ``columns`` and the ``points``' locations), in the cell of the box 1.0 to 1.5 E, 52.0 to
    52.5 N."""
    store = LocalLayerStore(root=str(tmp_path))
    rows = pa.table(
        {
            **columns,
            "longitude": [x for x, _ in points],
            "latitude": [y for _, y in points],
        }
    )
    sink = pa.BufferOutputStream()
    pq.write_table(rows, sink, row_group_size=2)
    store.write_bytes(
        f"{ADDRESSBASE_PARTITIONED_TABLE.prefix}first_letter=Q/part-0.parquet",
        sink.getvalue().to_pybytes(),
    )
    grid = BoxGrid.of(np.array([[1.0, 52.0, 1.5, 52.5]]))
    return rejoined_addresses._addresses_in(store, "Q", grid)


def test_addresses_in_changed_cells_are_found_in_every_row_group_at_their_positions(tmp_path):
    """Rows 1 and 4 of six, in row groups of two (the middle group has none and the last lies
    outside every cell by its statistics): their UPRNs, locations and postcodes, the other
    columns null."""
    points = [(-5.0, 50.0), (1.2, 52.2), (-5.0, 50.1), (-5.1, 50.0), (1.3, 52.3), (-6.0, 49.0)]
    found = addresses_in_changed_cell(
        tmp_path,
        points,
        uprn=[str(i) for i in range(6)],
        address=[f"{i} High Street" for i in range(6)],
        postcode=["QQ1 1AA", "QQ1 1AB", "QQ2 1AA", "QQ2 1AB", "QQ3 1AA", "QQ9 9ZZ"],
    )
    assert found.positions.tolist() == [1, 4]
    assert found.total == 6
    assert found.candidates.to_pylist() == [
        {"uprn": "1", "address": None, "postcode": "QQ1 1AB", "longitude": 1.2, "latitude": 52.2},
        {"uprn": "4", "address": None, "postcode": "QQ3 1AA", "longitude": 1.3, "latitude": 52.3},
    ]


def test_row_groups_read_for_their_locations_but_without_a_hit_do_not_shift_positions(
    tmp_path,
):
    """Four row groups of two: the first and last hold an address in the changed cell, the
    second's statistics meet the cell though neither of its addresses is in it, the third's
    do not. The groups read for their locations alone, or not read, still count towards the
    positions of the rows found after them."""
    points = [
        (-5.0, 50.0), (1.2, 52.2),  # a hit
        (-5.0, 50.1), (1.6, 52.6),  # a box meeting the cell, no address in it
        (-4.0, 51.0), (-4.1, 51.1),  # a box apart
        (1.4, 52.4), (-6.0, 49.0),  # a hit
    ]  # fmt: skip
    found = addresses_in_changed_cell(
        tmp_path,
        points,
        uprn=[f"U{i}" for i in range(8)],
        postcode=[f"QQ{i} 1AA" for i in range(8)],
    )
    assert found.positions.tolist() == [1, 6]
    assert found.candidates.select(["uprn", "postcode", "longitude"]).to_pylist() == [
        {"uprn": "U1", "postcode": "QQ1 1AA", "longitude": 1.2},
        {"uprn": "U6", "postcode": "QQ6 1AA", "longitude": 1.4},
    ]


def test_a_letter_mostly_in_changed_boxes_is_joined_whole(bake):
    """The ward removed covers every Leeds address: five in five."""
    bake(WITH_HYDE_PARK, first=True)
    plant(bake, {"1"})
    without_leeds = [line for line in WITH_HYDE_PARK if not line.startswith(LEEDS)]
    rows = bake(without_leeds)
    assert rows == {"1": [], "2": [], "5": [HYDE_PARK], "6": [], "7": [], "3": [EXETER]}
    assert record(bake, "L").changes is None


def test_a_letter_that_lost_an_address_joined_again_is_joined_whole(bake):
    """The joined letter should hold every address of the AddressBase letter; one that does
    not (5 deleted from it) cannot be mended address by address."""
    bake(FIRST, first=True)
    path = leeds_file(bake)
    table = pq.read_table(path)
    pq.write_table(table.filter(pa.compute.not_equal(table["uprn"], "5")), path)
    rows = bake(WITH_HYDE_PARK)
    assert rows == FIRST_LISTS | {"5": [LEEDS, HYDE_PARK]}
    assert record(bake, "L").changes is None


def test_an_engine_that_shares_table_names_joins_the_letter_whole(bake, monkeypatch):
    """Athena declares the partitioned AddressBase by name in a catalog other runs share:
    giving it the addresses joined again as that table would move it for them too."""
    bake(FIRST, first=True)
    monkeypatch.setattr(DuckDBQueryEngine, "shares_table_names", property(lambda self: True))
    plant(bake, {"1"})
    rows = bake(WITH_HYDE_PARK)
    assert rows == FIRST_LISTS | {"5": [LEEDS, HYDE_PARK]}
    assert record(bake, "L").changes is None
    assert AthenaQueryEngine.shares_table_names.fget(None) is True


def baked_from_scratch(bake, tmp_path: Path, lines: list[str]):
    """The manifest of a first bake of the drop with the export ``lines``, once checked to
    name the files, rows and addresses per ballot the rebuilt layer published."""
    scratch = tmp_path / "scratch"
    drop = write_lines(tmp_path / "drop.csv", ADDRESSES)
    export = write_lines(tmp_path / "scratch.csv", lines)
    assert asset_runner(scratch)(addressbase=drop, ballots=export).success
    rebuilt, fresh = (
        published_manifest(LocalLayerStore(root=str(root)), LAYER.prefix)
        for root in (bake.data_root, scratch)
    )
    assert rebuilt.files == fresh.files
    assert (rebuilt.rows, rebuilt.rows_with_ids, rebuilt.addresses_per_id) == (
        fresh.rows,
        fresh.rows_with_ids,
        fresh.addresses_per_id,
    )
    return fresh


def test_the_layer_of_a_rebuild_that_joined_addresses_again_is_the_layer_baked_from_scratch(
    bake, tmp_path
):
    bake(FIRST, first=True)
    bake(WITH_HYDE_PARK)
    assert record(bake, "L").changes is not None
    fresh = baked_from_scratch(bake, tmp_path, WITH_HYDE_PARK)
    assert fresh.addresses_per_id == {LEEDS: 5, EXETER: 1, HYDE_PARK: 1}


HEADINGLEY = f"local.leeds.headingley.{DATE}"
WITH_HEADINGLEY = [
    *WITH_HYDE_PARK,
    ballot_line(HEADINGLEY, "E05004", square(-1.565, -1.555, 53.815, 53.825), "Division"),
]


def test_a_letter_rebuilt_in_part_is_not_read_again_by_the_version(bake, tmp_path, monkeypatch):
    """After HYDE PARK (LS2's file now the second bake's), HEADINGLEY reaches 7 alone: the
    third bake derives LS6's file from the one the first bake's version holds and 7's new list,
    without reading letter L, and publishes what a bake from scratch of its export does."""
    bake(FIRST, first=True)
    bake(WITH_HYDE_PARK)
    second = published_manifest(bake.store, LAYER.prefix)
    assert second.held_by.get("LS6.parquet") and "LS2.parquet" not in second.held_by
    read = []
    original = outcode_files.read_joined

    def reading(store, keys, **options):
        read.extend(key for key in keys if LAYER.joined.prefix in key)
        return original(store, keys, **options)

    monkeypatch.setattr(outcode_files, "read_joined", reading)
    rows = bake(WITH_HEADINGLEY)
    assert rows["7"] == [LEEDS, HEADINGLEY]
    assert record(bake, "L").changes.outcodes == ["LS6"]
    assert read == [], "no joined letter read"
    baked_from_scratch(bake, tmp_path, WITH_HEADINGLEY)


POINT = pa.struct([("kind", pa.string()), ("n", pa.int32())])


@pytest.mark.parametrize(
    ("a", "b", "equal", "type"),
    [
        ([["x"], ["x", "y"], [], ["x"]], [["x"], ["x"], [], ["y"]], [1, 0, 1, 0], pa.string()),
        ([[None], ["x"]], [[None], [None]], [1, 0], pa.string()),
        (
            [[{"kind": "a", "n": 1}], [{"kind": "a", "n": 1}], [{"kind": None, "n": 2}]],
            [[{"kind": "a", "n": 1}], [{"kind": "a", "n": 2}], [{"kind": None, "n": 2}]],
            [1, 0, 1],
            POINT,
        ),
    ],
)
def test_lists_are_compared_element_by_element(a, b, equal, type):
    lists = pa.list_(type)
    found = lists_equal(pa.array(a, lists), pa.array(b, lists))
    assert found.tolist() == [bool(e) for e in equal]
    assert isinstance(found, np.ndarray)


WORDS = pa.dictionary(pa.int32(), pa.string())


@pytest.mark.parametrize("type", [pa.string(), POINT, WORDS])
def test_lists_at_positions_are_replaced_whatever_the_slices(type):
    """Both arrays are slices of larger ones (offsets not starting at zero); the lists
    replaced include empty ones, and the first and last positions. Dictionary-encoded elements
    come with a dictionary each, holding other words in another order."""
    if type == POINT:
        item = [{"kind": "k0", "n": 0}, {"kind": "k1", "n": 1}, {"kind": None, "n": 2}]
    else:
        item = ["a", "b", "c"]
    old = [[item[0]], [], [item[1], item[2]], [item[0]], [item[2]], []]
    new = [[item[2]], [], [item[0], item[1]]]
    built = pa.list_(pa.string() if type == WORDS else type)
    extra = ["d"] if type == WORDS else [item[1]]
    padded_old = pa.array([extra, *old, [item[0]]], built).slice(1, len(old)).cast(pa.list_(type))
    padded_new = pa.array([[item[0], item[0]], *new], built).slice(1, len(new)).cast(pa.list_(type))
    if type == WORDS:
        assert padded_old.values.dictionary != padded_new.values.dictionary
    at = np.array([0, 2, 5])
    expected = list(old)
    for position, replacement in zip(at, new, strict=True):
        expected[position] = replacement
    assert replaced_lists(padded_old, at, padded_new).to_pylist() == expected
