"""Versioned bakes: publishing only what changed, surviving an interrupted publish, rollback,
and pruning, on crafted versions of a layer; and kept bakes whose records another release
wrote."""

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from databaker.bake import bake
from databaker.cli import main
from databaker.definitions import Settings
from databaker.layers.diff import DIFF, AddressChange, IdChange, LayerDiff
from databaker.layers.versions import (
    MANIFEST,
    PUBLISHING,
    Manifest,
    PublishInterrupted,
    complete_interrupted_publish,
    content_hash,
    interrupted_publish,
    kept_versions,
    new_bake_id,
    prune_versions,
    publish,
    published_manifest,
    version_prefix,
    write_manifest,
)
from databaker.resources import LayerStoreError, LocalLayerStore
from databaker.sources import SAMPLE_BALLOTS
from databaker_tests.conftest import address_line, ballot_line, write_lines

LAYER = "current_elections_parquet/"


@pytest.fixture
def store(tmp_path) -> LocalLayerStore:
    return LocalLayerStore(root=str(tmp_path / "data"))


def bake_version(
    store: LocalLayerStore,
    bake_id: str,
    files: dict[str, bytes],
    held_by: dict[str, str] | None = None,
) -> Manifest:
    """A complete version holding ``files``, as a bake leaves it; those of ``held_by`` it
    names where an earlier version holds them, without writing them."""
    held_by = held_by or {}
    for name, data in files.items():
        if name not in held_by:
            store.write_bytes(version_prefix(LAYER, bake_id) + name, data)
    manifest = Manifest(
        bake_id=bake_id,
        created="2026-11-27T00:00:00+00:00",
        addressbase_source="/drops/2026-11-02",
        input_version="sha256:0",
        rows=len(files),
        rows_with_ids=0,
        outcodes=len(files),
        empty_outcodes=0,
        files={name: content_hash(data) for name, data in files.items()},
        held_by=held_by,
    )
    write_manifest(store, LAYER, manifest)
    return manifest


def layer_files(store: LocalLayerStore) -> dict[str, bytes]:
    return {
        key[len(LAYER) :]: store.read_bytes(key)
        for key in store.list_keys(LAYER)
        if key.endswith(".parquet")
    }


@pytest.fixture
def copies(monkeypatch) -> list[str]:
    """The targets of every copy the store makes."""
    made: list[str] = []
    original = LocalLayerStore.copy

    def counted(self, source: str, target: str) -> None:
        original(self, source, target)
        made.append(target[len(LAYER) :])

    monkeypatch.setattr(LocalLayerStore, "copy", counted)
    return made


def test_bake_ids_sort_by_time_within_a_second():
    """Bakes of a small layer can end within one second: their IDs still sort by time, not by
    their runs' IDs."""
    second = datetime(2026, 11, 27, 1, 45, tzinfo=UTC)
    ids = [
        new_bake_id("ffffffff-run", second + timedelta(milliseconds=3)),
        new_bake_id("00000000-run", second + timedelta(milliseconds=998)),
        new_bake_id("88888888-run", second + timedelta(seconds=1)),
    ]
    assert ids[0] == "20261127T014500003Z-ffffffff"
    assert sorted(ids) == ids


def test_a_publish_rewrites_only_changed_outcodes_and_deletes_stale_ones(store, copies):
    bake_version(store, "1", {"A1.parquet": b"a", "B1.parquet": b"b", "C1.parquet": b"c"})
    first = publish(store, LAYER, "1")
    assert (first.written, first.unchanged, first.deleted) == (3, 0, ())
    bake_version(store, "2", {"A1.parquet": b"a", "B1.parquet": b"b2", "D1.parquet": b"d"})
    copies.clear()
    second = publish(store, LAYER, "2")
    assert sorted(copies) == ["B1.parquet", "D1.parquet"]
    assert (second.written, second.unchanged, second.deleted) == (2, 1, (LAYER + "C1.parquet",))
    assert layer_files(store) == {"A1.parquet": b"a", "B1.parquet": b"b2", "D1.parquet": b"d"}
    assert published_manifest(store, LAYER).bake_id == "2"
    assert store.list_keys(LAYER + PUBLISHING) == []


def test_rollback_publishes_a_kept_version_again(store, capsys):
    bake_version(store, "1", {"A1.parquet": b"a", "B1.parquet": b"b"})
    publish(store, LAYER, "1")
    bake_version(store, "2", {"A1.parquet": b"a2"})
    publish(store, LAYER, "2")
    data_root = store.root
    assert main(["rollback", "--to", "1", "--data-root", data_root]) == 0
    assert (
        "published bake 1: 2 files changed, 0 unchanged, 0 stale deleted" in capsys.readouterr().out
    )
    assert layer_files(store) == {"A1.parquet": b"a", "B1.parquet": b"b"}
    assert main(["versions", "--data-root", data_root]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith("* 1") and listed[1].startswith("  2")
    assert main(["rollback", "--to", "9", "--data-root", data_root]) == 1
    assert "no kept bake 9" in capsys.readouterr().err


def test_a_publish_interrupted_midway_is_completed_by_the_next_without_trusting_hashes(
    store, monkeypatch
):
    """Killed after copying A1 of version 2, the layer holds A1 from 2 and B1 from 1, each
    whole. Publishing 1 again must then rewrite A1, though 1's manifest, still the published
    one, says A1 is already as 1 has it."""
    bake_version(store, "1", {"A1.parquet": b"a1", "B1.parquet": b"b1"})
    publish(store, LAYER, "1")
    bake_version(store, "2", {"A1.parquet": b"a2", "B1.parquet": b"b2"})
    original = LocalLayerStore.copy

    def killed_after_first(self, source: str, target: str) -> None:
        original(self, source, target)
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalLayerStore, "copy", killed_after_first)
    with pytest.raises(KeyboardInterrupt):
        publish(store, LAYER, "2")
    monkeypatch.undo()
    assert layer_files(store) == {"A1.parquet": b"a2", "B1.parquet": b"b1"}
    assert published_manifest(store, LAYER).bake_id == "1"
    again = publish(store, LAYER, "1")
    assert again.written == 2
    assert layer_files(store) == {"A1.parquet": b"a1", "B1.parquet": b"b1"}
    assert store.list_keys(LAYER + PUBLISHING) == []


def interrupted_publish_of_2_over_1(store: LocalLayerStore, monkeypatch) -> None:
    """A layer left mid-publish: A1 from version 2, B1 from version 1."""
    bake_version(store, "1", {"A1.parquet": b"a1", "B1.parquet": b"b1"})
    publish(store, LAYER, "1")
    bake_version(store, "2", {"A1.parquet": b"a2", "B1.parquet": b"b2"})
    original = LocalLayerStore.copy

    def full_after_first(self, source: str, target: str) -> None:
        if target.endswith("B1.parquet"):
            raise OSError(28, "No space left on device")
        original(self, source, target)

    monkeypatch.setattr(LocalLayerStore, "copy", full_after_first)
    with pytest.raises(PublishInterrupted, match=r"stopped after 1 of 2 changed file\(s\)"):
        publish(store, LAYER, "2")
    monkeypatch.undo()
    assert layer_files(store) == {"A1.parquet": b"a2", "B1.parquet": b"b1"}


def test_an_interrupted_publish_is_completed_towards_its_bake(store, monkeypatch):
    interrupted_publish_of_2_over_1(store, monkeypatch)
    assert interrupted_publish(store, LAYER).mixing == "bake 1 with bake 2"
    assert complete_interrupted_publish(store, LAYER).bake_id == "2"
    assert layer_files(store) == {"A1.parquet": b"a2", "B1.parquet": b"b2"}
    assert interrupted_publish(store, LAYER) is None
    assert complete_interrupted_publish(store, LAYER) is None


def test_an_interrupted_publish_whose_bake_is_gone_is_reverted(store, monkeypatch):
    interrupted_publish_of_2_over_1(store, monkeypatch)
    store.delete_prefix(version_prefix(LAYER, "2"))
    assert complete_interrupted_publish(store, LAYER).bake_id == "1"
    assert layer_files(store) == {"A1.parquet": b"a1", "B1.parquet": b"b1"}
    assert interrupted_publish(store, LAYER) is None


def test_an_interrupted_publish_with_neither_bake_kept_names_the_way_out(store, monkeypatch):
    interrupted_publish_of_2_over_1(store, monkeypatch)
    for bake_id in ("1", "2"):
        store.delete_prefix(version_prefix(LAYER, bake_id))
    with pytest.raises(LayerStoreError, match="neither bake is kept any more: publish a kept"):
        complete_interrupted_publish(store, LAYER)
    assert layer_files(store) == {"A1.parquet": b"a2", "B1.parquet": b"b1"}


def test_old_versions_are_pruned_but_never_the_published_one(store):
    for n in range(1, 8):
        bake_version(store, f"0{n}", {"A1.parquet": bytes([n])})
    publish(store, LAYER, "01")
    store.write_bytes(version_prefix(LAYER, "00") + "A1.parquet", b"a bake that died")
    deleted = prune_versions(store, LAYER, keep=5)
    assert deleted == ["00", "02"]
    assert [m.bake_id for m in kept_versions(store, LAYER)] == ["01", "03", "04", "05", "06", "07"]


def test_a_version_names_the_files_an_earlier_version_holds_and_publishes_them(store, copies):
    """Bake 2 changed B1 only: A1 stays in bake 1's version. Publishing bake 2 over nothing,
    and rolling back to it over bake 3, copies A1 from there."""
    bake_version(store, "1", {"A1.parquet": b"a", "B1.parquet": b"b"})
    bake_version(store, "2", {"A1.parquet": b"a", "B1.parquet": b"b2"}, held_by={"A1.parquet": "1"})
    assert store.list_keys(version_prefix(LAYER, "2")) == [
        version_prefix(LAYER, "2") + "B1.parquet",
        version_prefix(LAYER, "2") + MANIFEST,
    ]
    publish(store, LAYER, "2")
    assert layer_files(store) == {"A1.parquet": b"a", "B1.parquet": b"b2"}
    bake_version(
        store, "3", {"A1.parquet": b"a3", "B1.parquet": b"b2"}, held_by={"B1.parquet": "2"}
    )
    publish(store, LAYER, "3")
    copies.clear()
    publish(store, LAYER, "2")
    assert copies == ["A1.parquet"]
    assert layer_files(store) == {"A1.parquet": b"a", "B1.parquet": b"b2"}


def test_pruning_keeps_the_files_a_kept_version_names_and_nothing_else(store):
    """Bake 1 is pruned, but A1, which bakes 2 and 3 name, stays in its version; its other
    files and its manifest go, so it is no version any more. Once no kept bake names A1, the
    rest of bake 1's version goes too."""
    bake_version(store, "1", {"A1.parquet": b"a", "B1.parquet": b"b"})
    store.write_bytes(version_prefix(LAYER, "1") + DIFF, b"{}")
    bake_version(store, "2", {"A1.parquet": b"a", "B1.parquet": b"b2"}, held_by={"A1.parquet": "1"})
    bake_version(
        store,
        "3",
        {"A1.parquet": b"a", "B1.parquet": b"b3"},
        held_by={"A1.parquet": "1"},
    )
    publish(store, LAYER, "3")
    assert prune_versions(store, LAYER, keep=2) == ["1"]
    assert store.list_keys(version_prefix(LAYER, "1")) == [
        version_prefix(LAYER, "1") + "A1.parquet"
    ]
    assert [m.bake_id for m in kept_versions(store, LAYER)] == ["2", "3"]
    assert prune_versions(store, LAYER, keep=2) == []
    publish(store, LAYER, "2")
    assert layer_files(store) == {"A1.parquet": b"a", "B1.parquet": b"b2"}
    bake_version(
        store, "4", {"A1.parquet": b"a4", "B1.parquet": b"b2"}, held_by={"B1.parquet": "2"}
    )
    bake_version(
        store, "5", {"A1.parquet": b"a4", "B1.parquet": b"b5"}, held_by={"A1.parquet": "4"}
    )
    publish(store, LAYER, "5")
    assert prune_versions(store, LAYER, keep=2) == ["1", "2", "3"]
    assert store.list_keys(version_prefix(LAYER, "1")) == []
    assert store.list_keys(version_prefix(LAYER, "2")) == [
        version_prefix(LAYER, "2") + "B1.parquet"
    ]


def test_only_a_complete_version_can_be_published(store):
    store.write_bytes(version_prefix(LAYER, "1") + "A1.parquet", b"a")
    with pytest.raises(LayerStoreError, match="no complete version '1'"):
        publish(store, LAYER, "1")
    assert store.list_keys(LAYER) == []
    assert not store.list_keys(LAYER + MANIFEST)


def test_a_version_keeps_the_reports_of_rejected_rows_beside_its_manifest(tmp_path, store):
    """One bad line in 1,000 is within the default share: the bake publishes, and its
    version keeps the report that names the line."""
    good = [address_line(str(n), f"{n} Briggate", "LS1 6AA", -1.54, 53.797) for n in range(1, 1000)]
    drop = write_lines(tmp_path / "drop.csv", [*good, "x,Bad Row,LS1 6AA,POINT(0 0),RD04"])
    bake(addressbase=str(drop), ballots=str(SAMPLE_BALLOTS), settings=Settings(store.root))
    (version,) = kept_versions(store, LAYER)
    assert version.rejected_rows == {"addressbase_cleaned_raw": 1, "current_ballots": 0}
    kept = store.read_bytes(
        version_prefix(LAYER, version.bake_id) + "rejected/" + "addressbase_cleaned_raw.csv"
    ).decode()
    assert f"{drop},1000," in kept


BALLOT = "local.leeds.city.2027-05-06"
ADDRESSES = [
    address_line("1", "1 Briggate, Leeds", "LS1 6AA", -1.54, 53.797),
    address_line("2", "2 Park Lane, Leeds", "LS3 1AA", -1.56, 53.80),
    address_line("3", "3 Park Lane, Leeds", "LS3 1AA", -1.561, 53.801),
]
LEEDS = "POLYGON((-1.6 53.7,-1.5 53.7,-1.5 53.9,-1.6 53.9,-1.6 53.7))"


def leeds_bake(folder: Path, addresses: int, data_root: Path) -> str:
    """Bake the first ``addresses`` of ADDRESSES, all in one Leeds ballot; the bake's ID."""
    drop = write_lines(folder / f"drop{addresses}" / "part.csv", ADDRESSES[:addresses])
    header = "election_id,division_id,geometry,source_table"
    ballots = write_lines(
        folder / "ballots.csv", [header, ballot_line(BALLOT, "E1", LEEDS, "Division")]
    )
    done = bake(
        addressbase=str(drop.parent), ballots=str(ballots), settings=Settings(str(data_root))
    )
    return done.metadata["current_elections_parquet"]["bake_id"]


def rewrite(path: Path, change: Callable[[dict], dict]) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def older_manifest(manifest: dict) -> dict:
    """As a release before these fields were added wrote it, which baked one layer and kept
    its input's version as ``ballots_version``."""
    added = ("rejected_rows", "addresses_per_id", "empty_outcodes")
    renamed = {"input_version": "ballots_version"}
    return {renamed.get(name, name): value for name, value in manifest.items() if name not in added}


def newer_manifest(manifest: dict) -> dict:
    """As a release that renamed one field and added another would write it."""
    renamed = {"empty_outcodes": "empty_outcode_files"}
    return {renamed.get(name, name): value for name, value in manifest.items()} | {"schema": 2}


def older_diff(diff: dict) -> dict:
    """As a release before these fields were added wrote it."""
    added = ("ids", "unchanged_ids", "sample", "addresses_gaining_first_ids")
    return {name: value for name, value in diff.items() if name not in added}


def newer_diff(diff: dict) -> dict:
    """As a release that added a field at each level would write it."""
    ids = {name: change | {"moved": 0} for name, change in diff["ids"].items()}
    sample = [address | {"address_type": "RD04"} for address in diff["sample"]]
    return diff | {"ids": ids, "sample": sample, "outcodes_split": []}


@pytest.fixture(scope="module")
def other_releases(tmp_path_factory) -> tuple[Path, str, str]:
    """A data root whose records other releases wrote: the first bake (one address), kept, in
    an older shape (fields missing), and the second (two), published, in a newer one (a field
    renamed, others added). Returns the root and both bake IDs."""
    folder = tmp_path_factory.mktemp("releases")
    data_root = folder / "data"
    older, newer = leeds_bake(folder, 1, data_root), leeds_bake(folder, 2, data_root)
    versions = data_root / "versions" / LAYER
    rewrite(versions / older / MANIFEST, older_manifest)
    rewrite(versions / older / DIFF, older_diff)
    rewrite(versions / newer / MANIFEST, newer_manifest)
    rewrite(versions / newer / DIFF, newer_diff)
    rewrite(data_root / LAYER / MANIFEST, newer_manifest)
    return data_root, older, newer


def outcodes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.glob("*.parquet")}


def test_versions_lists_bakes_whose_records_other_releases_wrote(other_releases, capsys):
    """An upgrade must not make the kept bakes unreadable: a field the records lack takes its
    default, one they have that this release does not know is ignored."""
    data_root, older, newer = other_releases
    assert main(["versions", "--data-root", str(data_root)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith(f"  {older}  ")
    assert "  1 addresses (1 with a ballot)  1 outcodes  ballots sha256:" in listed[0]
    assert listed[1].startswith(f"* {newer}  ")
    assert "  2 addresses (2 with a ballot)  2 outcodes  ballots sha256:" in listed[1]


def test_diffs_other_releases_wrote_are_read_with_defaults(other_releases):
    data_root, older, newer = other_releases
    versions = data_root / "versions" / LAYER
    first = LayerDiff.from_json((versions / older / DIFF).read_bytes())
    assert (first.bake_id, first.baseline, first.addresses_after) == (older, None, 1)
    assert (first.ids, first.sample, first.unchanged_ids) == ({}, [], 0)
    second = LayerDiff.from_json((versions / newer / DIFF).read_bytes())
    assert (second.baseline, second.addresses_changed) == (older, 1)
    assert second.ids == {BALLOT: IdChange(before=1, after=2, gained=1, lost=0)}
    assert second.sample == [AddressChange(uprn=2, postcode="LS3 1AA", before=[], after=[BALLOT])]


def test_rollback_to_a_bake_an_older_release_kept(other_releases, tmp_path, capsys):
    source, older, _ = other_releases
    data_root = tmp_path / "data"
    shutil.copytree(source, data_root)
    assert main(["rollback", "--to", older, "--data-root", str(data_root)]) == 0
    assert f"published bake {older}: 1 files changed, 0 unchanged, 1 stale deleted" in (
        capsys.readouterr().out
    )
    assert outcodes(data_root / LAYER) == outcodes(data_root / "versions" / LAYER / older)
    assert json.loads((data_root / LAYER / MANIFEST).read_text())["bake_id"] == older


def test_a_bake_publishes_over_bakes_other_releases_kept(other_releases, tmp_path):
    """It compares itself with the published bake, whose manifest a newer release wrote."""
    source, older, newer = other_releases
    data_root = tmp_path / "data"
    shutil.copytree(source, data_root)
    newest = leeds_bake(tmp_path, 3, data_root)
    diff = LayerDiff.from_json((data_root / "versions" / LAYER / newest / DIFF).read_bytes())
    assert (diff.baseline, diff.addresses_before, diff.addresses_changed) == (newer, 2, 1)
    assert outcodes(data_root / LAYER) == outcodes(data_root / "versions" / LAYER / newest)
    store = LocalLayerStore(root=str(data_root))
    assert published_manifest(store, LAYER).rows == 3
    assert [m.bake_id for m in kept_versions(store, LAYER)] == [older, newer, newest]


@pytest.mark.parametrize(
    ("damaged", "reason"),
    [
        (b'{"bake_id": "2", "rows": 3', "Invalid JSON: EOF while parsing an object at line 1"),
        (
            b'{"bake_id": "2", "rows": "many"}',
            "Input should be a valid integer, unable to parse string as an integer at rows",
        ),
        (b'{"rows": 3}', "Field required at bake_id"),
    ],
    ids=["truncated", "a wrong type", "no bake ID"],
)
def test_a_damaged_manifest_is_named_in_one_line(store, capsys, damaged, reason):
    """Not a traceback, and not passed over as if the bake were not kept: exit 5. A rollback
    to another bake reads only that bake's manifest, and goes ahead."""
    bake_version(store, "1", {"A1.parquet": b"a"})
    bake_version(store, "2", {"A1.parquet": b"a2"})
    publish(store, LAYER, "2")
    manifest = version_prefix(LAYER, "2") + MANIFEST
    store.write_bytes(manifest, damaged)
    assert main(["rollback", "--to", "1", "--data-root", store.root]) == 0
    assert store.read_bytes(LAYER + "A1.parquet") == b"a"
    capsys.readouterr()
    for command in (["versions"], ["rollback", "--to", "2"]):
        assert main([*command, "--data-root", store.root]) == 5
        printed = capsys.readouterr()
        assert printed.out == ""
        assert printed.err.startswith(f"databaker: {store.uri(manifest)} cannot be read: ")
        assert reason in printed.err
        assert printed.err.count("\n") == 1
