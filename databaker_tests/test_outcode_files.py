"""Cutting a joined table into outcode files, whichever engine wrote the table."""

import hashlib
import io
import json
from dataclasses import asdict

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.layers import outcode_files, sampling
from databaker.layers.changed_lists import CHANGED_LISTS_COLUMNS
from databaker.layers.diff import SEPARATOR, EncodedRows, _read_side
from databaker.layers.element_fields import FIELD_SEPARATOR, ElementFields
from databaker.layers.element_files import LetterElements
from databaker.layers.outcode_files import (
    ROW_DIGESTS,
    EarlierFiles,
    OutcodeFiles,
    rows_digest,
    write_outcode_files,
)
from databaker.staging import (
    PartitionRecord,
    RowChanges,
    partition_record,
    write_partition_record,
)

ADDRESSES = ADDRESSBASE_PARTITIONED_TABLE.prefix
"""Where a version takes the address columns a joined letter lacks (the joined tables written
here as parquet hold them all, as an earlier bake's did)."""


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
        addresses=ADDRESSES,
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


def test_an_outcode_file_is_one_row_group_sorted_and_dictionary_encoded_where_values_repeat(
    store,
):
    """The layout chosen for consumers who read a whole file with polars: all the rows in one
    row group, sorted by postcode then UPRN (as text) and saying so, postcode statistics, and
    dictionaries for the postcodes and the IDs' elements, not for UPRNs."""
    n = 3000
    postcodes = [f"LS6 {i // 676}{chr(65 + i // 26 % 26)}{chr(65 + i % 26)}" for i in range(n)]
    ids = [[f"local.leeds.w{i % 7}.2027-05-06"] for i in range(n)]
    store.write_bytes(
        "joined/first_letter=L/part.parquet",
        joined([str(i) for i in range(n)][::-1], postcodes[::-1], ids[::-1]),
    )
    write_outcode_files(
        store,
        joined_prefix="joined/",
        addresses=ADDRESSES,
        output_prefix="layer/",
        columns=["uprn", "postcode", "ballot_ids"],
        ids_column="ballot_ids",
    )
    with store.open_input("layer/LS6.parquet") as source:
        data = source.read()
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    assert metadata.num_row_groups == 1
    group = metadata.row_group(0)
    columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    leaves = list(columns)
    assert group.num_rows == n
    ordered = sorted(zip(postcodes, map(str, range(n)), strict=True))
    statistics = columns["postcode"].statistics
    assert (statistics.min, statistics.max) == (ordered[0][0], ordered[-1][0])
    assert [(c.column_index, c.descending) for c in group.sorting_columns] == [
        (leaves.index("postcode"), False),
        (leaves.index("uprn"), False),
    ]
    dictionary = {leaf for leaf, c in columns.items() if "RLE_DICTIONARY" in c.encodings}
    assert dictionary == {"postcode", "ballot_ids.list.element"}
    read = pl.read_parquet(io.BytesIO(data))
    assert read.schema["ballot_ids"] == pl.List(pl.String)
    assert list(zip(read["postcode"], read["uprn"], strict=True)) == ordered


def test_files_whose_rows_did_not_change_are_copied_from_the_earlier_version(store, rows_encoded):
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
    before = write_outcode_files(
        store, joined_prefix="joined/", addresses=ADDRESSES, output_prefix="v1/", **columns
    )
    store.write_bytes("v1/" + ROW_DIGESTS, json.dumps(before.row_digests).encode())
    store.write_bytes("joined/first_letter=L/part.parquet", second)
    encoded = rows_encoded
    encoded.clear()
    earlier = EarlierFiles.kept(store, "v1/", before.files)
    after = write_outcode_files(
        store,
        joined_prefix="joined/",
        addresses=ADDRESSES,
        output_prefix="v2/",
        earlier=earlier,
        **columns,
    )
    assert (after.reused, encoded) == (2, [1])
    fresh = write_outcode_files(
        store, joined_prefix="joined/", addresses=ADDRESSES, output_prefix="v3/", **columns
    )
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
    whole = write_outcode_files(
        store, joined_prefix="one/", addresses=ADDRESSES, output_prefix="v1/", **columns
    )
    pieces = write_outcode_files(
        store, joined_prefix="three/", addresses=ADDRESSES, output_prefix="v2/", **columns
    )
    assert whole.row_digests == pieces.row_digests
    assert whole.row_digests["LS6.parquet"] != whole.row_digests["LS7.parquet"]
    assert whole.files == pieces.files


def test_files_and_digests_do_not_depend_on_how_the_joined_lists_are_encoded(store):
    """The joined tables' writers encode a list's strings as a dictionary, which Arrow reads
    back one row group at a time and as another type: the outcode files hold the same bytes,
    and the rows the same digests, as from lists written plainly."""
    uprns = ["5", "1", "4", "2", "3"]
    postcodes = ["LS6 1AB", "LS6 1AA", "LS7 2BB", "LS6 1AA", "LS7 2BA"]
    ballots = [["local.leeds.a.2027-05-06"], [], ["local.leeds.b.2027-05-06", "x"], [], ["x"]]
    columns = {"columns": ["uprn", "postcode", "ballot_ids"], "ids_column": "ballot_ids"}
    store.write_bytes("plain/first_letter=L/data_0.parquet", joined(uprns, postcodes, ballots))
    table = pq.read_table(pa.py_buffer(joined(uprns, postcodes, ballots)))
    sink = io.BytesIO()
    pq.write_table(table, sink, use_dictionary=["ballot_ids.list.element"], row_group_size=2)
    written = pq.ParquetFile(pa.py_buffer(sink.getvalue())).metadata
    assert written.num_row_groups == 3
    assert "RLE_DICTIONARY" in written.row_group(0).column(3).encodings
    store.write_bytes("encoded/first_letter=L/data_0.parquet", sink.getvalue())
    plain = write_outcode_files(
        store, joined_prefix="plain/", addresses=ADDRESSES, output_prefix="v1/", **columns
    )
    encoded = write_outcode_files(
        store, joined_prefix="encoded/", addresses=ADDRESSES, output_prefix="v2/", **columns
    )
    assert encoded.files == plain.files
    assert encoded.row_digests == plain.row_digests
    assert (
        encoded.addresses_per_id
        == plain.addresses_per_id
        == {
            "local.leeds.a.2027-05-06": 1,
            "local.leeds.b.2027-05-06": 1,
            "x": 2,
        }
    )


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
    as_read = table.set_column(1, "postcode", pc.dictionary_encode(table["postcode"]))
    assert ordered(as_read) == expected, "postcodes read dictionary-encoded"


def test_outcodes_are_those_of_the_postcodes_a_letter_holds():
    """A letter's postcodes read from row groups' dictionaries may carry a postcode no row
    holds (ZZ9 9ZZ here): it names no outcode, and each file's postcodes are plain strings."""
    dictionary = pa.array(["LS6 1AA", "ZZ9 9ZZ", "LS1 1AA"])
    postcodes = pa.DictionaryArray.from_arrays(pa.array([0, 2, 0], pa.int32()), dictionary)
    table = pa.table(
        {
            "uprn": ["3", "2", "1"],
            "postcode": postcodes,
            "ballot_ids": pa.array([["a"], [], []], pa.list_(pa.string())),
        }
    )
    outcodes = outcode_files._Outcodes.of(table, "ballot_ids")
    assert sorted(outcodes.names) == ["LS1", "LS6"]
    counts = dict(zip(outcodes.names, outcodes.rows.tolist(), strict=True))
    assert counts == {"LS6": 2, "LS1": 1}
    cut = list(outcode_files._split_by_outcode(table, "ballot_ids"))
    assert {rows.schema.field("postcode").type for _, rows, _ in cut} == {pa.string()}
    files = {name: rows.to_pydict() for name, rows, _ in cut}
    assert files["LS6"]["postcode"] == ["LS6 1AA", "LS6 1AA"]
    assert files["LS6"]["uprn"] == ["1", "3"]
    assert files["LS1"]["postcode"] == ["LS1 1AA"]


def test_some_outcodes_cut_from_a_table_of_many_chunks():
    """A letter read in part cuts only the outcodes asked for, from a table of several chunks
    (as row groups read one by one leave it, each with its own postcode dictionary): each gets
    its own rows, sorted, and no other outcode is yielded."""
    rows = [
        ("5", "LS6 1AA", ["a"]),
        ("2", "EX1 1AA", ["c"]),
        ("30", "LS6 1AB", ["b"]),
        ("3", "LS6 1AA", ["a"]),
        ("4", "LS1 1AA", []),
        ("6", "EX1 1AB", []),
        ("10", "LS1 2AA", ["d"]),
        ("1", "LS6 1AA", []),
    ]
    chunks = [rows[:3], rows[3:4], rows[4:]]

    def chunk(part):
        uprns, postcodes, ballots = zip(*part, strict=True)
        return pa.table(
            {
                "uprn": list(uprns),
                "postcode": pc.dictionary_encode(pa.array(list(postcodes))),
                "ballot_ids": pa.array(list(ballots), pa.list_(pa.string())),
            }
        )

    table = pa.concat_tables([chunk(part) for part in chunks])
    assert table["postcode"].num_chunks == 3
    cut = {
        name: (rows.to_pydict(), with_ids)
        for name, rows, with_ids in outcode_files._split_by_outcode(
            table, "ballot_ids", only={"LS6", "LS1"}
        )
    }
    assert cut == {
        "LS1": (
            {
                "uprn": ["4", "10"],
                "postcode": ["LS1 1AA", "LS1 2AA"],
                "ballot_ids": [[], ["d"]],
                "outcode": ["LS1", "LS1"],
            },
            1,
        ),
        "LS6": (
            {
                "uprn": ["1", "3", "5", "30"],
                "postcode": ["LS6 1AA", "LS6 1AA", "LS6 1AA", "LS6 1AB"],
                "ballot_ids": [[], ["a"], ["a"], ["b"]],
                "outcode": ["LS6"] * 4,
            },
            3,
        ),
    }


def test_uprns_that_are_numbers_are_ordered_as_numbers():
    """A table whose UPRNs are integers (as a diff reads them) is sorted by their values."""
    table = pa.table({"uprn": [10, 9, 100, 1], "postcode": ["LS6 1AA"] * 4})
    assert ordered(table) == [3, 1, 0, 2]


COLUMNS = {"columns": ["uprn", "postcode", "ballot_ids"], "ids_column": "ballot_ids"}
DROP = "s3://drops/2026-02-02/"


def letter_rows(
    store,
    prefix: str,
    letter: str,
    rows: list[tuple[str, str, list[str]]],
    *,
    token=True,
    changes: RowChanges | None = None,
) -> None:
    """Write ``rows`` (UPRN, postcode, ballots) as the joined table's ``letter``, with a new
    record as ``rebuild_letter_partitions`` writes one (none if not ``token``)."""
    uprns, postcodes, ballots = (list(column) for column in zip(*rows, strict=True))
    store.write_bytes(
        f"{prefix}first_letter={letter}/part.parquet", joined(uprns, postcodes, ballots)
    )
    if token:
        record = PartitionRecord.new(len(rows), changes=changes)
        write_partition_record(store, prefix, letter, record)


def bake(
    store,
    prefix: str,
    earlier: tuple[str, OutcodeFiles] | None = None,
    joined="joined/",
    changed_lists: dict[str, pa.Table] | None = None,
):
    """A version as the version step writes one: its files, then what a later bake reuses."""
    kept = EarlierFiles.kept(store, earlier[0], earlier[1].files) if earlier else None
    written = write_outcode_files(
        store,
        joined_prefix=joined,
        addresses=ADDRESSES,
        output_prefix=prefix,
        earlier=kept,
        changed_lists=changed_lists,
        **COLUMNS,
    )
    written.keep(store, prefix)
    return written


@pytest.fixture
def letters_read(monkeypatch) -> list[str]:
    """The letters whose joined files a bake reads."""
    read: list[str] = []
    original = outcode_files.read_joined

    def reading(store, keys, **options):
        read.extend(sorted({key.split("first_letter=")[1].split("/")[0] for key in keys}))
        return original(store, keys, **options)

    monkeypatch.setattr(outcode_files, "read_joined", reading)
    return read


def as_written(written: OutcodeFiles) -> dict:
    """What a bake gives, but for what it copied rather than encoded."""
    return {
        "counts": (
            written.outcodes,
            written.empty_outcodes,
            written.rows,
            written.rows_with_ids,
            written.rows_in_files,
        ),
        "sources": written.sources,
        "files": written.files,
        "row_digests": written.row_digests,
        "addresses_per_id": written.addresses_per_id,
        "sample": written.ranked_sample.to_pylist(),
    }


A_ROWS = [
    ("11", "AB1 1AA", ["local.aberdeen.x.2027-05-06"]),
    ("12", "AB1 1AB", []),
    ("13", "AL5 2BB", ["local.herts.y.2027-05-06", "parl.harpenden.2029-05-03"]),
]
B_ROWS = [
    ("21", "B1 1AA", ["local.birmingham.z.2027-05-06"]),
    ("22", "BA1 2CC", []),
]
C_ROWS = [("31", "CB1 1AA", ["local.cambridge.w.2027-05-06"])]


def test_a_letter_whose_token_is_unchanged_is_not_read_but_copied(store, letters_read):
    """Letter A keeps its record: its files, counts and sample come from version 1, though
    its parquet on disk now says otherwise (nothing should rewrite a letter and keep its token,
    so this shows A was not read). B has new rows and a new token: it is read."""
    for letter, rows in (("A", A_ROWS), ("B", B_ROWS), ("C", C_ROWS)):
        letter_rows(store, "joined/", letter, rows)
    first = bake(store, "v1/")
    assert (first.letters_kept, letters_read) == (0, ["A", "B", "C"])
    new_b = [("21", "B1 1AA", ["local.birmingham.q.2027-05-06"]), ("23", "B2 4DD", [])]
    letter_rows(store, "joined/", "B", new_b)
    a_token = partition_record(store, "joined/", "A").token
    store.write_bytes(
        "joined/first_letter=A/part.parquet",
        joined(["11"], ["AB1 1AA"], [["local.aberdeen.changed.2027-05-06"]]),
    )
    letters_read.clear()
    second = bake(store, "v2/", earlier=("v1/", first))
    assert (second.letters_kept, len(second.letters), letters_read) == (2, 3, ["B"])
    for name in ("AB1.parquet", "AL5.parquet", "CB1.parquet"):
        assert store.read_bytes("v2/" + name) == store.read_bytes("v1/" + name)
    assert second.reused == 3 and second.letters["A"].token == a_token

    for letter, rows in (("A", A_ROWS), ("B", new_b), ("C", C_ROWS)):
        letter_rows(store, "full/", letter, rows)
    full = bake(store, "v3/", joined="full/")
    assert as_written(second) == as_written(full)
    for name in full.files:
        assert store.read_bytes("v2/" + name) == store.read_bytes("v3/" + name)
    assert second.addresses_per_id == {
        "local.aberdeen.x.2027-05-06": 1,
        "local.birmingham.q.2027-05-06": 1,
        "local.cambridge.w.2027-05-06": 1,
        "local.herts.y.2027-05-06": 1,
        "parl.harpenden.2029-05-03": 1,
    }
    assert second.rows == 6 and second.sources == (DROP,)
    assert sorted((r["uprn"], r["ids"], r["letter"]) for r in second.ranked_sample.to_pylist()) == [
        ("11", 1, "A"),
        ("12", 0, "A"),
        ("13", 2, "A"),
        ("21", 1, "B"),
        ("23", 0, "B"),
        ("31", 1, "C"),
    ]
    assert set(second.files) == {
        "AB1.parquet",
        "AL5.parquet",
        "B1.parquet",
        "B2.parquet",
        "CB1.parquet",
    }


def test_a_letter_without_a_record_or_with_another_token_is_read(store, letters_read):
    """No record: nothing is known of its rows. Another token: it was rewritten. A version
    without the letters' summaries (an older release's) still lends its files by row digest."""
    letter_rows(store, "joined/", "A", A_ROWS, token=False)
    letter_rows(store, "joined/", "B", B_ROWS)
    first = bake(store, "v1/")
    letters_read.clear()
    second = bake(store, "v2/", earlier=("v1/", first))
    assert (second.letters_kept, letters_read) == (1, ["A"])
    assert second.letters["A"].token is None

    write_partition_record(store, "joined/", "B", PartitionRecord.new(len(B_ROWS)))
    letters_read.clear()
    third = bake(store, "v3/", earlier=("v2/", second))
    assert (third.letters_kept, letters_read) == (0, ["A", "B"])
    assert third.reused == len(third.files) == 4

    store.delete(["v3/" + outcode_files.LETTERS])
    letters_read.clear()
    fourth = bake(store, "v4/", earlier=("v3/", third))
    assert (fourth.letters_kept, letters_read, fourth.reused) == (0, ["A", "B"], 4)
    assert as_written(fourth) == as_written(second) == as_written(first)


def by_rank(count: int) -> list[str]:
    """``count`` UPRNs, lowest rank first (the sample's order of preference)."""
    uprns = pa.array(range(1000, 1000 + count), pa.int64())
    return [str(uprns[int(i)].as_py()) for i in np.argsort(sampling.uprn_ranks(uprns))]


@pytest.mark.parametrize(
    ("changed_b", "kept"),
    [
        pytest.param([1, 3, 5, 7], 1, id="B keeps its low ranks: A is not read"),
        pytest.param([5, 7], 0, id="B loses its low ranks: A is read after all"),
    ],
)
def test_the_sample_is_the_one_every_letter_read_would_give(
    store, letters_read, monkeypatch, changed_b, kept
):
    """A sample of 3: version 1 holds r1..r3 (r_k, the k-th lowest rank): A's r2, B's r1 and r3.
    If B still holds r1 and r3, the lowest three are drawn from the sample's A rows and B's: A
    rows not sampled before rank above r3. If B lost them, A's r4 belongs in the sample, and
    only reading A finds it."""
    monkeypatch.setattr(sampling, "SAMPLE_SIZE", 3)
    r = [None, *by_rank(8)]
    a = [(r[k], f"AB1 1A{k}", ["local.a.2027-05-06"]) for k in (2, 4, 6, 8)]
    letter_rows(store, "joined/", "A", a)
    letter_rows(store, "joined/", "B", [(r[k], "B1 1AA", []) for k in (1, 3, 5, 7)])
    first = bake(store, "v1/")
    assert sorted(first.address_sample["uprn"].to_pylist()) == sorted([r[1], r[2], r[3]])
    b = [(r[k], "B1 1AA", ["local.b.2027-05-06"]) for k in changed_b]
    letter_rows(store, "joined/", "B", b)
    letters_read.clear()
    second = bake(store, "v2/", earlier=("v1/", first))
    assert (second.letters_kept, letters_read) == (kept, ["B"] if kept else ["B", "A"])
    expected = sorted((2, 4, 6, 8, *changed_b))[:3]
    assert sorted(second.address_sample["uprn"].to_pylist()) == sorted(r[k] for k in expected)
    letter_rows(store, "full/", "A", a)
    letter_rows(store, "full/", "B", b)
    assert as_written(second) == as_written(bake(store, "v3/", joined="full/"))


def test_letter_summaries_that_cannot_be_trusted_are_not_used(store, letters_read):
    """Unreadable summaries, a sample ranked otherwise than addresses are now (its addresses
    would not be the lowest ranks any more), or files cut with other columns: every letter is
    read, files still copied by their rows' digests."""
    letter_rows(store, "joined/", "A", A_ROWS)
    first = bake(store, "v1/")
    assert EarlierFiles.kept(store, "v1/", first.files).letters is not None
    letters_read.clear()
    other_columns = write_outcode_files(
        store,
        joined_prefix="joined/",
        addresses=ADDRESSES,
        output_prefix="v2/",
        earlier=EarlierFiles.kept(store, "v1/", first.files),
        columns=["uprn", "ballot_ids"],
        ids_column="ballot_ids",
    )
    assert (other_columns.letters_kept, letters_read) == (0, ["A"])

    sample = first.ranked_sample
    reranked = sample.set_column(2, "rank", pc.add(sample["rank"], pa.scalar(1, pa.uint64())))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, reranked.schema) as file:
        file.write_table(reranked)
    store.write_bytes("v1/" + outcode_files.SAMPLE, sink.getvalue().to_pybytes())
    assert EarlierFiles.kept(store, "v1/", first.files).letters is None
    store.write_bytes("v1/" + outcode_files.SAMPLE, b"not arrow")
    assert EarlierFiles.kept(store, "v1/", first.files).letters is None
    first.keep(store, "v1/")
    store.write_bytes("v1/" + outcode_files.LETTERS, b'{"letters": {}}')
    assert EarlierFiles.kept(store, "v1/", first.files).letters is None
    letters_read.clear()
    again = bake(store, "v3/", earlier=("v1/", first))
    assert (again.letters_kept, letters_read, again.reused) == (0, ["A"], 2)


@pytest.fixture
def outcodes_cut(monkeypatch) -> list[str]:
    """The outcodes whose rows a bake sorts, takes and digests."""
    cut: list[str] = []
    original = outcode_files._split_by_outcode

    def cutting(*args, **kwargs):
        for outcode, rows, with_ids in original(*args, **kwargs):
            cut.append(outcode)
            yield outcode, rows, with_ids

    monkeypatch.setattr(outcode_files, "_split_by_outcode", cutting)
    return cut


@pytest.fixture
def rows_encoded(monkeypatch) -> list[int]:
    """The rows of each file a bake encodes, in the order it encodes them."""
    encoded: list[int] = []
    original = outcode_files._parquet_bytes
    monkeypatch.setattr(
        outcode_files,
        "_parquet_bytes",
        lambda table, ids: encoded.append(table.num_rows) or original(table, ids),
    )
    return encoded


@pytest.fixture
def outcodes_encoded(monkeypatch) -> list[str]:
    """The outcodes whose files a bake encodes (``""`` for an empty file)."""
    encoded: list[str] = []
    original = outcode_files._parquet_bytes

    def encoding(table, ids):
        postcodes = table["postcode"].to_pylist() if table.num_rows else [""]
        encoded.append(postcodes[0].split(" ")[0])
        return original(table, ids)

    monkeypatch.setattr(outcode_files, "_parquet_bytes", encoding)
    return encoded


def summaries(written: OutcodeFiles) -> dict:
    """What each letter gave, but for the token it was read under."""
    return {letter: asdict(files) | {"token": None} for letter, files in written.letters.items()}


A_BEFORE = [
    ("11", "AB1 1AA", ["local.aberdeen.x.2027-05-06"]),
    ("12", "AB1 1AB", []),
    ("14", "AB2 3CD", ["local.aberdeen.y.2027-05-06"]),
    ("15", "AB3 1ZZ", []),
    ("13", "AL5 2BB", ["local.herts.y.2027-05-06", "parl.harpenden.2029-05-03"]),
]


def rewrite_a(store, rows: list, outcodes: list[str], since: str | None = None) -> OutcodeFiles:
    """Version 1 of letters A (``A_BEFORE``) and B; then A rewritten as ``rows``, its record
    saying that only ``outcodes`` changed since ``since`` (A's token in version 1 unless
    given). Returns version 1."""
    letter_rows(store, "joined/", "A", A_BEFORE)
    letter_rows(store, "joined/", "B", B_ROWS)
    first = bake(store, "v1/")
    since = since or partition_record(store, "joined/", "A").token
    letter_rows(store, "joined/", "A", rows, changes=RowChanges(since, outcodes))
    return first


def from_scratch(store, rows: list) -> OutcodeFiles:
    """Version 3: a bake of letters A (``rows``) and B, with no earlier version."""
    letter_rows(store, "full/", "A", rows)
    letter_rows(store, "full/", "B", B_ROWS)
    return bake(store, "v3/", joined="full/")


def test_a_letter_whose_rows_changed_in_some_outcodes_derives_those_only(
    store, letters_read, outcodes_cut, outcodes_encoded
):
    """A's record says only AB1, AB3 and AL5 changed since version 1 read it: A is read, and
    only those outcodes derived, AB3's without cutting its rows, none of which has an ID (its
    empty file, unchanged, copied by its digest); AB2's file, hash and digest are version 1's.
    What the version gives (files, counts, addresses per ID, sample, what each letter gave)
    is what reading every row gives."""
    rows = [
        ("11", "AB1 1AA", ["local.aberdeen.q.2027-05-06"]),
        ("12", "AB1 1AB", []),
        ("14", "AB2 3CD", ["local.aberdeen.y.2027-05-06"]),
        ("15", "AB3 1ZZ", []),
        ("17", "AL5 2BA", ["local.herts.y.2027-05-06"]),
        ("13", "AL5 2BB", ["local.herts.y.2027-05-06", "parl.harpenden.2029-05-03"]),
    ]
    first = rewrite_a(store, rows, ["AB1", "AB3", "AL5"])
    for spy in (letters_read, outcodes_cut, outcodes_encoded):
        spy.clear()
    second = bake(store, "v2/", earlier=("v1/", first))
    assert (second.letters_kept, second.letters_in_part, letters_read) == (1, 1, ["A"])
    assert (sorted(outcodes_cut), sorted(outcodes_encoded)) == (["AB1", "AL5"], ["AB1", "AL5"])
    assert second.reused == len(["AB2", "AB3", "B1", "BA1"])
    for name in ("AB2.parquet", "AB3.parquet"):
        assert second.files[name] == first.files[name]
        assert second.row_digests[name] == first.row_digests[name]
    assert second.letters["A"].token == partition_record(store, "joined/", "A").token

    full = from_scratch(store, rows)
    assert as_written(second) == as_written(full)
    assert summaries(second) == summaries(full)
    for name in full.files:
        assert store.read_bytes("v2/" + name) == store.read_bytes("v3/" + name)
    assert as_written(second)["counts"] == (6, 2, 8, 5, 6)
    assert second.addresses_per_id == {
        "local.aberdeen.q.2027-05-06": 1,
        "local.aberdeen.y.2027-05-06": 1,
        "local.birmingham.z.2027-05-06": 1,
        "local.herts.y.2027-05-06": 2,
        "parl.harpenden.2029-05-03": 1,
    }
    third = bake(store, "v4/", earlier=("v2/", second))
    assert (third.letters_kept, third.letters_in_part) == (2, 0)
    assert as_written(third) == as_written(full)


def changed_lists_of(before: list, after: list) -> pa.Table:
    """The rows whose lists differ between two versions of a letter's rows, as a rebuild that
    joined some again keeps them."""
    was = {uprn: (postcode, ids) for uprn, postcode, ids in before}
    changed = [
        {"uprn": uprn, "postcode": postcode, "before": was[uprn][1], "after": ids}
        for uprn, postcode, ids in after
        if was[uprn][1] != ids
    ]
    return pa.Table.from_pylist(changed, schema=CHANGED_LISTS_COLUMNS)


@pytest.mark.parametrize(
    ("rows", "read"),
    [
        (
            [
                ("11", "AB1 1AA", ["local.aberdeen.q.2027-05-06"]),
                ("12", "AB1 1AB", ["local.aberdeen.x.2027-05-06"]),
                ("14", "AB2 3CD", []),
                A_BEFORE[3],
                ("13", "AL5 2BB", []),
            ],
            [],
        ),
        (
            [*A_BEFORE[:3], ("15", "AB3 1ZZ", ["local.aberdeen.z.2027-05-06"]), A_BEFORE[4]],
            ["A"],
        ),
    ],
    ids=["lists changed, one outcode emptied: A not read", "an empty outcode gains IDs: A read"],
)
def test_a_letter_given_its_changed_lists_derives_its_files_from_the_earlier_ones(
    store, letters_read, outcodes_cut, rows, read
):
    """Given the rows whose lists changed since version 1 read A, the version derives A's
    changed files from version 1's and those rows, and its counts and sample from version 1's
    and theirs, without reading A: in AB1 one address changes its list and one gains its
    first, AB2 and AL5 lose every ID (empty files now). An outcode published empty before
    (AB3) holds none of its rows in its file, so a letter where one gains IDs is read. Either
    way the version is what a bake from scratch of the same rows gives, file for file."""
    logged = {"A": changed_lists_of(A_BEFORE, rows)}
    changed = sorted({row["postcode"].split()[0] for row in logged["A"].to_pylist()})
    first = rewrite_a(store, rows, changed)
    letters_read.clear()
    outcodes_cut.clear()
    second = bake(store, "v2/", earlier=("v1/", first), changed_lists=logged)
    assert (second.letters_kept, second.letters_in_part, letters_read) == (1, 1, read)
    assert second.letters_from_earlier_files == (0 if read else 1)
    if not read:
        assert outcodes_cut == []
    full = from_scratch(store, rows)
    assert as_written(second) == as_written(full)
    assert summaries(second) == summaries(full)
    for name in full.files:
        assert store.read_bytes("v2/" + name) == store.read_bytes("v3/" + name)
    third = bake(store, "v4/", earlier=("v2/", second))
    assert (third.letters_kept, third.reused) == (2, len(full.files)), "digests carried on"


def test_an_outcode_whose_addresses_have_no_id_is_the_empty_file_and_not_cut(
    store, outcodes_cut, outcodes_encoded
):
    """AB3's and BA1's addresses have no ballot: their files are empty files (no columns, no
    rows), encoded without their rows being sorted or taken; every other outcode is cut."""
    letter_rows(store, "joined/", "A", A_BEFORE)
    letter_rows(store, "joined/", "B", B_ROWS)
    written = bake(store, "v1/")
    assert sorted(outcodes_cut) == ["AB1", "AB2", "AL5", "B1"]
    assert sorted(outcodes_encoded) == ["", "", "AB1", "AB2", "AL5", "B1"]
    for name in ("AB3.parquet", "BA1.parquet"):
        empty = pq.read_table(pa.BufferReader(store.read_bytes("v1/" + name)))
        assert (empty.num_columns, empty.num_rows) == (0, 0)
    assert (written.outcodes, written.empty_outcodes) == (6, 2)


def test_a_letter_changed_since_another_token_is_read_whole(store, letters_read, outcodes_cut):
    """The record's earlier rows are not those version 1 read: every outcode of A is derived,
    those with an ID cut (AB3's addresses have none: its file is the empty one)."""
    rows = [("11", "AB1 1AA", ["local.aberdeen.q.2027-05-06"]), *A_BEFORE[1:]]
    first = rewrite_a(store, rows, ["AB1"], since=PartitionRecord.new(0).token)
    letters_read.clear()
    outcodes_cut.clear()
    second = bake(store, "v2/", earlier=("v1/", first))
    assert (second.letters_kept, second.letters_in_part, letters_read) == (1, 0, ["A"])
    assert sorted(outcodes_cut) == ["AB1", "AB2", "AL5"]
    full = from_scratch(store, rows)
    assert as_written(second) == as_written(full) and summaries(second) == summaries(full)


def test_an_outcode_whose_rows_all_went_away_has_no_file(store, outcodes_cut):
    """AB2's only address left letter A: nothing is cut, AB2 has no file, and the counts are
    those of the rows left."""
    rows = [row for row in A_BEFORE if not row[1].startswith("AB2 ")]
    first = rewrite_a(store, rows, ["AB2"])
    outcodes_cut.clear()
    second = bake(store, "v2/", earlier=("v1/", first))
    assert (second.letters_in_part, outcodes_cut) == (1, [])
    assert "AB2.parquet" in first.files and "AB2.parquet" not in second.files
    assert not store.exists("v2/AB2.parquet")
    assert as_written(second)["counts"] == (5, 2, 6, 3, 4)
    assert second.letters["A"].outcodes == len(["AB1", "AB3", "AL5"])
    full = from_scratch(store, rows)
    assert as_written(second) == as_written(full) and summaries(second) == summaries(full)


def test_outcodes_whose_earlier_files_cannot_hold_their_rows_are_derived_too(store, outcodes_cut):
    """A record that leaves out a new outcode (AB9), one whose rows gained IDs (AB3, an empty
    file before) or lost them all (AB2) would leave the version without a file or with a
    wrong one: those are derived too, with the outcodes it lists (AB2's and AB9's, whose
    addresses have no ID, as empty files without cutting their rows)."""
    rows = [
        *A_BEFORE[:2],
        ("14", "AB2 3CD", []),
        ("15", "AB3 1ZZ", ["local.aberdeen.z.2027-05-06"]),
        A_BEFORE[4],
        ("18", "AB9 1AA", []),
    ]
    first = rewrite_a(store, rows, ["AB1"])
    outcodes_cut.clear()
    second = bake(store, "v2/", earlier=("v1/", first))
    assert second.letters_in_part == 1
    assert sorted(outcodes_cut) == ["AB1", "AB3"]
    full = from_scratch(store, rows)
    assert as_written(second) == as_written(full) and summaries(second) == summaries(full)


RECORDS = ElementFields(("kind", "code", "division"))
RECORD_COLUMNS = {
    "columns": ["uprn", "postcode", "organisations"],
    "ids_column": "organisations",
    "element_fields": RECORDS,
}
COUNCIL_A = FIELD_SEPARATOR.join(("council", "A", "ward-1"))
COUNCIL_B = FIELD_SEPARATOR.join(("council", "B", ""))
PARISH_Q = FIELD_SEPARATOR.join(("parish", "Q", ""))


def joined_records(rows: list[tuple[str, str, list[str]]]) -> bytes:
    """A joined letter whose lists hold records' texts: (UPRN, postcode, texts) per row."""
    uprns, postcodes, texts = (list(column) for column in zip(*rows, strict=True))
    return parquet(
        pa.table(
            {
                "uprn": uprns,
                "postcode": postcodes,
                "addressbase_source": [DROP] * len(rows),
                "organisations": pa.array(texts, pa.list_(pa.string())),
            }
        )
    )


LS6_RECORDS = [
    ("2", "LS6 1AB", [PARISH_Q, COUNCIL_B]),
    ("1", "LS6 1AA", [COUNCIL_A]),
    ("3", "LS6 1AB", []),
]
"""Rows of LS6. In the file's order (postcode, then UPRN) its codes come A, Q, B: a
dictionary built in the order values come would not be sorted."""
LS6_PUBLISHED = [
    [{"kind": "council", "code": "A", "division": "ward-1"}],
    [
        {"kind": "parish", "code": "Q", "division": None},
        {"kind": "council", "code": "B", "division": None},
    ],
    [],
]
"""LS6's lists as a reader gets them, rows sorted by postcode then UPRN."""


def test_records_are_read_back_by_pyarrow_and_polars_as_structs_of_plain_strings(store):
    """Whatever the writer was given, the file holds plain strings: empty values null."""
    store.write_bytes("joined/first_letter=L/part.parquet", joined_records(LS6_RECORDS))
    write_outcode_files(
        store, joined_prefix="joined/", addresses=ADDRESSES, output_prefix="v1/", **RECORD_COLUMNS
    )
    data = store.read_bytes("v1/LS6.parquet")
    table = pq.read_table(pa.py_buffer(data))
    assert table.schema.field("organisations").type == RECORDS.list_type
    assert table["organisations"].to_pylist() == LS6_PUBLISHED
    sorted_texts = pa.array(
        [row[2] for row in sorted(LS6_RECORDS, key=lambda row: (row[1], row[0]))]
    )
    assert table["organisations"].combine_chunks().equals(RECORDS.published_lists(sorted_texts))
    frame = pl.read_parquet(io.BytesIO(data))
    assert frame.schema["organisations"] == pl.List(
        pl.Struct({name: pl.String for name in RECORDS.names})
    )
    assert frame["organisations"].to_list() == LS6_PUBLISHED


def test_each_field_of_the_records_is_stored_as_a_dictionary_of_the_file_s_values_sorted(store):
    """The writer took each field's dictionary as given, not rebuilt in the order values
    come: the values of the file (not of the letter: ``LS7``'s are left out), sorted."""
    ls7 = ("4", "LS7 1AA", [FIELD_SEPARATOR.join(("borough", "Z", "ward-0"))])
    store.write_bytes("joined/first_letter=L/part.parquet", joined_records([*LS6_RECORDS, ls7]))
    write_outcode_files(
        store, joined_prefix="joined/", addresses=ADDRESSES, output_prefix="v1/", **RECORD_COLUMNS
    )
    data = store.read_bytes("v1/LS6.parquet")
    group = pq.ParquetFile(pa.py_buffer(data)).metadata.row_group(0)
    encodings = {
        group.column(i).path_in_schema: group.column(i).encodings for i in range(group.num_columns)
    }
    leaves = [f"organisations.list.element.{name}" for name in RECORDS.names]
    assert all("RLE_DICTIONARY" in encodings[leaf] for leaf in leaves)
    stored = pq.read_table(pa.py_buffer(data), read_dictionary=leaves)["organisations"]
    structs = stored.combine_chunks().values
    assert {name: structs.field(name).dictionary.to_pylist() for name in RECORDS.names} == {
        "kind": ["council", "parish"],
        "code": ["A", "B", "Q"],
        "division": ["ward-1"],
    }


def test_equal_records_have_one_digest_whatever_letter_they_were_cut_from(store, rows_encoded):
    """LS6's rows, beside other outcodes' other elements (sorting before and after its own),
    get the digest and the file they get alone, and a rebake reuses the file; a field changed
    in one element changes the digest."""
    others = [
        ("7", "LS7 1AA", [FIELD_SEPARATOR.join(("aaa", "0", "x"))]),
        ("8", "LS8 1AA", [FIELD_SEPARATOR.join(("zzz", "9", "")), COUNCIL_A]),
    ]
    store.write_bytes("alone/first_letter=L/part.parquet", joined_records(LS6_RECORDS))
    store.write_bytes(
        "beside/first_letter=L/part.parquet", joined_records([*others, *LS6_RECORDS[::-1]])
    )
    changed = [*LS6_RECORDS[:2], ("3", "LS6 1AB", [COUNCIL_A.replace("ward-1", "ward-2")])]
    store.write_bytes("changed/first_letter=L/part.parquet", joined_records(changed))
    alone = write_outcode_files(
        store, joined_prefix="alone/", addresses=ADDRESSES, output_prefix="v1/", **RECORD_COLUMNS
    )
    beside = write_outcode_files(
        store, joined_prefix="beside/", addresses=ADDRESSES, output_prefix="v2/", **RECORD_COLUMNS
    )
    assert beside.row_digests["LS6.parquet"] == alone.row_digests["LS6.parquet"]
    assert beside.files["LS6.parquet"] == alone.files["LS6.parquet"]
    assert len({*beside.row_digests.values()}) == 3
    moved = write_outcode_files(
        store, joined_prefix="changed/", addresses=ADDRESSES, output_prefix="v3/", **RECORD_COLUMNS
    )
    assert moved.row_digests["LS6.parquet"] != alone.row_digests["LS6.parquet"]
    store.write_bytes("v1/" + ROW_DIGESTS, json.dumps(alone.row_digests).encode())
    encoded = rows_encoded
    encoded.clear()
    rebaked = write_outcode_files(
        store,
        joined_prefix="beside/",
        addresses=ADDRESSES,
        output_prefix="v4/",
        earlier=EarlierFiles.kept(store, "v1/", alone.files),
        **RECORD_COLUMNS,
    )
    assert (rebaked.reused, sorted(encoded)) == (1, [1, 1])
    assert rebaked.row_digests == beside.row_digests


def test_element_digests_are_not_those_of_the_published_records():
    """Digests of another form (those of the published structs, kept by versions written
    before) never match, so such a version's files are encoded again, not reused."""
    rows = pa.table(
        {
            "uprn": ["1"],
            "organisations": pa.array([[COUNCIL_A]], pa.list_(pa.string())),
        }
    )
    published = rows.set_column(1, "organisations", RECORDS.published_lists(rows[1]))
    elements = LetterElements.of(RECORDS, rows["organisations"])
    digest, encode = outcode_files._file_rows(
        rows.set_column(1, "organisations", elements.lists), "organisations", elements
    )
    assert digest != rows_digest(published)
    assert encode().cast(published.schema).equals(published)


def test_records_just_encoded_are_compared_as_the_file_read_back_gives_them(store):
    """The diff holds the rows of the files a bake encodes instead of reading them back: for
    records, their texts are the same either way."""
    store.write_bytes("joined/first_letter=L/part.parquet", joined_records(LS6_RECORDS))
    encoded = EncodedRows("organisations", element_fields=RECORDS)
    write_outcode_files(
        store,
        joined_prefix="joined/",
        addresses=ADDRESSES,
        output_prefix="v1/",
        on_encoded=encoded.keep,
        **RECORD_COLUMNS,
    )
    held = encoded.sides(["LS6.parquet"])["LS6.parquet"]
    read = _read_side(store, ["v1/LS6.parquet"], "organisations", RECORDS)
    assert held.to_pylist() == read.to_pylist()
    assert held["key"].to_pylist() == [COUNCIL_A, SEPARATOR.join([PARISH_Q, COUNCIL_B]), ""]
