"""Cutting a joined table into outcode files, whichever engine wrote the table."""

import hashlib
import io
import itertools
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from databaker.layers import outcode_files
from databaker.layers.outcode_files import (
    ROW_DIGESTS,
    ROWS_PER_GROUP,
    EarlierFiles,
    rows_digest,
    write_outcode_files,
)


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def joined(uprns: list[str], postcodes: list[str], ballots: list[list[str]]) -> bytes:
    return parquet(
        pa.table(
            {
                "uprn": uprns,
                "postcode": postcodes,
                "addressbase_source": ["s3://drops/2026-02-02/"] * len(uprns),
                "ballot_ids": pa.array(ballots, type=pa.list_(pa.string())),
            }
        )
    )


def test_files_named_the_way_athena_unload_names_them_are_read_and_markers_skipped(store):
    """UNLOAD writes ``<query id>_<n>`` files without a suffix; ``_``/``.`` files are not data."""
    store.write_bytes(
        "joined/first_letter=L/20261126_101500_00042_abcde_0f1e2d3c",
        joined(["2", "1"], ["LS6 1AA", "LS6 1AA"], [["local.leeds.a.2027-05-06"], []]),
    )
    store.write_bytes(
        "joined/first_letter=S/20261126_101500_00042_abcde_4b5a6978",
        joined(["3"], ["S1 2BB"], [[]]),
    )
    store.write_bytes("joined/first_letter=S/_SUCCESS", b"")
    store.write_bytes("joined/first_letter=S/.hidden", b"not parquet")
    published = write_outcode_files(
        store,
        joined_prefix="joined/",
        output_prefix="layer/",
        columns=["uprn", "postcode", "ballot_ids"],
        ids_column="ballot_ids",
    )
    assert (published.outcodes, published.empty_outcodes, published.rows) == (2, 1, 3)
    assert published.sources == ("s3://drops/2026-02-02/",)
    assert store.list_keys("layer/") == ["layer/LS6.parquet", "layer/S1.parquet"]
    assert published.files == {
        name: hashlib.sha256(store.read_bytes(f"layer/{name}")).hexdigest()
        for name in ("LS6.parquet", "S1.parquet")
    }
    with store.open_input("layer/LS6.parquet") as source:
        assert pq.read_table(source).column("uprn").to_pylist() == ["1", "2"]
    with store.open_input("layer/S1.parquet") as source:
        assert pq.read_table(source).num_columns == 0


def test_a_large_outcode_is_cut_into_row_groups_a_reader_can_skip_by_postcode(store):
    """Rows sorted by postcode in groups of ``ROWS_PER_GROUP`` whose postcode statistics are
    written: the reader decodes only the groups whose range covers the postcode it looks up."""
    n = 2 * ROWS_PER_GROUP + 10
    postcodes = [f"LS6 {i // 676}{chr(65 + i // 26 % 26)}{chr(65 + i % 26)}" for i in range(n)]
    store.write_bytes(
        "joined/first_letter=L/part.parquet",
        joined(
            [str(i) for i in range(n)][::-1], postcodes[::-1], [["local.leeds.x.2027-05-06"]] * n
        ),
    )
    write_outcode_files(
        store,
        joined_prefix="joined/",
        output_prefix="layer/",
        columns=["uprn", "postcode", "ballot_ids"],
        ids_column="ballot_ids",
    )
    with store.open_input("layer/LS6.parquet") as source:
        metadata = pq.ParquetFile(source).metadata
    column = [metadata.schema.column(i).path for i in range(metadata.num_columns)].index("postcode")
    groups = [metadata.row_group(g) for g in range(metadata.num_row_groups)]
    assert [group.num_rows for group in groups] == [ROWS_PER_GROUP, ROWS_PER_GROUP, 10]
    ranges = [(g.column(column).statistics.min, g.column(column).statistics.max) for g in groups]
    ordered = sorted(postcodes)
    bounds = [0, ROWS_PER_GROUP, 2 * ROWS_PER_GROUP, n]
    assert ranges == [(ordered[a], ordered[b - 1]) for a, b in itertools.pairwise(bounds)]


def test_files_whose_rows_did_not_change_are_copied_from_the_earlier_version(store, monkeypatch):
    """A rebake encodes only the outcodes whose rows changed; the others are the earlier
    version's files, so the result is byte for byte what encoding every outcode gives."""
    first = joined(
        ["1", "2", "3"],
        ["LS6 1AA", "LS6 1AB", "LS7 2BB"],
        [["local.leeds.a.2027-05-06"], [], ["local.leeds.b.2027-05-06"]],
    )
    second = joined(
        ["1", "2", "3"],
        ["LS6 1AA", "LS6 1AB", "LS7 2BB"],
        [["local.leeds.a.2027-05-06"], [], ["local.leeds.c.2027-05-06"]],
    )
    columns = {"columns": ["uprn", "postcode", "ballot_ids"], "ids_column": "ballot_ids"}
    store.write_bytes("joined/first_letter=L/part.parquet", first)
    store.write_bytes("joined/first_letter=S/part.parquet", joined(["4"], ["S1 2BB"], [[]]))
    before = write_outcode_files(store, joined_prefix="joined/", output_prefix="v1/", **columns)
    store.write_bytes("v1/" + ROW_DIGESTS, json.dumps(before.row_digests).encode())
    store.write_bytes("joined/first_letter=L/part.parquet", second)
    encoded: list[int] = []
    original = outcode_files._parquet_bytes
    monkeypatch.setattr(
        outcode_files,
        "_parquet_bytes",
        lambda t, ids: encoded.append(t.num_rows) or original(t, ids),
    )
    earlier = EarlierFiles.kept(store, "v1/", before.files)
    after = write_outcode_files(
        store, joined_prefix="joined/", output_prefix="v2/", earlier=earlier, **columns
    )
    assert (after.reused, encoded) == (2, [1])
    fresh = write_outcode_files(store, joined_prefix="joined/", output_prefix="v3/", **columns)
    assert after.files == fresh.files and after.row_digests == fresh.row_digests
    assert after.files["LS6.parquet"] == before.files["LS6.parquet"]
    assert after.files["LS7.parquet"] != before.files["LS7.parquet"]
    for name in fresh.files:
        assert store.read_bytes("v2/" + name) == store.read_bytes("v3/" + name)


def test_a_version_without_row_digests_is_not_reused(store):
    """Versions written before row digests were kept are read again, never trusted."""
    store.write_bytes("v1/LS6.parquet", b"whatever")
    assert EarlierFiles.kept(store, "v1/", {"LS6.parquet": "0" * 64}) is None
    store.write_bytes("v1/" + ROW_DIGESTS, b"not json")
    assert EarlierFiles.kept(store, "v1/", {"LS6.parquet": "0" * 64}) is None


def test_equal_rows_have_one_digest_whatever_table_they_were_cut_from():
    ids = pa.list_(pa.string())
    whole = pa.table({"uprn": ["1", "2", "3"], "ballot_ids": pa.array([["a"], [], ["b"]], ids)})
    alone = pa.table({"uprn": ["2", "3"], "ballot_ids": pa.array([[], ["b"]], ids)})
    assert rows_digest(whole.slice(1, 2)) == rows_digest(alone)
    assert rows_digest(whole.slice(0, 2)) != rows_digest(alone)


def test_row_digests_do_not_depend_on_how_the_joined_table_is_split_into_files(store):
    """An engine may write a letter as one file or several (Athena's ``UNLOAD`` does): the same
    rows must get the same digests, or an unchanged outcode would be encoded again."""
    uprns = ["5", "1", "4", "2", "3"]
    postcodes = ["LS6 1AB", "LS6 1AA", "LS7 2BB", "LS6 1AA", "LS7 2BA"]
    ballots = [["local.leeds.a.2027-05-06"], [], ["local.leeds.b.2027-05-06"], [], []]
    columns = {"columns": ["uprn", "postcode", "ballot_ids"], "ids_column": "ballot_ids"}
    store.write_bytes("one/first_letter=L/part.parquet", joined(uprns, postcodes, ballots))
    for part, rows in enumerate((slice(0, 2), slice(2, 3), slice(3, 5))):
        store.write_bytes(
            f"three/first_letter=L/part-{part}.parquet",
            joined(uprns[rows], postcodes[rows], ballots[rows]),
        )
    whole = write_outcode_files(store, joined_prefix="one/", output_prefix="v1/", **columns)
    pieces = write_outcode_files(store, joined_prefix="three/", output_prefix="v2/", **columns)
    assert whole.row_digests == pieces.row_digests
    assert whole.row_digests["LS6.parquet"] != whole.row_digests["LS7.parquet"]
    assert whole.files == pieces.files


def ordered(table: pa.Table) -> list[int]:
    postcodes = pc.dictionary_encode(table["postcode"]).combine_chunks()
    return outcode_files._postcode_then_uprn(table, postcodes).tolist()


@pytest.mark.parametrize(
    "uprns",
    [
        ["9", "10", "100", "1000", "99", "100000000000", "999999999999", "1", "90", "910"],
        ["9", "10", "x7", "1000", "99", "100000000000", "999999999999", "1", "90", "910"],
        ["9", "10", "100", "1000", "99", "1000000000000", "999999999999", "1", "90", "910"],
    ],
    ids=["digits", "not digits: sorted as text", "13 digits: sorted as text"],
)
def test_rows_are_ordered_by_postcode_then_uprn_as_text(uprns):
    """UPRNs compare as text, where "10" comes before "9", as in a file sorted by any reader."""
    postcodes = ["LS6 1AB", "LS6 1AA", "LS6 1AB", "LS6 1AA", "LS10 1AA"] * 2
    table = pa.table({"uprn": uprns, "postcode": postcodes})
    expected = sorted(range(len(uprns)), key=lambda i: (postcodes[i], uprns[i]))
    assert ordered(table) == expected


def test_uprns_that_are_numbers_are_ordered_as_numbers():
    """A table whose UPRNs are integers (as a diff reads them) is sorted by their values."""
    table = pa.table({"uprn": [10, 9, 100, 1], "postcode": ["LS6 1AA"] * 4})
    assert ordered(table) == [3, 1, 0, 2]
