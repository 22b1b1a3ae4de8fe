"""The local layer store: keys under a root, whole-object writes, prefix replacement."""

import os

import pytest

from databaker.resources import LayerStoreError, LocalLayerStore


def test_write_read_list_delete(store, data_root):
    store.write_bytes("layer/B1.parquet", b"b")
    store.write_bytes("layer/A1.parquet", b"a")
    store.write_bytes("other/x", b"x")
    assert store.list_keys("layer/") == ["layer/A1.parquet", "layer/B1.parquet"]
    assert store.read_bytes("layer/A1.parquet") == b"a"
    assert store.uri("layer/A1.parquet") == str(data_root / "layer" / "A1.parquet")
    store.delete(["layer/A1.parquet", "layer/missing"])
    assert store.list_keys("layer") == ["layer/B1.parquet"]
    assert store.list_keys("nothing/") == []


def test_reading_a_missing_object_names_it(store):
    with pytest.raises(LayerStoreError, match="'layer/none' does not exist"):
        store.read_bytes("layer/none")


@pytest.mark.parametrize("key", ["../escape", "/absolute", "a//b", "a/./b", "a\\b", ""])
def test_keys_that_could_escape_the_root_are_refused(store, key):
    with pytest.raises(LayerStoreError, match="invalid store key"):
        store.write_bytes(key, b"x")


def test_the_root_must_be_absolute():
    with pytest.raises(LayerStoreError, match="absolute"):
        LocalLayerStore(root="relative/data").uri("a")


def test_a_failed_write_keeps_the_old_object_and_leaves_no_temporary_file(store, monkeypatch):
    store.write_bytes("layer/A1.parquet", b"old")

    def fail(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        store.write_bytes("layer/A1.parquet", b"new")
    monkeypatch.undo()
    assert store.read_bytes("layer/A1.parquet") == b"old"
    assert os.listdir(store.uri("layer/")) == ["A1.parquet"]


def test_replace_prefix_moves_staged_objects_in_and_deletes_the_rest(store):
    store.write_bytes("layer/A1.parquet", b"old a1")
    store.write_bytes("layer/STALE.parquet", b"stale")
    store.write_bytes("staging/A1.parquet", b"new a1")
    store.write_bytes("staging/B2.parquet", b"new b2")
    replaced = store.replace_prefix("staging/", "layer/")
    assert replaced.written == ("layer/A1.parquet", "layer/B2.parquet")
    assert replaced.deleted == ("layer/STALE.parquet",)
    assert store.list_keys("layer/") == ["layer/A1.parquet", "layer/B2.parquet"]
    assert store.read_bytes("layer/A1.parquet") == b"new a1"
    assert store.list_keys("staging/") == []


def test_replacing_with_nothing_staged_empties_the_prefix(store, data_root):
    store.write_bytes("table/first_letter=Q/data_0.parquet", b"q")
    replaced = store.replace_prefix("staging/first_letter=Q/", "table/first_letter=Q/")
    assert replaced.deleted == ("table/first_letter=Q/data_0.parquet",)
    assert not (data_root / "table").exists()


def test_uri_for_writing_prepares_the_folder(store, data_root):
    path = store.uri_for_writing("staging/run/out.parquet")
    assert path == str(data_root / "staging" / "run" / "out.parquet")
    assert (data_root / "staging" / "run").is_dir()
    assert store.uri_for_writing("staging/folder/") == str(data_root / "staging" / "folder")
    assert (data_root / "staging" / "folder").is_dir()
