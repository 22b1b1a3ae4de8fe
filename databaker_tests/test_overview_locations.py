"""Where the pictures' addresses are found: a rebake on the same AddressBase takes the published
bake's located sample for the letters whose token is unchanged and reads only the letters where
the rest can be, and draws the pictures a full scan of AddressBase draws.

Addresses in six letters (B, D, H, L, W, Y), baked through the real assets with a sample of
``SAMPLE`` addresses, then rebaked on the same AddressBase from an export where one York ward
grew to reach the York addresses east of -1.08 (they keep the city's ballot and gain the ward's:
the share of addresses with a ballot does not move).
"""

from __future__ import annotations

import logging
import random
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.bake import bake
from databaker.definitions import Settings
from databaker.layers import sampling, version
from databaker.layers.diff import compare_versions
from databaker.layers.located import LOCATED, KeptLocations
from databaker.layers.outcode_files import write_outcode_files
from databaker.layers.overview import overview
from databaker.layers.versions import kept_versions, version_prefix
from databaker.resources import LocalLayerStore
from databaker.staging import (
    PartitionRecord,
    is_data_file,
    partition_record,
    write_partition_record,
)
from databaker_tests.conftest import address_line, ballot_line, square, write_lines

SAMPLE = 15
DATE = "2027-05-06"
LEEDS, BRADFORD, HARROGATE = (f"local.{p}.ward.{DATE}" for p in ("leeds", "bradford", "harrogate"))
YORK_CITY, YORK_WARD = f"mayor.york.{DATE}", f"local.york.ward.{DATE}"
MAYOR = f"mayor.west-yorkshire.{DATE}"


AREAS = {
    LEEDS: square(-1.62, -1.48, 53.76, 53.84),
    BRADFORD: square(-1.80, -1.70, 53.75, 53.83),
    HARROGATE: square(-1.60, -1.48, 53.95, 54.03),
    YORK_CITY: square(-1.14, -1.02, 53.92, 54.00),
    YORK_WARD: square(-1.14, -1.08, 53.92, 54.00),
    MAYOR: square(-1.85, -1.40, 53.60, 53.90),
}
YORK_WARD_GROWN = square(-1.14, -1.02, 53.92, 54.00)
PLACES = {  # postcode area: centre (lon, lat) of its addresses
    "LS": (-1.55, 53.80),
    "BD": (-1.75, 53.79),
    "HG": (-1.54, 53.99),
    "YO": (-1.08, 53.96),
    "WF": (-1.50, 53.68),
    "DL": (-1.55, 54.52),
}


def make_addresses() -> list[tuple[str, str, float, float]]:
    """uprn, postcode, lon, lat: ten addresses around each place."""
    rng = random.Random(7)
    uprns = rng.sample(range(10_000, 10**8), 10 * len(PLACES))
    found = []
    for n, (area, (x, y)) in enumerate(PLACES.items()):
        for i in range(10):
            lon, lat = (
                round(x + rng.uniform(-0.035, 0.035), 5),
                round(y + rng.uniform(-0.03, 0.03), 5),
            )
            found.append((str(uprns[10 * n + i]), f"{area}{i % 3 + 1} {i}AB", lon, lat))
    return found


ADDRESSES = make_addresses()


def ballots_file(path: Path, areas: dict[str, str]) -> Path:
    lines = ["election_id,geography_id,geography_text,source_table"]
    lines += [
        ballot_line(ballot, f"E0500{n}", wkt, "Division")
        for n, (ballot, wkt) in enumerate(areas.items())
    ]
    return write_lines(path, lines)


class Opened:
    """The AddressBase files opened while it is on (from any thread), by letter."""

    def __init__(self) -> None:
        self.on = False
        self.keys: list[str] = []

    def letters(self) -> set[str]:
        return {key.split("first_letter=")[1][0] for key in self.keys}


@pytest.fixture(scope="module")
def opened() -> Iterator[Opened]:
    """Spies on the store's reads of AddressBase; a small sample for the whole module."""
    spy = Opened()
    reading = LocalLayerStore.open_input

    def open_input(self, key: str):
        if spy.on and key.startswith(ADDRESSBASE_PARTITIONED_TABLE.prefix):
            spy.keys.append(key)
        return reading(self, key)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sampling, "SAMPLE_SIZE", SAMPLE)
        patch.setattr(LocalLayerStore, "open_input", open_input)
        yield spy


@pytest.fixture(scope="module")
def baked(tmp_path_factory, opened) -> tuple[Path, list[dict], list[set[str]]]:
    """The data root after a bake and a rebake on the same AddressBase, each bake's version's
    metadata, and the AddressBase letters each bake's pictures read."""
    inputs = tmp_path_factory.mktemp("inputs")
    root = tmp_path_factory.mktemp("locations") / "data"
    drop = write_lines(
        inputs / "drop.csv",
        [address_line(u, f"{u} Main Street", p, x, y) for u, p, x, y in ADDRESSES],
    )
    drawing = version.overview
    read: list[set[str]] = []

    def spied(*args, **kwargs):
        opened.keys.clear()
        opened.on = True
        try:
            return drawing(*args, **kwargs)
        finally:
            opened.on = False
            read.append(opened.letters())

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(version, "overview", spied)
        first = bake(
            addressbase=str(drop),
            ballots=str(ballots_file(inputs / "ballots.csv", AREAS)),
            settings=Settings(data_root=str(root)),
        )
        again = bake(
            keep_addressbase=True,
            ballots=str(ballots_file(inputs / "next.csv", {**AREAS, YORK_WARD: YORK_WARD_GROWN})),
            settings=Settings(data_root=str(root)),
        )
    versions = [b.metadata["current_elections_version"] for b in (first, again)]
    return root, versions, read


def bake_ids(baked) -> tuple[str, str]:
    return baked[1][0]["bake_id"], baked[1][1]["bake_id"]


def pictures(
    store: LocalLayerStore, baked, spy: Opened | None = None, **where: str | None
) -> dict[str, str]:
    """The rebake's pictures drawn again from ``store``: ``where`` says which version's kept
    locations to take (``earlier``) and where to keep the new ones (``version``). ``spy``, if
    given, records the AddressBase files the pictures open (the outcode files, written first,
    read every letter)."""
    layer = CURRENT_ELECTIONS
    before, after = bake_ids(baked)
    manifests = {m.bake_id: m for m in kept_versions(store, layer.prefix)}
    written = write_outcode_files(
        store,
        joined_prefix=layer.joined.prefix,
        addresses=ADDRESSBASE_PARTITIONED_TABLE.prefix,
        output_prefix="scratch/",
        columns=layer.columns,
        ids_column=layer.ids_column,
        element_ids=layer.element_ids,
    )
    diff, changes = compare_versions(
        store,
        before=manifests[before],
        before_prefix=version_prefix(layer.prefix, before),
        after=manifests[after],
        after_prefix=version_prefix(layer.prefix, after),
        ids_column=layer.ids_column,
        element_ids=layer.element_ids,
    )
    named = layer.input.ids_named(store, {})
    log = logging.getLogger("test")
    if spy is not None:
        spy.keys.clear()
        spy.on = True
    try:
        drawn = overview(log, store, layer, written, named, diff, changes, **where)
    finally:
        if spy is not None:
            spy.on = False
    return {key: value.value for key, value in drawn.items()}


def addressbase_rows(store: LocalLayerStore) -> list[dict]:
    """Every AddressBase row's ``uprn, longitude, latitude`` and letter, read plainly."""
    prefix = ADDRESSBASE_PARTITIONED_TABLE.prefix
    rows = []
    for key in store.list_keys(prefix):
        if is_data_file(key):
            with store.open_input(key) as source:
                table = pq.read_table(source, columns=["uprn", "longitude", "latitude"])
            letter = key.split("first_letter=")[1][0]
            rows += [
                {**row, "uprn": str(row["uprn"]), "letter": letter} for row in table.to_pylist()
            ]
    return rows


def sample_uprns() -> set[str]:
    ranks = sampling.uprn_ranks(pa.array([int(a[0]) for a in ADDRESSES]))
    return {ADDRESSES[i][0] for i in sampling.lowest_ranks(ranks, SAMPLE)}


def york_changed() -> set[str]:
    return {u for u, p, x, _ in ADDRESSES if p.startswith("YO") and x > -1.08}


def located(store: LocalLayerStore, prefix: str) -> list[dict]:
    return sorted(
        KeptLocations.read(store, prefix + LOCATED).located.to_pylist(), key=lambda r: r["uprn"]
    )


@pytest.fixture
def copy(baked, tmp_path) -> LocalLayerStore:
    """A copy of the baked data root, for a test that changes it."""
    shutil.copytree(baked[0], tmp_path / "data")
    return LocalLayerStore(root=str(tmp_path / "data"))


def test_the_case_changes_york_addresses_outside_the_sample(baked):
    first, again = baked[1]
    assert again["addresses_changed"] == len(york_changed()) >= 3
    assert york_changed() - sample_uprns(), "a changed address to locate outside the sample"
    assert f"{SAMPLE} of {len(ADDRESSES)} addresses" in first["coverage_map"]
    assert f"{len(york_changed())} drawn" in again["changes_map"]


def test_the_first_bake_reads_every_letter_and_the_rebake_only_the_changed_addresses_one(baked):
    assert baked[2] == [set("BDHLWY"), {"Y"}]


def test_each_version_keeps_where_its_sampled_addresses_are_as_addressbase_says(baked):
    root, (first, again), _ = baked
    store = LocalLayerStore(root=str(root))
    expected = sorted(
        (r for r in addressbase_rows(store) if r["uprn"] in sample_uprns()), key=lambda r: r["uprn"]
    )
    assert len(expected) == SAMPLE
    tokens = {
        letter: partition_record(store, ADDRESSBASE_PARTITIONED_TABLE.prefix, letter).token
        for letter in "BDHLWY"
    }
    for bake_id in (first["bake_id"], again["bake_id"]):
        prefix = version_prefix(CURRENT_ELECTIONS.prefix, bake_id)
        assert located(store, prefix) == expected
        assert KeptLocations.read(store, prefix + LOCATED).tokens == tokens


def test_the_rebake_draws_the_pictures_a_full_scan_draws(baked, opened):
    root, (_, again), _ = baked
    store = LocalLayerStore(root=str(root))
    scanned = pictures(store, baked, spy=opened)
    assert opened.letters() == set("BDHLWY")
    assert scanned["coverage_map"] == again["coverage_map"]
    assert scanned["changes_map"] == again["changes_map"]


def plant(store: LocalLayerStore, prefix: str, uprn: str, lon: float, lat: float) -> None:
    """Give ``uprn`` another location in the version's kept locations, tokens as they were."""
    kept = KeptLocations.read(store, prefix + LOCATED)
    rows = kept.located.to_pylist()
    for row in rows:
        if row["uprn"] == uprn:
            row["longitude"], row["latitude"] = lon, lat
    KeptLocations(pa.Table.from_pylist(rows, kept.located.schema), kept.tokens).write(
        store, prefix + LOCATED
    )


def test_a_kept_location_is_taken_while_its_letter_s_token_holds_and_not_after(baked, copy, opened):
    first = version_prefix(CURRENT_ELECTIONS.prefix, bake_ids(baked)[0])
    leeds = sorted(
        u for u in sample_uprns() if next(a for a in ADDRESSES if a[0] == u)[1][0] == "L"
    )
    true = next((x, y) for u, _, x, y in ADDRESSES if u == leeds[0])
    plant(copy, first, leeds[0], -2.9, 54.9)
    full = pictures(copy, baked)

    taken = pictures(copy, baked, earlier=first, version="taken/")
    kept = {r["uprn"]: (r["longitude"], r["latitude"]) for r in located(copy, "taken/")}
    assert kept[leeds[0]] == (-2.9, 54.9)
    assert taken["coverage_map"] != full["coverage_map"]

    prefix = ADDRESSBASE_PARTITIONED_TABLE.prefix
    rows = partition_record(copy, prefix, "L").rows
    rewritten = PartitionRecord.new(rows)
    write_partition_record(copy, prefix, "L", rewritten)
    joined = partition_record(copy, CURRENT_ELECTIONS.joined.prefix, "L")
    joined_again = {**joined.built_from, "addressbase": rewritten.token}
    write_partition_record(
        copy, CURRENT_ELECTIONS.joined.prefix, "L", replace(joined, built_from=joined_again)
    )
    again = pictures(copy, baked, earlier=first, version="again/", spy=opened)
    kept = {r["uprn"]: (r["longitude"], r["latitude"]) for r in located(copy, "again/")}
    assert kept[leeds[0]] == true
    assert opened.letters() == {"L", "Y"}
    assert again == full


def test_an_address_the_kept_locations_lack_is_read_from_its_own_letter(baked, copy, opened):
    first = version_prefix(CURRENT_ELECTIONS.prefix, bake_ids(baked)[0])
    kept = KeptLocations.read(copy, first + LOCATED)
    harrogate = [r for r in kept.located.to_pylist() if r["letter"] == "H"]
    assert harrogate
    rest = [r for r in kept.located.to_pylist() if r["letter"] != "H"]
    KeptLocations(pa.Table.from_pylist(rest, kept.located.schema), kept.tokens).write(
        copy, first + LOCATED
    )
    full = pictures(copy, baked, version="full/")
    taken = pictures(copy, baked, earlier=first, version="taken/", spy=opened)
    assert opened.letters() == {"H", "Y"}
    assert taken == full
    assert located(copy, "taken/") == located(copy, "full/")


@pytest.mark.parametrize("kept", [b"not an arrow file", None])
def test_unreadable_or_missing_kept_locations_mean_reading_every_letter(baked, copy, opened, kept):
    first = version_prefix(CURRENT_ELECTIONS.prefix, bake_ids(baked)[0])
    if kept is None:
        copy.delete([first + LOCATED])
    else:
        copy.write_bytes(first + LOCATED, kept)
    full = pictures(copy, baked)
    taken = pictures(copy, baked, earlier=first, spy=opened)
    assert opened.letters() == set("BDHLWY")
    assert taken == full
