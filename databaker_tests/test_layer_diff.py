"""The diff of a bake against the published layer, checked against a plain computation over
``{uprn: set of ballot IDs}`` on crafted and on random layers."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.assets.current_elections import LAYER_COLUMNS
from databaker.layers.diff import EncodedRows, LayerDiff, diff_versions
from databaker.layers.outcode_files import write_outcode_files
from databaker.layers.versions import Manifest, version_prefix
from databaker.resources import LocalLayerStore

LAYER = "layer/"
Addresses = dict[int, tuple[str, frozenset[str]]]
"""UPRN -> (postcode, ballot IDs): a whole bake, as plainly as it can be written."""


@pytest.fixture
def store(tmp_path) -> LocalLayerStore:
    return LocalLayerStore(root=str(tmp_path / "data"))


def bake(
    store: LocalLayerStore,
    bake_id: str,
    addresses: Addresses,
    encoded: EncodedRows | None = None,
) -> Manifest:
    """A version of the layer holding ``addresses``, written as the layer writes one; the rows
    of the files it encodes held by ``encoded``."""
    joined = f"joined-{bake_id}/"
    by_letter: dict[str, list[tuple[int, str, list[str]]]] = {}
    for uprn, (postcode, ids) in addresses.items():
        by_letter.setdefault(postcode[0], []).append((uprn, postcode, sorted(ids)))
    for letter, rows in by_letter.items():
        table = pa.table(
            {
                "uprn": [r[0] for r in rows],
                "address": [f"{r[0]} Some Road" for r in rows],
                "postcode": [r[1] for r in rows],
                "addressbase_source": ["drop"] * len(rows),
                "ballot_ids": pa.array([r[2] for r in rows], pa.list_(pa.string())),
            }
        )
        with store.open_output(f"{joined}first_letter={letter}/data.parquet") as sink:
            pq.write_table(table, sink)
    written = write_outcode_files(
        store,
        joined_prefix=joined,
        addresses=ADDRESSBASE_PARTITIONED_TABLE.prefix,
        output_prefix=version_prefix(LAYER, bake_id),
        columns=LAYER_COLUMNS,
        ids_column="ballot_ids",
        on_encoded=encoded.keep if encoded else None,
    )
    return Manifest(
        bake_id=bake_id,
        created="2026-11-27T00:00:00+00:00",
        addressbase_source="drop",
        input_version="v",
        rows=written.rows,
        rows_with_ids=written.rows_with_ids,
        outcodes=written.outcodes,
        empty_outcodes=written.empty_outcodes,
        files=written.files,
        addresses_per_id=written.addresses_per_id,
    )


def diff(store: LocalLayerStore, before: Manifest, after: Manifest, **kwargs) -> LayerDiff:
    return diff_versions(
        store,
        before=before,
        before_prefix=version_prefix(LAYER, before.bake_id),
        after=after,
        after_prefix=version_prefix(LAYER, after.bake_id),
        ids_column="ballot_ids",
        **kwargs,
    )


@dataclass(frozen=True)
class Expected:
    """The diff computed from the two mappings directly, an absent UPRN having no IDs."""

    changed: int
    gaining_first: int
    losing_all: int
    ids: dict[str, tuple[int, int, int, int]]
    """ID -> (before, after, gained, lost), for IDs that gained or lost an address."""

    @classmethod
    def of(cls, old: Addresses, new: Addresses) -> Expected:
        def ids(side: Addresses, uprn: int) -> frozenset[str]:
            return side[uprn][1] if uprn in side else frozenset()

        gained: Counter[str] = Counter()
        lost: Counter[str] = Counter()
        changed = first = all_lost = 0
        for uprn in old.keys() | new.keys():
            before, after = ids(old, uprn), ids(new, uprn)
            if before != after:
                changed += 1
                first += not before
                all_lost += not after
            gained.update(after - before)
            lost.update(before - after)
        count_before = Counter(i for _, found in old.values() for i in found)
        count_after = Counter(i for _, found in new.values() for i in found)
        return cls(
            changed,
            first,
            all_lost,
            {
                i: (count_before[i], count_after[i], gained[i], lost[i])
                for i in gained.keys() | lost.keys()
            },
        )


def assert_matches(found: LayerDiff, old: Addresses, new: Addresses) -> None:
    expected = Expected.of(old, new)
    assert found.addresses_changed == expected.changed
    assert found.addresses_gaining_first_ids == expected.gaining_first
    assert found.addresses_losing_all_ids == expected.losing_all
    assert {i: (c.before, c.after, c.gained, c.lost) for i, c in found.ids.items()} == expected.ids
    assert (found.addresses_before, found.addresses_after) == (len(old), len(new))


OLD: Addresses = {
    1: ("AB1 1AA", frozenset({"local.a", "parl.x"})),
    2: ("AB1 1AB", frozenset({"local.a", "parl.x"})),
    3: ("AB2 1AA", frozenset({"local.b"})),
    4: ("B1 1AA", frozenset({"local.c"})),
    5: ("C1 1AA", frozenset()),
    6: ("D1 1AA", frozenset({"local.d"})),
    7: ("E1 1AA", frozenset({"local.e"})),
}
NEW: Addresses = {
    1: ("AB1 1AA", frozenset({"local.a", "parl.x"})),  # unchanged
    2: ("AB1 1AB", frozenset({"local.a2", "parl.x"})),  # one ballot swapped for another
    3: ("AB2 1AA", frozenset()),  # lost all; AB2 becomes an empty outcode
    # 4 has left AddressBase
    5: ("C1 1AA", frozenset({"local.c"})),  # its first ballot
    6: ("X1 1AA", frozenset({"local.d"})),  # recoded into another letter, same ballots
    7: ("Y1 1AA", frozenset({"local.y"})),  # recoded into another letter, new ballot
    8: ("F1 1AA", frozenset({"local.f"})),  # new address in a new outcode
}


def test_a_crafted_diff_counts_each_kind_of_change(store):
    old, new = bake(store, "1", OLD), bake(store, "2", NEW)
    found = diff(store, old, new)
    assert_matches(found, OLD, NEW)
    assert found.addresses_changed == 6
    assert found.ids["local.a"].lost == 1 and found.ids["local.a2"].gained == 1
    assert "local.d" not in found.ids, "an address moving letter with its ballots is no change"
    assert found.ids_appearing == ["local.a2", "local.f", "local.y"]
    assert found.ids_disappearing == ["local.b", "local.e"]
    assert found.outcodes_added == ["F1", "X1", "Y1"]
    assert found.outcodes_removed == ["B1", "D1", "E1"]
    assert found.outcodes_changed == ["AB1", "AB2", "C1"]
    assert [(a.uprn, a.postcode, a.before, a.after) for a in found.sample] == [
        (2, "AB1 1AB", ["local.a", "parl.x"], ["local.a2", "parl.x"]),
        (3, "AB2 1AA", ["local.b"], []),
        (4, "B1 1AA", ["local.c"], []),
        (5, "C1 1AA", [], ["local.c"]),
        (7, "Y1 1AA", ["local.e"], ["local.y"]),
        (8, "F1 1AA", [], ["local.f"]),
    ]
    assert LayerDiff.from_json(found.to_json()) == found


def test_unchanged_outcode_files_are_not_read(store, monkeypatch):
    old = bake(store, "1", OLD)
    new = bake(store, "2", {**OLD, 2: ("AB1 1AB", frozenset({"local.a"}))})
    opened: list[str] = []
    original = LocalLayerStore.read_bytes

    def counted(self, key):
        opened.append(key.rsplit("/", 1)[1])
        return original(self, key)

    monkeypatch.setattr(LocalLayerStore, "read_bytes", counted)
    found = diff(store, old, new)
    assert sorted(opened) == ["AB1.parquet", "AB1.parquet"]
    assert found.addresses_changed == 1 and found.ids["parl.x"].lost == 1


def test_files_whose_rows_the_bake_holds_are_not_read_back(store, monkeypatch):
    old = bake(store, "1", OLD)
    encoded = EncodedRows("ballot_ids")
    new = bake(store, "2", NEW, encoded)
    opened: list[str] = []
    original = LocalLayerStore.read_bytes

    def counted(self, key):
        opened.append(key)
        return original(self, key)

    monkeypatch.setattr(LocalLayerStore, "read_bytes", counted)
    found = diff(store, old, new, encoded=encoded)
    assert_matches(found, OLD, NEW)
    assert found.addresses_changed == 6 and len(found.sample) == 6
    assert all(key.startswith(version_prefix(LAYER, "1")) for key in opened), opened
    assert len(opened) == len(found.outcodes_changed) + len(found.outcodes_removed)


def test_an_identical_bake_has_an_empty_diff(store):
    found = diff(store, bake(store, "1", OLD), bake(store, "2", OLD))
    assert (found.addresses_changed, found.ids, found.sample) == (0, {}, [])
    assert found.unchanged_ids == len({i for _, ids in OLD.values() for i in ids})
    assert "**0**" in found.markdown()


def test_a_first_bake_has_nothing_to_compare(store):
    first = bake(store, "1", OLD)
    found = diff_versions(
        store,
        before=None,
        before_prefix=LAYER,
        after=first,
        after_prefix=version_prefix(LAYER, "1"),
        ids_column="ballot_ids",
    )
    assert found.baseline is None and found.addresses_after == len(OLD)
    assert found.markdown().startswith("First bake")


def test_the_markdown_shows_totals_and_the_ballots_that_moved_most(store):
    text = diff(store, bake(store, "1", OLD), bake(store, "2", NEW)).markdown(id_label="ballot")
    assert "| addresses | 7 | 7 | +0 (+0.00%) |" in text
    assert "| addresses with a ballot | 6 | 6 | +0 (+0.00%) |" in text
    assert "addresses whose ballots changed: **6** (2 had none before, 2 have none now)" in text
    assert "| local.a | 2 | 1 | 0 | 1 |" in text
    assert "- ballots appearing: 3: `local.a2`, `local.f`, `local.y`" in text


@pytest.mark.parametrize("seed", range(6))
def test_random_bakes_agree_with_the_plain_computation(store, seed):
    """Random layers over a few letters, where addresses come and go, are recoded into other
    letters and gain and lose ballots; the sample is kept tiny to exercise its merging. The
    new bake's rows are held for the diff, all of them, some (the files read back past a
    budget) or none."""
    rng = random.Random(seed)
    ballots = [f"local.{n}" for n in range(12)]
    outcodes = ["A1", "A2", "B1", "B2", "C1", "D9"]

    def address() -> tuple[str, frozenset[str]]:
        ids = frozenset(rng.sample(ballots, rng.choice([0, 0, 1, 2, 3])))
        return f"{rng.choice(outcodes)} {rng.randint(1, 3)}AA", ids

    old = {uprn: address() for uprn in rng.sample(range(1, 400), 250)}
    new = {}
    for uprn in range(1, 400):
        roll = rng.random()
        if uprn in old and roll < 0.6:
            new[uprn] = old[uprn]
        elif uprn in old and roll < 0.75:
            new[uprn] = (old[uprn][0], address()[1])
        elif roll < 0.9:
            new[uprn] = address()
    encoded = [None, EncodedRows("ballot_ids"), EncodedRows("ballot_ids", budget=60)][seed % 3]
    before = bake(store, "1", old)
    found = diff(store, before, bake(store, "2", new, encoded), encoded=encoded, sample_size=3)
    assert_matches(found, old, new)
    expected_sample = sorted(
        uprn
        for uprn in old.keys() | new.keys()
        if old.get(uprn, ("", frozenset()))[1] != new.get(uprn, ("", frozenset()))[1]
    )[:3]
    assert [a.uprn for a in found.sample] == expected_sample
    json.loads(found.to_json())
