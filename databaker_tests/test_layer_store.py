"""The layer-store contract, held by the local store and the S3 store alike."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databaker.resources import LayerStore, LayerStoreError, LocalLayerStore, S3LayerStore


@pytest.fixture(params=["local", "s3"])
def any_store(request, tmp_path) -> LayerStore:
    if request.param == "local":
        return LocalLayerStore(root=str(tmp_path / "data"))
    server = request.getfixturevalue("s3_env")
    return S3LayerStore(root=f"s3://{server.new_bucket()}/deployments/test")


def test_write_read_list_delete(any_store):
    any_store.write_bytes("layer/B1.parquet", b"b")
    any_store.write_bytes("layer/A1.parquet", b"a")
    any_store.write_bytes("other/x", b"x")
    assert any_store.list_keys("layer/") == ["layer/A1.parquet", "layer/B1.parquet"]
    assert any_store.read_bytes("layer/A1.parquet") == b"a"
    any_store.delete(["layer/A1.parquet", "layer/missing"])
    assert any_store.list_keys("layer") == ["layer/B1.parquet"]
    assert any_store.list_keys("nothing/") == []


def test_a_prefix_is_not_a_partial_name(any_store):
    any_store.write_bytes("layer/A1.parquet", b"a")
    any_store.write_bytes("layer_old/A1.parquet", b"old")
    assert any_store.list_keys("layer/") == ["layer/A1.parquet"]


def test_reading_a_missing_object_names_it(any_store):
    with pytest.raises(LayerStoreError, match="'layer/none' does not exist"):
        any_store.read_bytes("layer/none")


@pytest.mark.parametrize("key", ["../escape", "/absolute", "a//b", "a/./b", "a\\b", ""])
def test_keys_that_could_escape_the_root_are_refused(any_store, key):
    with pytest.raises(LayerStoreError, match="invalid store key"):
        any_store.write_bytes(key, b"x")


def test_a_copy_is_independent_of_its_source(any_store):
    any_store.write_bytes("raw/A/part.parquet", b"letter a")
    any_store.write_bytes("partitioned/A/part.parquet", b"older")
    any_store.copy("raw/A/part.parquet", "partitioned/A/part.parquet")
    any_store.write_bytes("raw/A/part.parquet", b"rewritten")
    any_store.delete(["raw/A/part.parquet"])
    assert any_store.read_bytes("partitioned/A/part.parquet") == b"letter a"
    with pytest.raises(LayerStoreError):
        any_store.copy("raw/B/missing.parquet", "partitioned/B/missing.parquet")


def test_replace_prefix_moves_staged_objects_in_and_deletes_the_rest(any_store):
    any_store.write_bytes("layer/A1.parquet", b"old a1")
    any_store.write_bytes("layer/STALE.parquet", b"stale")
    any_store.write_bytes("staging/A1.parquet", b"new a1")
    any_store.write_bytes("staging/B2.parquet", b"new b2")
    replaced = any_store.replace_prefix("staging/", "layer/")
    assert replaced.written == ("layer/A1.parquet", "layer/B2.parquet")
    assert replaced.deleted == ("layer/STALE.parquet",)
    assert any_store.list_keys("layer/") == ["layer/A1.parquet", "layer/B2.parquet"]
    assert any_store.read_bytes("layer/A1.parquet") == b"new a1"
    assert any_store.list_keys("staging/") == []


def test_replace_prefix_by_copying_keeps_the_source(any_store):
    any_store.write_bytes("table/first_letter=Q/_partition.json", b"record")
    any_store.write_bytes("table/first_letter=Q/part-9.parquet", b"stale")
    any_store.write_bytes("raw/first_letter=Q/part-0.parquet", b"rows")
    replaced = any_store.replace_prefix("raw/first_letter=Q/", "table/first_letter=Q/", copy=True)
    assert replaced.written == ("table/first_letter=Q/part-0.parquet",)
    assert any_store.list_keys("table/") == ["table/first_letter=Q/part-0.parquet"]
    assert any_store.list_keys("raw/") == ["raw/first_letter=Q/part-0.parquet"]
    assert any_store.read_bytes("table/first_letter=Q/part-0.parquet") == b"rows"


def test_replacing_with_nothing_staged_empties_the_prefix(any_store):
    any_store.write_bytes("table/first_letter=Q/data_0.parquet", b"q")
    replaced = any_store.replace_prefix("staging/first_letter=Q/", "table/first_letter=Q/")
    assert replaced.deleted == ("table/first_letter=Q/data_0.parquet",)
    assert any_store.list_keys("table/") == []


def failing_at(name: str, method: str, store: LayerStore):
    """The store's ``method`` (a move or a copy), failing for a target named ``name``."""
    original = getattr(type(store), method)

    def failing(self, source: str, target: str) -> None:
        if target.endswith("/" + name):
            raise LayerStoreError("the machine went away")
        original(self, source, target)

    return failing


def test_a_replacement_cut_short_leaves_no_record_of_objects_not_there(any_store, monkeypatch):
    """A letter's record describes its data files: the old one goes before any file moves and
    the new one arrives after them all, so a replacement that stops part-way leaves none."""
    letter, staging = "table/first_letter=Q/", "staging/first_letter=Q/"
    any_store.write_bytes(letter + "_partition.json", b"old record")
    any_store.write_bytes(letter + "data_0.parquet", b"old rows")
    any_store.write_bytes(letter + "data_1.parquet", b"old rows, stale")
    any_store.write_bytes(staging + "_partition.json", b"new record")
    any_store.write_bytes(staging + "data_0.parquet", b"new rows")
    any_store.write_bytes(staging + "data_1.parquet", b"new rows too")
    with monkeypatch.context() as patched:
        for name in ("_move", "_copy"):  # S3 moves by copying
            patched.setattr(type(any_store), name, failing_at("data_1.parquet", name, any_store))
        with pytest.raises(LayerStoreError):
            any_store.replace_prefix(staging, letter)
    assert any_store.list_keys(letter) == [letter + "data_0.parquet", letter + "data_1.parquet"]
    assert any_store.read_bytes(letter + "data_1.parquet") == b"old rows, stale"

    any_store.delete_prefix(staging)
    any_store.write_bytes(staging + "_partition.json", b"newer record")
    any_store.write_bytes(staging + "data_1.parquet", b"newer rows")
    replaced = any_store.replace_prefix(staging, letter)
    assert replaced.written == (letter + "_partition.json", letter + "data_1.parquet")
    assert replaced.deleted == (letter + "data_0.parquet",)
    assert any_store.read_bytes(letter + "_partition.json") == b"newer record"


def test_open_input_reads_a_parquet_footer(any_store, tmp_path):
    pq.write_table(pa.table({"uprn": list(range(1234))}), tmp_path / "t.parquet")
    any_store.write_bytes("table/t.parquet", (tmp_path / "t.parquet").read_bytes())
    with any_store.open_input("table/t.parquet") as source:
        assert pq.ParquetFile(source).metadata.num_rows == 1234


def test_open_output_streams_an_object_written_in_pieces(any_store):
    with (
        any_store.open_output("staging/t.parquet") as sink,
        pq.ParquetWriter(sink, pa.schema({"uprn": pa.int64()})) as writer,
    ):
        for start in (0, 1000):
            writer.write_table(pa.table({"uprn": list(range(start, start + 1000))}))
    with any_store.open_input("staging/t.parquet") as source:
        assert pq.read_table(source)["uprn"].to_pylist() == list(range(2000))


def test_uris_end_in_the_key_and_folders_keep_their_slash(any_store):
    assert any_store.uri("layer/A1.parquet").endswith("/layer/A1.parquet")
    assert any_store.uri("layer/").endswith("/layer/")
    assert any_store.uri_for_writing("staging/folder/").endswith("/staging/folder/")


def test_folders_are_named_without_listing_their_objects(any_store):
    for key in ["versions/b2/A1.parquet", "versions/b1/_manifest.json", "versions/b1/x/y", "v"]:
        any_store.write_bytes(key, b"-")
    any_store.write_bytes("versions/loose.json", b"-")
    assert any_store.list_folders("versions/") == ["b1", "b2"]
    assert any_store.list_folders("versions/b1") == ["x"]
    assert any_store.list_folders("nothing/") == []
    assert any_store.exists("versions/b1/_manifest.json")
    assert not any_store.exists("versions/b2/_manifest.json")
    assert not any_store.exists("versions/b1")


def test_many_objects_are_written_read_and_copied_each_whole(any_store):
    keys = [f"staged/{n:03}.parquet" for n in range(60)]
    with any_store.writes() as write:
        for n, key in enumerate(keys):
            write(key, bytes([n]) * (n + 1))
    assert any_store.list_keys("staged/") == keys
    assert list(any_store.read_all(keys[::-1])) == [bytes([n]) * (n + 1) for n in range(59, -1, -1)]
    counted = []
    any_store.copy_all([(key, "layer/" + key[7:]) for key in keys], lambda: counted.append(1))
    assert len(counted) == 60
    assert [any_store.read_bytes("layer/" + key[7:]) for key in keys] == list(
        any_store.read_all(keys)
    )
    any_store.move_all([(key, "moved/" + key[7:]) for key in keys])
    assert any_store.list_keys("staged/") == []
    assert len(any_store.list_keys("moved/")) == 60


def test_a_failed_copy_stops_the_rest_and_counts_only_the_copies_made(any_store):
    keys = [f"staged/{n:03}.parquet" for n in range(40)]
    with any_store.writes() as write:
        for key in keys:
            write(key, b"x")
    pairs = [(key, "layer/" + key[7:]) for key in keys]
    pairs.insert(5, ("staged/missing.parquet", "layer/missing.parquet"))
    counted = []
    with pytest.raises(LayerStoreError, match="missing"):
        any_store.copy_all(pairs, lambda: counted.append(1))
    assert len(counted) == len(any_store.list_keys("layer/")) < len(pairs)


def test_a_failed_write_among_many_is_raised(any_store):
    with pytest.raises(LayerStoreError, match="invalid store key"), any_store.writes() as write:
        write("layer/A1.parquet", b"a")
        write("../escape", b"x")
        for n in range(30):
            write(f"layer/B{n}.parquet", b"b")
