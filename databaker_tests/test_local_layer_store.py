"""What only the local layer store does: absolute roots, temporary files, folders."""

import os
import stat

import pytest

from databaker.resources import LayerStoreError, LocalLayerStore


def test_uris_are_paths_under_the_root(store, data_root):
    assert store.uri("layer/A1.parquet") == str(data_root / "layer" / "A1.parquet")


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


def test_a_written_object_is_as_readable_as_any_new_file_of_the_process(store):
    """Services of other users read a local layer (a web server, a sync): an object gets the
    permissions the umask gives a new file, not a temporary file's owner-only ones."""
    before = os.umask(0o022)
    try:
        store.write_bytes("layer/A1.parquet", b"rows")
        store.copy("layer/A1.parquet", "published/A1.parquet")
    finally:
        os.umask(before)
    for key in ("layer/A1.parquet", "published/A1.parquet"):
        assert stat.S_IMODE(os.stat(store.uri(key)).st_mode) == 0o644


def test_a_copy_replaces_its_target_in_one_step(store, monkeypatch):
    """The target is never unlinked first: a failed copy leaves the old object in place."""
    store.write_bytes("layer/A1.parquet", b"old")
    store.write_bytes("versions/1/A1.parquet", b"new")

    def fail(*_args):
        raise OSError("interrupted")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="interrupted"):
        store.copy("versions/1/A1.parquet", "layer/A1.parquet")
    monkeypatch.undo()
    assert store.read_bytes("layer/A1.parquet") == b"old"
    assert os.listdir(store.uri("layer/")) == ["A1.parquet"]
    store.copy("versions/1/A1.parquet", "layer/A1.parquet")
    assert store.read_bytes("layer/A1.parquet") == b"new"


def test_copying_an_object_over_its_own_copy_leaves_no_temporary_file(store):
    """A copy is a hard link, so copied again (an interrupted publish completed, over the
    files it had already copied) the target already is the file the temporary name links to."""
    store.write_bytes("versions/1/A1.parquet", b"new")
    store.copy("versions/1/A1.parquet", "layer/A1.parquet")
    store.copy("versions/1/A1.parquet", "layer/A1.parquet")
    assert os.listdir(store.uri("layer/")) == ["A1.parquet"]
    assert store.read_bytes("layer/A1.parquet") == b"new"


def test_emptied_folders_are_removed(store, data_root):
    store.write_bytes("table/first_letter=Q/data_0.parquet", b"q")
    store.delete_prefix("table/")
    assert not (data_root / "table").exists()


def test_uri_for_writing_prepares_the_folder(store, data_root):
    path = store.uri_for_writing("staging/run/out.parquet")
    assert path == str(data_root / "staging" / "run" / "out.parquet")
    assert (data_root / "staging" / "run").is_dir()
    assert store.uri_for_writing("staging/folder/") == str(data_root / "staging" / "folder") + "/"
    assert (data_root / "staging" / "folder").is_dir()
