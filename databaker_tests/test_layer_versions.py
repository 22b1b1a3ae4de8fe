"""Versioned bakes: publishing only what changed, surviving an interrupted publish, rollback,
and pruning, on crafted versions of a layer."""

import pytest

from databaker.bake import bake
from databaker.cli import main
from databaker.definitions import Settings
from databaker.layer_versions import (
    MANIFEST,
    PUBLISHING,
    Manifest,
    content_hash,
    kept_versions,
    prune_versions,
    publish,
    published_manifest,
    version_prefix,
    write_manifest,
)
from databaker.resources import LayerStoreError, LocalLayerStore
from databaker.sources import SAMPLE_BALLOTS
from databaker_tests.conftest import address_line, write_lines

LAYER = "current_elections_parquet/"


@pytest.fixture
def store(tmp_path) -> LocalLayerStore:
    return LocalLayerStore(root=str(tmp_path / "data"))


def bake_version(store: LocalLayerStore, bake_id: str, files: dict[str, bytes]) -> Manifest:
    """A complete version holding ``files``, as a bake leaves it."""
    for name, data in files.items():
        store.write_bytes(version_prefix(LAYER, bake_id) + name, data)
    manifest = Manifest(
        bake_id=bake_id,
        created="2026-11-27T00:00:00+00:00",
        addressbase_source="/drops/2026-11-02",
        ballots_version="sha256:0",
        rows=len(files),
        rows_with_ids=0,
        outcodes=len(files),
        empty_outcodes=0,
        files={name: content_hash(data) for name, data in files.items()},
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


def test_old_versions_are_pruned_but_never_the_published_one(store):
    for n in range(1, 8):
        bake_version(store, f"0{n}", {"A1.parquet": bytes([n])})
    publish(store, LAYER, "01")
    store.write_bytes(version_prefix(LAYER, "00") + "A1.parquet", b"a bake that died")
    deleted = prune_versions(store, LAYER, keep=5)
    assert deleted == ["00", "02"]
    assert [m.bake_id for m in kept_versions(store, LAYER)] == ["01", "03", "04", "05", "06", "07"]


def test_only_a_complete_version_can_be_published(store):
    store.write_bytes(version_prefix(LAYER, "1") + "A1.parquet", b"a")
    with pytest.raises(LayerStoreError, match="no complete version '1'"):
        publish(store, LAYER, "1")
    assert store.list_keys(LAYER) == []
    assert not store.list_keys(LAYER + MANIFEST)


def test_a_version_keeps_the_reports_of_rejected_rows_beside_its_manifest(tmp_path, store):
    """One bad line in 1,000 is within the default share: the bake publishes, and its
    version keeps the report that names the line."""
    good = [address_line(str(n), f"{n} Briggate", "LS1 6AA", -1.54, 53.797) for n in range(999)]
    drop = write_lines(tmp_path / "drop.csv", [*good, "x,Bad Row,LS1 6AA,POINT(0 0),RD04"])
    bake(addressbase=str(drop), ballots=str(SAMPLE_BALLOTS), settings=Settings(store.root))
    (version,) = kept_versions(store, LAYER)
    assert version.rejected_rows == {"addressbase_cleaned_raw": 1, "current_ballots": 0}
    kept = store.read_bytes(
        version_prefix(LAYER, version.bake_id) + "rejected/" + "addressbase_cleaned_raw.csv"
    ).decode()
    assert f"{drop},1000," in kept
