"""The pictures and the table a bake's version shows: the coverage map, the addresses per ID
and the map of changes, on a hand-drawn map baked through the real assets, read back pixel by
pixel; and the samples they draw, checked against plain computations.

Map (lon, lat), all squares; each address's ballots are worked out by hand below, and checked
with shapely.
  HEADINGLEY  -1.60..-1.50 x 53.80..53.90
  MOORTOWN    -1.30..-1.20 x 53.80..53.90   no address: a ballot reaching none
  MAYOR       -1.65..-1.55 x 53.75..53.95   overlaps HEADINGLEY's west
"""

from __future__ import annotations

import base64
import io
import logging
import random
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import matplotlib.image
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from matplotlib.colors import to_rgba

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.bake import bake
from databaker.definitions import Settings
from databaker.layers import sampling
from databaker.layers.diff import FIRST_IDS, IDS_CHANGED, NO_IDS_NOW, compare_versions
from databaker.layers.located import LOCATED_COLUMNS, REJOINED, KeptLocations
from databaker.layers.outcode_files import write_outcode_files
from databaker.layers.overview import (
    CHANGE_COLOURS,
    COUNT_COLOURS,
    _AddressBase,
    _locating,
    _Wanted,
    overview,
)
from databaker.layers.per_id import AddressesPerId
from databaker.layers.pictures import (
    BACKGROUND_ADDRESS,
    NO_ADDRESS,
    NO_ADDRESS_ALPHA,
    Classes,
    Frame,
    Shapes,
    _polygons,
    draw_map,
)
from databaker.layers.versions import published_manifest, version_prefix
from databaker.resources import LocalLayerStore
from databaker.staging import PartitionRecord, write_partition_record
from databaker_tests.conftest import address_line, ballot_line, square, write_lines
from databaker_tests.test_layer_diff import LAYER, NEW, OLD, Addresses
from databaker_tests.test_layer_diff import bake as bake_version

DATE = "2027-05-06"
HEADINGLEY, MOORTOWN = f"local.leeds.headingley.{DATE}", f"local.leeds.moortown.{DATE}"
MAYOR = f"mayor.west-yorkshire.{DATE}"


AREAS = {
    HEADINGLEY: square(-1.60, -1.50, 53.80, 53.90),
    MOORTOWN: square(-1.30, -1.20, 53.80, 53.90),
    MAYOR: square(-1.65, -1.55, 53.75, 53.95),
}
MOORTOWN_GROWN = square(-1.45, -1.20, 53.80, 53.90)
"""MOORTOWN in the next export, reaching the address in no area so far."""

# uprn, postcode, lon, lat, how many ballots
ADDRESSES = [
    ("101", "LS6 1AA", -1.58, 53.85, 2),  # HEADINGLEY and MAYOR
    ("102", "LS6 1AB", -1.52, 53.85, 1),
    ("103", "LS6 1AD", -1.53, 53.82, 1),
    ("104", "LS6 2AA", -1.62, 53.78, 1),  # MAYOR only
    ("105", "LS7 1AA", -1.40, 53.85, 0),  # in MOORTOWN_GROWN
    ("106", "DL1 1AA", -1.10, 53.95, 0),
]
PICTURE = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def ballots_file(path: Path, areas: dict[str, str]) -> Path:
    lines = ["election_id,geography_id,geography_text,source_table"]
    lines += [
        ballot_line(ballot, f"E0500{n}", wkt, "Division")
        for n, (ballot, wkt) in enumerate(areas.items())
    ]
    return write_lines(path, lines)


def drop_file(path: Path) -> Path:
    return write_lines(
        path, [address_line(u, f"{u} Otley Road", p, x, y) for u, p, x, y, _ in ADDRESSES]
    )


def image(markdown: str) -> np.ndarray:
    """The markdown's picture as ``(rows, columns, RGBA)`` bytes."""
    png = base64.b64decode(PICTURE.search(markdown).group(1))
    return np.round(matplotlib.image.imread(io.BytesIO(png), format="png") * 255).astype(int)


def colour(name: str, alpha: float = 1.0) -> np.ndarray:
    """``name`` painted at ``alpha`` over white, as RGBA bytes."""
    rgb = np.array(to_rgba(name)[:3]) * alpha + (1 - alpha)
    return np.round(np.append(rgb, 1.0) * 255).astype(int)


def frame_of(areas: dict[str, str]) -> Frame:
    """The frame the bake draws in: every address is in the sample, every area drawn."""
    return Frame.around(
        np.array([a[2] for a in ADDRESSES]),
        np.array([a[3] for a in ADDRESSES]),
        shapely.from_wkt(list(areas.values())),
    )


def table_rows(markdown: str) -> dict[str, list[tuple[str, ...]]]:
    """Each bold title's table rows, as tuples of cell texts without backticks."""
    tables: dict[str, list[tuple[str, ...]]] = {}
    title = ""
    for line in markdown.splitlines():
        if line.startswith("**"):
            title = line.split("**")[1]
            tables[title] = []
        elif line.startswith("| `"):
            cells = tuple(c.strip().strip("`") for c in line.strip("|").split("|"))
            tables[title].append(cells)
    return tables


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pictures") / "data"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("inputs")


@pytest.fixture(scope="module")
def first(root, inputs) -> dict:
    """The version's metadata of the first bake (nothing published before it)."""
    settings = Settings(data_root=str(root))
    baked = bake(
        addressbase=str(drop_file(inputs / "drop.csv")),
        ballots=str(ballots_file(inputs / "ballots.csv", AREAS)),
        settings=settings,
    )
    return baked.metadata["current_elections_version"]


@pytest.fixture(scope="module")
def again(first, root, inputs) -> dict:
    """A rebake of the same inputs."""
    baked = bake(
        addressbase=str(inputs / "drop.csv"),
        ballots=str(inputs / "ballots.csv"),
        settings=Settings(data_root=str(root)),
    )
    return baked.metadata["current_elections_version"]


@pytest.fixture(scope="module")
def grown(again, root, inputs) -> dict:
    """A bake of the next export, where MOORTOWN reaches address 105."""
    baked = bake(
        addressbase=str(inputs / "drop.csv"),
        ballots=str(ballots_file(inputs / "next.csv", {**AREAS, MOORTOWN: MOORTOWN_GROWN})),
        settings=Settings(data_root=str(root)),
    )
    return baked.metadata["current_elections_version"]


def test_the_coverage_map_is_a_png_of_its_frame_s_size(first):
    frame = frame_of(AREAS)
    assert image(first["coverage_map"]).shape == (frame.png_height, frame.png_width, 4)
    assert frame.width <= 640 and frame.height <= 720
    assert (frame.west, frame.south) < (-1.65, 53.75) and (frame.east, frame.north) > (-1.10, 53.95)


def test_each_address_has_the_colour_of_its_number_of_ballots(first):
    shapes = shapely.from_wkt(list(AREAS.values()))
    frame, pixels = frame_of(AREAS), image(first["coverage_map"])
    for uprn, _, lon, lat, ballots in ADDRESSES:
        assert shapely.contains_xy(shapes, lon, lat).sum() == ballots, uprn
        assert list(pixels[frame.pixel(lon, lat)]) == list(colour(COUNT_COLOURS[ballots])), uprn
    assert "6 of 6 addresses" in first["coverage_map"]


def test_the_area_reaching_no_address_is_filled_in_red_and_the_others_are_not(first):
    frame, pixels = frame_of(AREAS), image(first["coverage_map"])
    red = colour(NO_ADDRESS, NO_ADDRESS_ALPHA)
    assert np.abs(pixels[frame.pixel(-1.22, 53.88)] - red).max() <= 2  # in MOORTOWN
    assert list(pixels[frame.pixel(-1.51, 53.89)]) == [255, 255, 255, 255]  # in HEADINGLEY
    assert (
        "3 ballots' areas outlined (3 pieces); 1 ballots reaching no address"
        in (first["coverage_map"])
    )


def test_the_table_lists_the_addresses_of_each_ballot_and_the_ballot_reaching_none(first):
    lons = np.array([a[2] for a in ADDRESSES])
    lats = np.array([a[3] for a in ADDRESSES])
    counts = {
        b: int(shapely.contains_xy(shapely.from_wkt(w), lons, lats).sum()) for b, w in AREAS.items()
    }
    assert counts == {HEADINGLEY: 3, MOORTOWN: 0, MAYOR: 2}
    text = first["addresses_per_ballot"]
    assert text.startswith("3 ballots: 2 reach addresses, 1 reach none.")
    assert table_rows(text) == {
        "Addresses per ballot": [(MAYOR, "2"), (HEADINGLEY, "3")],
        "Ballots reaching no address": [(MOORTOWN,)],
    }


def test_a_rebake_draws_the_same_map_and_no_map_of_changes(first, again):
    assert again["addresses_changed"] == 0
    assert again["coverage_map"] == first["coverage_map"]
    assert "changes_map" not in first and "changes_map" not in again


def test_a_bake_that_changes_addresses_ballots_shows_where_they_are(grown):
    assert grown["addresses_changed"] == 1
    frame = frame_of({**AREAS, MOORTOWN: MOORTOWN_GROWN})
    pixels = image(grown["changes_map"])
    assert pixels.shape == (frame.png_height, frame.png_width, 4)
    assert list(pixels[frame.pixel(-1.40, 53.85)]) == list(colour(CHANGE_COLOURS[FIRST_IDS]))
    assert list(pixels[frame.pixel(-1.52, 53.85)]) == list(colour(BACKGROUND_ADDRESS))
    assert "1 addresses' ballots changed against bake" in grown["changes_map"]
    assert table_rows(grown["addresses_per_ballot"])["Addresses per ballot"] == [
        (MOORTOWN, "1"),
        (MAYOR, "2"),
        (HEADINGLEY, "3"),
    ]


def overview_of(store: LocalLayerStore, layer, ids_named: set[str]) -> dict:
    """What the version step shows of ``layer``'s published files in ``store``: its outcode
    files written again, compared with nothing published."""
    written = write_outcode_files(
        store,
        joined_prefix=layer.joined.prefix,
        addresses=ADDRESSBASE_PARTITIONED_TABLE.prefix,
        output_prefix="scratch/",
        columns=layer.columns,
        ids_column=layer.ids_column,
    )
    diff, changes = compare_versions(
        store,
        before=None,
        before_prefix=layer.prefix,
        after=published_manifest(store, layer.prefix),
        after_prefix=layer.prefix,
        ids_column=layer.ids_column,
    )
    return overview(logging.getLogger("test"), store, layer, written, ids_named, diff, changes)


def test_a_layer_without_areas_still_gets_the_address_map_and_the_table(grown, root, caplog):
    store = LocalLayerStore(root=str(root))
    layer = replace(CURRENT_ELECTIONS, input=replace(CURRENT_ELECTIONS.input, areas=None))
    found = overview_of(store, layer, set(AREAS))
    assert "The layer has no areas to draw" in found["coverage_map"].value
    frame = Frame.around(
        np.array([a[2] for a in ADDRESSES]), np.array([a[3] for a in ADDRESSES]), np.array([])
    )
    pixels = image(found["coverage_map"].value)
    assert pixels.shape == (frame.png_height, frame.png_width, 4)
    for _, _, lon, lat, _ in ADDRESSES[:4]:
        assert list(pixels[frame.pixel(lon, lat)]) != [255, 255, 255, 255]
    assert table_rows(found["addresses_per_ballot"].value)["Addresses per ballot"]


def test_a_picture_that_cannot_be_drawn_is_left_out_with_a_warning(root, caplog):
    store = LocalLayerStore(root=str(root))

    def broken(store):
        raise RuntimeError("no such geometry")

    layer = replace(CURRENT_ELECTIONS, input=replace(CURRENT_ELECTIONS.input, areas=broken))
    with caplog.at_level(logging.WARNING):
        found = overview_of(store, layer, set())
    assert set(found) == {"addresses_per_ballot"}
    assert "no such geometry" in caplog.text


def test_a_bake_whose_areas_cannot_be_read_still_bakes(tmp_path, inputs, first):
    def broken(store):
        raise RuntimeError("no such geometry")

    layer = replace(CURRENT_ELECTIONS, input=replace(CURRENT_ELECTIONS.input, areas=broken))
    baked = bake(
        layer=layer,
        addressbase=str(inputs / "drop.csv"),
        ballots=str(inputs / "ballots.csv"),
        settings=Settings(data_root=str(tmp_path / "data")),
    )
    version = baked.metadata["current_elections_version"]
    assert "coverage_map" not in version and "addresses_per_ballot" in version


def test_points_lines_and_collections_among_the_areas_draw_their_polygons_only():
    ring = shapely.from_wkt(square(0, 1, 0, 1))
    areas = np.array(
        [
            shapely.Point(0.5, 0.5),
            shapely.LineString([(0, 0), (1, 1)]),
            shapely.from_wkt("POLYGON EMPTY"),
            shapely.GeometryCollection([ring, shapely.Point(2, 2)]),
            None,
        ]
    )
    frame = Frame.around(np.array([0.5]), np.array([0.5]), areas[:4])
    shapes = Shapes.of(areas, frame)
    assert shapes.path is not None and len(shapes.path.vertices) == 5
    picture = draw_map(
        frame,
        Classes(np.array([0.5]), np.array([0.5]), np.array([1]), COUNT_COLOURS, ["n"] * 6),
        cell=2,
        areas=shapes,
        empty=Shapes.of(areas, frame, points=True),
    )
    assert image(picture.markdown("x")).shape == (frame.png_height, frame.png_width, 4)


def test_the_table_shows_the_ten_fewest_and_most_when_there_are_many():
    counts = {f"ballot.{n:02}": n for n in range(1, 26)}
    table = AddressesPerId.of(counts, [*counts, "gone.a", "gone.b"])
    text = table.markdown("ballot")
    assert text.startswith("27 ballots: 25 reach addresses, 2 reach none.")
    assert table_rows(text) == {
        "The 10 ballots with fewest addresses": [(f"ballot.{n:02}", str(n)) for n in range(1, 11)],
        "The 10 ballots with most addresses": [
            (f"ballot.{n:02}", str(n)) for n in range(25, 15, -1)
        ],
        "Ballots reaching no address": [("gone.a",), ("gone.b",)],
    }


def test_the_sample_is_the_lowest_ranked_addresses_whatever_their_letters_and_order(
    tmp_path, monkeypatch
):
    """Shuffled addresses over four letters, sampled while the outcode files are written, give
    the addresses a plain ranking of the whole picks, each with its number of IDs."""
    monkeypatch.setattr(sampling, "SAMPLE_SIZE", 25)
    store = LocalLayerStore(root=str(tmp_path / "data"))
    rng = random.Random(3)
    uprns = rng.sample(range(1, 10_000), 300)
    ids = {u: [f"b.{i}" for i in range(rng.randint(0, 3))] for u in uprns}
    for letter in "ABCD":
        rows = [u for n, u in enumerate(uprns) if "ABCD"[n % 4] == letter]
        table = pa.table(
            {
                "uprn": [str(u) for u in rows],
                "address": ["a"] * len(rows),
                "postcode": [f"{letter}1 1AA"] * len(rows),
                "addressbase_source": ["drop"] * len(rows),
                "ballot_ids": pa.array([ids[u] for u in rows], pa.list_(pa.string())),
            }
        )
        with store.open_output(f"joined/first_letter={letter}/data.parquet") as sink:
            pq.write_table(table, sink)
    written = write_outcode_files(
        store,
        joined_prefix="joined/",
        addresses=ADDRESSBASE_PARTITIONED_TABLE.prefix,
        output_prefix="out/",
        columns=["uprn", "address", "postcode", "addressbase_source", "ballot_ids", "outcode"],
        ids_column="ballot_ids",
    )
    ranks = sampling.uprn_ranks(pa.array(uprns, pa.int64()))
    lowest = [uprns[i] for i in np.argsort(ranks)[:25]]
    found = written.address_sample.to_pylist()
    assert sorted((int(r["uprn"]), r["ids"]) for r in found) == sorted(
        (u, len(ids[u])) for u in lowest
    )


def test_ranks_spread_consecutive_uprns_evenly():
    uprns = np.arange(1, 100_001)
    picked = uprns[sampling.lowest_ranks(sampling.uprn_ranks(pa.array(uprns)), 2_000)]
    per_tenth = np.bincount((picked - 1) // 10_000, minlength=10)
    assert per_tenth.min() > 140 and per_tenth.max() < 260


def plain_changes(old: Addresses, new: Addresses) -> dict[int, int]:
    """Each address whose IDs differ, with how (an absent UPRN has no IDs)."""
    found = {}
    for uprn in old.keys() | new.keys():
        before = old[uprn][1] if uprn in old else frozenset()
        after = new[uprn][1] if uprn in new else frozenset()
        if before != after:
            found[uprn] = FIRST_IDS if not before else NO_IDS_NOW if not after else IDS_CHANGED
    return found


def changes_between(store: LocalLayerStore, old: Addresses, new: Addresses) -> dict[int, int]:
    before, after = bake_version(store, "1", old), bake_version(store, "2", new)
    diff, changes = compare_versions(
        store,
        before=before,
        before_prefix=version_prefix(LAYER, "1"),
        after=after,
        after_prefix=version_prefix(LAYER, "2"),
        ids_column="ballot_ids",
    )
    assert changes.num_rows <= diff.addresses_changed
    return dict(zip(*changes.to_pydict().values(), strict=True))


def test_the_diff_keeps_each_changed_address_with_how_it_changed(tmp_path):
    store = LocalLayerStore(root=str(tmp_path / "data"))
    found = changes_between(store, OLD, NEW)
    assert found == plain_changes(OLD, NEW)
    assert found == {
        2: IDS_CHANGED,
        3: NO_IDS_NOW,
        4: NO_IDS_NOW,
        5: FIRST_IDS,
        7: IDS_CHANGED,  # recoded into another letter, with another ballot
        8: FIRST_IDS,
    }


@pytest.mark.parametrize("seed", range(3))
def test_the_diff_keeps_the_lowest_ranked_changes_when_there_are_many(tmp_path, monkeypatch, seed):
    monkeypatch.setattr(sampling, "SAMPLE_SIZE", 15)
    store = LocalLayerStore(root=str(tmp_path / "data"))
    rng = random.Random(seed)
    ballots = [f"local.{n}" for n in range(6)]

    def ids() -> frozenset[str]:
        return frozenset(rng.sample(ballots, rng.choice([0, 1, 2])))

    old = {u: (f"{rng.choice('ABC')}1 1AA", ids()) for u in range(1, 300)}
    new = {
        u: (postcode, ids() if rng.random() < 0.4 else found)
        for u, (postcode, found) in old.items()
    }
    expected = plain_changes(old, new)
    assert len(expected) > 15
    ranks = sampling.uprn_ranks(pa.array(list(expected), pa.int64()))
    lowest = [list(expected)[i] for i in np.argsort(ranks)[:15]]
    assert changes_between(store, old, new) == {u: expected[u] for u in lowest}


def test_the_boundary_reviews_sample_bake_carries_its_pictures(tmp_path):
    root = tmp_path / "data"
    baked = bake(layer="current_boundary_reviews", settings=Settings(data_root=str(root)))
    version = baked.metadata["current_boundary_reviews_version"]
    pixels = image(version["coverage_map"])
    assert pixels.shape[0] >= 220 and pixels.shape[1] > 230
    manifest = published_manifest(
        LocalLayerStore(root=str(root)), "current_boundary_reviews_parquet/"
    )
    listed = {
        review: int(count.replace(",", ""))
        for rows in table_rows(version["addresses_per_boundary_review"]).values()
        for review, count, *_ in [(*row, "") for row in rows]
        if count
    }
    assert listed == manifest.addresses_per_id
    assert "boundary reviews' areas outlined" in version["coverage_map"]


def test_the_pictures_benchmark_times_and_writes_them(grown, root, tmp_path):
    from benchmarks.pictures import run

    timings = run(root, "current_elections", tmp_path)
    assert set(timings) == {"sampling", "pictures", "pictures_cpu"}
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["current_elections-changes_map.png", "current_elections-coverage_map.png"]


def test_a_rank_set_finds_exactly_its_uprns_among_many():
    """A sample (the lowest ranks), UPRNs of any rank, both, and none, each found among 50,000
    as a plain set lookup finds them; text and numbers are the same UPRNs, nulls none."""
    rng = np.random.default_rng(5)
    uprns = rng.choice(10**12, 50_000, replace=False) + 1
    ranks = sampling.uprn_ranks(pa.array(uprns))
    lowest = uprns[sampling.lowest_ranks(ranks, 500)].tolist()
    anywhere = [*rng.choice(uprns, 300).tolist(), *(rng.choice(10**12, 300) + 10**12).tolist()]
    for wanted in (lowest, anywhere, lowest + anywhere, []):
        expected = [i for i, u in enumerate(uprns.tolist()) if u in set(wanted)]
        as_text = pa.array([str(u) for u in wanted] + [None], pa.string())
        assert sampling.RankSet.of(pa.array(wanted, pa.int64())).find(ranks).tolist() == expected
        assert sampling.RankSet.of(as_text).find(ranks).tolist() == expected


def test_the_sampled_and_changed_addresses_are_located_in_every_file_and_row_group(tmp_path):
    """Two letters of the partitioned AddressBase in row groups of 40: the addresses of each
    wanted UPRN are found wherever they are, a UPRN given twice (repeated in the drop) with
    both its rows, a UPRN AddressBase lacks not at all, a row without a UPRN never."""
    store = LocalLayerStore(root=str(tmp_path / "data"))
    rng = random.Random(11)
    uprns = rng.sample(range(1, 10**9), 600)
    rows = [(str(u), round(rng.uniform(-5, 1), 6), round(rng.uniform(50, 55), 6)) for u in uprns]
    rows += [(rows[7][0], 0.5, 51.5), (None, 0.25, 52.0)]
    for n, letter in enumerate("LM"):
        part = rows[n::2]
        table = pa.table(
            {
                "uprn": pa.array([r[0] for r in part], pa.string()),
                "postcode": [f"{letter}1 1AA"] * len(part),
                "longitude": [r[1] for r in part],
                "latitude": [r[2] for r in part],
            }
        )
        key = f"{ADDRESSBASE_PARTITIONED_TABLE.prefix}first_letter={letter}/part-0.parquet"
        with store.open_output(key) as sink:
            pq.write_table(table, sink, row_group_size=40)
    ranks = sampling.uprn_ranks(pa.array(uprns))
    sample = [str(uprns[i]) for i in sampling.lowest_ranks(ranks, 30)]
    changed = [*rng.sample(uprns, 20), uprns[7], 10**9 + 1]
    with ThreadPoolExecutor(max_workers=2) as pool:
        files = _AddressBase.reading(store, pool, None, "joined/").files
        located = _locating(
            store,
            [pa.chunked_array([sample], pa.string()), pa.chunked_array([changed], pa.int64())],
            pool,
            [key for keys in files.values() for key in keys],
        )()
    wanted = set(sample) | {str(u) for u in changed}
    assert located.schema.names == ["uprn", "longitude", "latitude", "letter"]
    assert sorted(located.to_pylist(), key=str) == sorted(
        (
            {"uprn": u, "longitude": x, "latitude": y, "letter": "LM"[n % 2]}
            for n, (u, x, y) in enumerate(rows)
            if u in wanted
        ),
        key=str,
    )
    assert located["uprn"].to_pylist().count(str(uprns[7])) == 2


def test_the_outlines_keep_the_polygons_of_every_kind_of_area_in_order():
    """Polygons, multipolygons and collections give their polygons in the order shapely's
    ``get_parts`` lists them, the polygons themselves and not copies."""
    squares = [shapely.from_wkt(square(n, n + 1, 0, 1)) for n in range(6)]
    areas = np.array(
        [
            squares[0],
            shapely.MultiPolygon(squares[1:3]),
            shapely.Point(9, 9),
            squares[3],
            shapely.GeometryCollection([squares[4], shapely.LineString([(0, 0), (1, 1)])]),
            squares[5],
        ]
    )
    parts = shapely.get_parts(shapely.get_parts(areas))
    expected = parts[shapely.get_type_id(parts) == shapely.GeometryType.POLYGON]
    found = _polygons(areas)
    assert shapely.equals_exact(found, expected, 0).all() and len(found) == len(expected) == 6
    assert found[0] is squares[0] and found[3] is squares[3] and found[5] is squares[5]
    assert _polygons(np.array(squares)).tolist() == squares


def test_changed_addresses_the_join_located_are_taken_while_their_letter_holds(
    tmp_path, monkeypatch
):
    """The join kept where it found addresses of L and M; M has been written again since (its
    token differs). A changed address the join found in L is taken from what it kept (its
    kept location, planted here, shows it): with nothing else to locate, no letter is read.
    One it found in M is read from M, as AddressBase holds it now."""
    store = LocalLayerStore(root=str(tmp_path / "data"))
    prefix = ADDRESSBASE_PARTITIONED_TABLE.prefix
    rows = {"L": [("11", -1.5, 53.8), ("12", -1.6, 53.7)], "M": [("21", -2.2, 53.4)]}
    tokens = {}
    for letter, part in rows.items():
        table = pa.table(
            {
                "uprn": pa.array([r[0] for r in part], pa.string()),
                "longitude": [r[1] for r in part],
                "latitude": [r[2] for r in part],
            }
        )
        with store.open_output(f"{prefix}first_letter={letter}/part-0.parquet") as sink:
            pq.write_table(table, sink)
        record = PartitionRecord.new(len(part))
        write_partition_record(store, prefix, letter, record)
        tokens[letter] = record.token
    planted = [("11", 9.0, 9.0, "L"), ("21", 8.0, 8.0, "M")]
    KeptLocations(
        pa.table(dict(zip(LOCATED_COLUMNS.names, zip(*planted, strict=True), strict=True))),
        {"L": tokens["L"], "M": "an earlier token of M"},
    ).write(store, "joined/" + REJOINED)
    opened: list[str] = []
    opening = LocalLayerStore.open_input

    def open_input(self, key: str):
        if key.startswith(prefix):
            opened.append(key.split("first_letter=")[1][0])
        return opening(self, key)

    monkeypatch.setattr(LocalLayerStore, "open_input", open_input)

    def locate(changed: list[int]):
        opened.clear()
        wanted = _Wanted(
            pa.table({"uprn": pa.array([], pa.string()), "letter": pa.array([], pa.string())}),
            pa.chunked_array([changed], pa.int64()),
            frozenset("LM"),
        )
        with ThreadPoolExecutor(max_workers=2) as pool:
            located = _AddressBase.reading(store, pool, None, "joined/").locating(wanted)()
        rows = sorted(located.table.to_pylist(), key=lambda row: row["uprn"])
        return rows, located.by_join, sorted(set(opened))

    from_join = {"uprn": "11", "longitude": 9.0, "latitude": 9.0, "letter": "L"}
    assert locate([11]) == ([from_join], 1, [])
    rows, by_join, read = locate([11, 21])
    assert rows == [from_join, {"uprn": "21", "longitude": -2.2, "latitude": 53.4, "letter": "M"}]
    assert by_join == 1
    assert "M" in read
