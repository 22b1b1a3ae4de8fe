"""The layer reader and ``databaker lookup``: postcodes however written, the four kinds of
answer, a UPRN lookup, a bounded cache, S3, and agreement with the baked files."""

from __future__ import annotations

import io
import json
import os
import random
import struct
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databaker import layer_reader
from databaker.bake import bake
from databaker.cli import main
from databaker.definitions import Settings
from databaker.layer_reader import (
    ATTEMPTS,
    WHOLE_FILE_BYTES,
    Address,
    Found,
    InvalidPostcode,
    LayerReader,
    LayerUnreadable,
    NoLayer,
    ReaderStats,
    normalise_postcode,
)
from databaker_tests.conftest import address_line, ballot_line, write_lines

LOCAL = "local.leeds.adel.2027-05-06"
PARL = "parl.leeds-north-west.2027-05-06"
AREA = "POLYGON((-1.7 53.8,-1.5 53.8,-1.5 53.9,-1.7 53.9,-1.7 53.8))"
WIDER = "POLYGON((-1.7 53.8,-1.4 53.8,-1.4 53.9,-1.7 53.9,-1.7 53.8))"


@pytest.fixture(scope="module")
def layer(tmp_path_factory) -> Path:
    """LS16 5AA: two addresses in both ballots' areas; LS16 5AB: one in the wider area only;
    LS16 5AD: one in neither; LS99 1AA: one in neither, and alone in its outcode."""
    root = tmp_path_factory.mktemp("reader")
    drop = write_lines(
        root / "drop" / "part.csv",
        [
            address_line("100", "2 Otley Road, Leeds", "LS16 5AA", -1.6, 53.85),
            address_line("11", '"The Lodge", Otley Road, Leeds', "ls165aa", -1.6, 53.85),
            address_line("20", "1 Holt Lane, Leeds", "LS16 5AB", -1.45, 53.85),
            address_line("30", "3 Far Lane, Leeds", "LS16 5AD", -1.0, 53.85),
            address_line("40", "4 Moor Road, Leeds", "LS99 1AA", -1.0, 53.85),
        ],
    )
    ballots = write_lines(
        root / "ballots.csv",
        [
            "election_id,division_id,geometry,source_table",
            ballot_line(LOCAL, "E05001", AREA, "Division"),
            ballot_line(PARL, "E14001", WIDER, "Division"),
        ],
    )
    bake(addressbase=str(drop.parent), ballots=str(ballots), settings=Settings(str(root / "data")))
    return root / "data" / "current_elections_parquet"


@pytest.mark.parametrize(
    "written", ["SW1A 1AA", "sw1a1aa", "SW1A  1AA", " SW1A1AA ", "sw1a\t1aa", "Sw1A 1aA"]
)
def test_a_postcode_is_read_however_it_is_written(written):
    assert normalise_postcode(written) == "SW1A 1AA"


@pytest.mark.parametrize(
    ("written", "canonical"),
    [("m11ae", "M1 1AE"), ("B338TH", "B33 8TH"), ("cr26xh", "CR2 6XH"), ("DN551PT", "DN55 1PT")],
)
def test_every_shape_of_postcode_gets_its_space_before_the_inward_code(written, canonical):
    assert normalise_postcode(written) == canonical


@pytest.mark.parametrize("written", ["", "hello", "SW1A 1A", "12345", "SW1A-1AA", "SW1A 1AAA"])
def test_an_invalid_postcode_is_a_clear_error(written):
    with pytest.raises(InvalidPostcode, match="is not a UK postcode"):
        normalise_postcode(written)


def test_a_postcode_gives_its_addresses_in_uprn_order_with_their_ballots(layer):
    """In numeric order: the layer sorts UPRNs as text, "100" before "11"."""
    found = LayerReader(str(layer)).addresses("ls16 5aa")
    assert found.found == Found.ADDRESSES
    assert found.addresses == (
        Address(11, '"The Lodge", Otley Road, Leeds', "LS16 5AA", (LOCAL, PARL)),
        Address(100, "2 Otley Road, Leeds", "LS16 5AA", (LOCAL, PARL)),
    )
    assert found.ballot_ids == (LOCAL, PARL)


def test_the_four_kinds_of_answer_are_told_apart(layer):
    reader = LayerReader(str(layer))
    assert reader.ballots("LS16 5AB") == (PARL,)
    assert reader.addresses("LS16 5AD").found == Found.ADDRESSES
    assert reader.ballots("LS16 5AD") == ()
    assert reader.addresses("LS16 9ZZ").found == Found.UNKNOWN_POSTCODE
    assert reader.addresses("LS99 1AA").found == Found.NO_ELECTIONS, "an empty outcode file"
    assert reader.addresses("ZZ1 1ZZ").found == Found.UNKNOWN_OUTCODE


def test_an_address_is_found_by_uprn_through_its_outcode_or_postcode(layer):
    reader = LayerReader(str(layer))
    expected = Address(20, "1 Holt Lane, Leeds", "LS16 5AB", (PARL,))
    assert reader.address(20, outcode="ls16") == expected
    assert reader.address(20, postcode="LS16 5AD") == expected
    assert reader.address(99, outcode="LS16") is None
    assert reader.address(40, outcode="LS99") is None
    with pytest.raises(ValueError, match="outcode or the postcode"):
        reader.address(20)


def test_the_cache_stays_within_its_budget(layer):
    asked = ("LS16 5AA", "LS99 1AA", "LS16 5AB", "LS16 5AA")
    tight = LayerReader(str(layer), cache_bytes=1)
    for postcode in asked:
        tight.addresses(postcode)
    assert tight.stats.footers_read == 4, "nothing kept: every lookup reads again"
    assert len(tight.cached_row_groups) <= 1
    roomy = LayerReader(str(layer))
    for postcode in asked:
        roomy.addresses(postcode)
    assert roomy.stats == ReaderStats(lookups=4, footers_read=2, row_groups_read=1)
    assert roomy.cached_row_groups == (("LS16", 0),)


def rows(*addresses: tuple[str, int, tuple[str, ...]]) -> pa.Table:
    """An outcode file's rows as the bake sorts them: by postcode, then UPRN as text."""
    ordered = sorted(addresses, key=lambda row: (row[0], str(row[1])))
    return pa.table(
        {
            "uprn": [str(uprn) for _, uprn, _ in ordered],
            "address": [f"{uprn} Some Street" for _, uprn, _ in ordered],
            "postcode": [postcode for postcode, _, _ in ordered],
            "ballot_ids": [list(ids) for _, _, ids in ordered],
        }
    )


FIVE = rows(
    ("AB1 1AA", 1, ("x",)), ("AB1 1AA", 2, ("x",)), ("AB1 1AA", 3, ("x",)),
    ("AB1 1AB", 4, ("y",)), ("AB1 1AD", 5, ()), ("AB1 1AD", 6, ()),
)  # fmt: skip
"""In row groups of two: [1AA 1AA] [1AA 1AB] [1AD 1AD]."""


def write_outcode(folder: Path, table: pa.Table, statistics: bool = True) -> Path:
    folder.mkdir(exist_ok=True)
    pq.write_table(table, folder / "AB1.parquet", row_group_size=2, write_statistics=statistics)
    return folder


def uprns(found) -> list[int]:
    return [address.uprn for address in found.addresses]


@pytest.mark.parametrize(
    ("whole_file_bytes", "kept"),
    [(WHOLE_FILE_BYTES, True), (0, False)],
    ids=["in one go", "ranged"],
)
def test_a_lookup_reads_only_the_row_groups_that_may_hold_its_postcode(
    tmp_path, monkeypatch, whole_file_bytes, kept
):
    """Whether the file is fetched whole (small) or read range by range (large). A local file
    read range by range has no identity that a later read could be matched with: the groups
    an earlier read cached are read again rather than trusted (``kept``)."""
    monkeypatch.setattr(layer_reader, "WHOLE_FILE_BYTES", whole_file_bytes)
    reader = LayerReader(str(write_outcode(tmp_path / "layer", FIVE)))
    assert uprns(reader.addresses("AB1 1AA")) == [1, 2, 3], "across two row groups"
    assert reader.stats.row_groups_read == 2
    assert uprns(reader.addresses("AB1 1AD")) == [5, 6]
    assert reader.stats.row_groups_read == 3
    assert reader.addresses("AB1 1AB").ballot_ids == ("y",)
    assert reader.addresses("AB1 1AC").found == Found.UNKNOWN_POSTCODE, "between two groups"
    if kept:
        assert reader.stats == ReaderStats(lookups=4, footers_read=2, row_groups_read=3)
    else:
        assert reader.stats == ReaderStats(lookups=4, footers_read=3, row_groups_read=4)


def test_a_file_without_statistics_is_read_whole(tmp_path):
    reader = LayerReader(str(write_outcode(tmp_path / "layer", FIVE, statistics=False)))
    assert uprns(reader.addresses("AB1 1AA")) == [1, 2, 3]
    assert reader.addresses("AB1 1AC").found == Found.UNKNOWN_POSTCODE
    assert reader.stats.row_groups_read == 3


def test_a_changed_file_drops_what_was_cached_from_the_old_one(tmp_path):
    """One answer never mixes two publishes: once a read finds another footer, the groups
    cached from the old file are dropped, although they have not aged yet."""
    folder = write_outcode(tmp_path / "layer", FIVE)
    reader = LayerReader(str(folder))
    assert reader.ballots("AB1 1AD") == ()
    republished = FIVE.set_column(3, "ballot_ids", pa.array([["z"]] * FIVE.num_rows))
    write_outcode(folder, republished)
    assert reader.ballots("AB1 1AA") == ("z",), "groups not cached are read from the new file"
    assert reader.ballots("AB1 1AD") == ("z",), "and the old file's group is gone"


def test_row_groups_are_decoded_into_memory_of_the_readers_own_pool(tmp_path):
    """Not pyarrow's default, mimalloc, whose fresh memory made about one cold lookup in ten
    take 10 ms while a new reader's cache filled (docs/benchmarks.md): the cached groups are
    held in jemalloc's (or the system allocator's) memory."""
    folder = write_outcode(tmp_path / "layer", FIVE)
    pool = layer_reader._DECODED
    assert pool.backend_name in {"jemalloc", "system"}
    before = pool.bytes_allocated()
    reader = LayerReader(str(folder))
    assert reader.ballots("AB1 1AB") == ("y",)
    assert pool.bytes_allocated() > before, "the group holding AB1 1AB, cached"


OLD_ID = "local.leeds.adel.2027-05-06"
NEW_ID = "local.leeds.adem.2027-05-06"
"""A ballot renamed to an ID of the same length: the republished file's footer is unchanged."""


def outcode_file(ballot_id: str) -> bytes:
    """AB1 in row groups of 1,024 rows, with each group's postcode statistics, as bakes wrote
    it before files were one row group (and as another writer may): AB1 1AA's 1,000 addresses
    in the first, AB1 1AB's 100 across the first two, AB1 1AD's 400 in the second; every
    address in ``ballot_id``."""
    postcodes = ["AB1 1AA"] * 1000 + ["AB1 1AB"] * 100 + ["AB1 1AD"] * 400
    uprns = [str(10000 + i) for i in range(len(postcodes))]
    table = pa.table(
        {
            "uprn": uprns,
            "address": [f"{uprn} Long Lane" for uprn in uprns],
            "postcode": postcodes,
            "addressbase_source": ["/drops/2026-11"] * len(uprns),
            "ballot_ids": [[ballot_id]] * len(uprns),
            "outcode": ["AB1"] * len(uprns),
        }
    )
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        use_dictionary=["postcode", "addressbase_source", "outcode"],
        write_statistics=["postcode", "uprn"],
        row_group_size=1024,
        store_schema=False,
    )
    return sink.getvalue()


def footer_bytes(data: bytes) -> bytes:
    """A parquet file's footer: the metadata before its last 8 bytes (length, ``PAR1``)."""
    (length,) = struct.unpack("<i", data[-8:-4])
    return data[-8 - length : -8]


def publish_locally(folder: Path, data: bytes) -> None:
    """Replace AB1 whole, as a publish does on disk: written aside, then renamed over it."""
    aside = folder / ".AB1.parquet.new"
    aside.write_bytes(data)
    os.replace(aside, folder / "AB1.parquet")


def test_a_republish_that_leaves_the_footer_unchanged_still_changes_the_files_bytes():
    old, new = outcode_file(OLD_ID), outcode_file(NEW_ID)
    assert old != new
    assert footer_bytes(old) == footer_bytes(new)


@pytest.mark.parametrize("whole_file_bytes", [WHOLE_FILE_BYTES, 0], ids=["in one go", "ranged"])
def test_one_answer_never_mixes_row_groups_of_two_publishes_with_the_same_footer(
    tmp_path, monkeypatch, whole_file_bytes
):
    """AB1 1AA's group is cached; AB1 is republished with a byte-identical footer; AB1 1AB
    spans that group and the next: its answer holds every address in the new ballot, none in
    the old, and AB1 1AA is not answered from the old file any more."""
    monkeypatch.setattr(layer_reader, "WHOLE_FILE_BYTES", whole_file_bytes)
    folder = tmp_path / "layer"
    folder.mkdir()
    publish_locally(folder, outcode_file(OLD_ID))
    reader = LayerReader(str(folder))
    assert reader.ballots("AB1 1AA") == (OLD_ID,)
    publish_locally(folder, outcode_file(NEW_ID))
    found = reader.addresses("AB1 1AB")
    assert len(found.addresses) == 100
    assert {address.ballot_ids for address in found.addresses} == {(NEW_ID,)}
    assert reader.ballots("AB1 1AA") == (NEW_ID,)


@pytest.mark.parametrize("whole_file_bytes", [WHOLE_FILE_BYTES, 0], ids=["in one go", "ranged"])
def test_on_s3_a_republish_with_the_same_footer_is_told_apart_and_an_unchanged_file_is_not(
    s3_env, monkeypatch, whole_file_bytes
):
    """Read range by range, an S3 file is known by its ETag: groups cached from a read of the
    same ETag are used with those a later read decodes (AB1 1AB reads only the group it lacks),
    and never with those of another."""
    monkeypatch.setattr(layer_reader, "WHOLE_FILE_BYTES", whole_file_bytes)
    bucket, client = s3_env.new_bucket(), s3_env.client()
    client.put_object(Bucket=bucket, Key="layer/AB1.parquet", Body=outcode_file(OLD_ID))
    reader = LayerReader(f"s3://{bucket}/layer")
    assert reader.ballots("AB1 1AA") == (OLD_ID,)
    client.put_object(Bucket=bucket, Key="layer/AB1.parquet", Body=outcode_file(NEW_ID))
    assert reader.ballots("AB1 1AD") == (NEW_ID,)
    assert reader.stats.row_groups_read == 2
    found = reader.addresses("AB1 1AB")
    assert {address.ballot_ids for address in found.addresses} == {(NEW_ID,)}
    assert reader.stats.row_groups_read == 3, "the second group, of the same ETag, was kept"
    assert reader.ballots("AB1 1AA") == (NEW_ID,)


def test_an_s3_file_replaced_while_it_is_read_range_by_range_is_read_again(s3_env, monkeypatch):
    """Each range is a request of its own: the file is replaced once the first of AB1 1AB's two
    groups is decoded, so the second comes from the new file. The ETag, asked again once the
    read is done, has changed: the file is read again, and the answer is the new file's."""
    monkeypatch.setattr(layer_reader, "WHOLE_FILE_BYTES", 0)
    bucket, client = s3_env.new_bucket(), s3_env.client()
    client.put_object(Bucket=bucket, Key="layer/AB1.parquet", Body=outcode_file(OLD_ID))
    decode = layer_reader._Group.of
    decoded = []

    def decode_then_republish(table: pa.Table) -> layer_reader._Group:
        decoded.append(table)
        if len(decoded) == 1:
            client.put_object(Bucket=bucket, Key="layer/AB1.parquet", Body=outcode_file(NEW_ID))
        return decode(table)

    monkeypatch.setattr(layer_reader._Group, "of", decode_then_republish)
    found = LayerReader(f"s3://{bucket}/layer").addresses("AB1 1AB")
    assert {address.ballot_ids for address in found.addresses} == {(NEW_ID,)}
    assert len(decoded) == 4, "two groups, twice"


def test_without_a_manifest_a_missing_outcode_is_no_layer_not_no_such_outcode(tmp_path):
    """A first publish copies the outcode files in before it writes the manifest: a consumer
    reading then gets the files already there, and is told that nothing is published yet
    rather than that the layer has no such outcode. A location with nothing is no layer too."""
    folder = write_outcode(tmp_path / "layer", FIVE)
    (folder / "_publishing.json").write_text('{"bake_id": "20261127T014500Z-abcdefgh"}')
    reader = LayerReader(str(folder))
    assert reader.ballots("AB1 1AB") == ("y",)
    with pytest.raises(NoLayer, match=f"no published layer at {folder}: there is no _manifest"):
        reader.addresses("ZZ1 1ZZ")
    with pytest.raises(NoLayer):
        reader.address(7, outcode="ZZ1")
    with pytest.raises(NoLayer):
        LayerReader(str(tmp_path / "nothing")).addresses("AB1 1AA")
    (folder / "_manifest.json").write_text("{}")
    assert reader.addresses("ZZ1 1ZZ").found == Found.UNKNOWN_OUTCODE
    assert reader.address(7, outcode="ZZ1") is None


def test_an_unreadable_file_is_named_with_the_reason_after_it_was_tried_again(
    tmp_path, monkeypatch
):
    """On S3 a file replaced between the request for its size and the one for its bytes can
    read as corrupt once: a file is unreadable only after ``ATTEMPTS`` reads."""
    folder = tmp_path / "layer"
    folder.mkdir()
    (folder / "AB1.parquet").write_bytes(b"")
    opened, open_file = [], layer_reader._Opened.of

    def counted(source: pa.NativeFile, columns: list[str]) -> layer_reader._Opened:
        opened.append(source)
        return open_file(source, columns)

    monkeypatch.setattr(layer_reader._Opened, "of", counted)
    with pytest.raises(LayerUnreadable) as raised:
        LayerReader(str(folder)).addresses("AB1 1AA")
    assert len(opened) == ATTEMPTS
    assert raised.value.file == str(folder / "AB1.parquet")
    assert raised.value.reason == "empty (0 bytes), not a parquet file"
    assert str(raised.value) == f"{folder / 'AB1.parquet'}: empty (0 bytes), not a parquet file"


def test_a_cached_outcode_is_read_again_once_it_is_older_than_max_age(layer, tmp_path):
    """A long-lived reader sees the next publish."""
    copy = tmp_path / "layer"
    copy.mkdir()
    for path in layer.glob("*.parquet"):
        (copy / path.name).write_bytes(path.read_bytes())
    fresh, ageing = LayerReader(str(copy)), LayerReader(str(copy), max_age=0)
    assert fresh.ballots("LS16 5AB") == ageing.ballots("LS16 5AB") == (PARL,)
    (copy / "LS16.parquet").write_bytes((layer / "LS99.parquet").read_bytes())
    assert fresh.ballots("LS16 5AB") == (PARL,)
    assert ageing.addresses("LS16 5AB").found == Found.NO_ELECTIONS


def test_the_reader_reads_a_layer_on_s3(layer, s3_env):
    bucket = s3_env.new_bucket()
    for path in layer.iterdir():
        s3_env.client().upload_file(str(path), bucket, f"layers/current/{path.name}")
    reader = LayerReader(f"s3://{bucket}/layers/current")
    assert reader.ballots("LS16 5AA") == (LOCAL, PARL)
    assert reader.addresses("LS99 1AA").found == Found.NO_ELECTIONS
    assert reader.addresses("ZZ1 1ZZ").found == Found.UNKNOWN_OUTCODE


@pytest.fixture(scope="module")
def sample_layer(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    bake(settings=Settings(str(root)))
    return root / "current_elections_parquet"


def test_the_reader_agrees_with_the_baked_files(sample_layer):
    """Every outcode file read whole and grouped by postcode; the reader asked about a random
    sample of those postcodes."""
    expected: dict[str, list[tuple]] = defaultdict(list)
    for path in sorted(sample_layer.glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            key = (int(row["uprn"]), row["address"], row["postcode"], tuple(row["ballot_ids"]))
            expected[row["postcode"]].append(key)
    reader = LayerReader(str(sample_layer), cache_bytes=1 << 20)
    for postcode in random.Random(7).sample(sorted(expected), 200):
        found = reader.addresses(postcode.replace(" ", "").lower())
        assert [tuple(a) for a in found.addresses] == sorted(expected[postcode])
        ids = sorted({i for row in expected[postcode] for i in row[3]})
        assert list(reader.ballots(postcode)) == ids


def test_one_reader_shared_by_threads_answers_each_of_them_right(sample_layer):
    """A service shares one reader between its worker threads; a budget that holds only a few
    row groups makes them read, evict and read again concurrently."""
    expected: dict[str, list[tuple]] = defaultdict(list)
    for path in sorted(sample_layer.glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            expected[row["postcode"]].append((int(row["uprn"]), tuple(row["ballot_ids"])))
    postcodes = random.Random(11).sample(sorted(expected), 60)
    reader = LayerReader(str(sample_layer), cache_bytes=64 << 10)

    def ask(seed: int) -> list[str]:
        wrong = []
        for postcode in random.Random(seed).choices(postcodes, k=300):
            found = [(a.uprn, a.ballot_ids) for a in reader.addresses(postcode).addresses]
            if found != sorted(expected[postcode]):
                wrong.append(postcode)
        return wrong

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert [w for wrong in pool.map(ask, range(8)) for w in wrong] == []
    assert reader.stats.lookups == 8 * 300
    assert reader.stats.row_groups_read > len(postcodes), "the budget made them read again"


def test_lookup_prints_a_table_or_json_and_exits_by_what_it_found(layer, capsys):
    root = ["--data-root", str(layer.parent)]
    assert main(["lookup", "ls165aa", *root]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0] == f"LS16 5AA: 2 address(es), 2 ballot(s): {LOCAL}, {PARL}"
    assert f'11    "The Lodge", Otley Road, Leeds  {LOCAL}, {PARL}' in table
    assert main(["lookup", "LS16 5AB", "--uprn", "20", "--json", *root]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["ballot_ids"] == [PARL] and answer["addresses"][0]["uprn"] == 20
    assert main(["lookup", "LS99 1AA", *root]) == 0
    assert capsys.readouterr().out.strip() == "LS99 1AA: no elections here"
    assert main(["lookup", "LS16 5AB", "--uprn", "21", *root]) == 1
    assert main(["lookup", "ZZ1 1ZZ", *root]) == 1
    assert "no such outcode in this layer" in capsys.readouterr().out
    assert main(["lookup", "not a postcode", *root]) == 2
    assert "is not a UK postcode" in capsys.readouterr().err


def test_the_reader_needs_no_dagster():
    code = "import sys, databaker.layer_reader; sys.exit('dagster' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
