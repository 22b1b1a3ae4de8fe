"""A joined letter (UPRNs and lists) completed with the address columns of the AddressBase
letter it was joined from, and refused when that letter has been replaced since."""

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databaker.layers.joined_addresses import AddressesOutOfStep, with_address_columns
from databaker.staging import PartitionRecord, write_partition_record

ADDRESSES = "addressbase/"
COLUMNS = ["uprn", "address", "postcode", "addressbase_source", "ballot_ids"]
SOURCE = "s3://drops/2026-02-02/"
LETTER = [
    ("10", "10 Otley Road", "LS6 1AA"),
    ("11", "11 Otley Road", "LS6 1AB"),
    ("12", "12 Kirkstall Lane", "LS5 3BB"),
]
"""The AddressBase letter L, in its files' order."""
BALLOTS = {"10": ["local.leeds.a"], "11": [], "12": ["local.leeds.a", "mayor.wy"]}


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def write_addressbase_letter(store, rows: list[tuple[str, str, str]]) -> PartitionRecord:
    table = pa.table(
        {
            "uprn": [r[0] for r in rows],
            "address": [r[1] for r in rows],
            "postcode": [r[2] for r in rows],
            "longitude": [-1.5] * len(rows),
            "latitude": [53.8] * len(rows),
            "addressbase_source": [SOURCE] * len(rows),
        }
    )
    store.write_bytes(f"{ADDRESSES}first_letter=L/part-0.parquet", parquet(table))
    record = PartitionRecord.new(len(rows))
    write_partition_record(store, ADDRESSES, "L", record)
    return record


def joined(uprns: list[str]) -> pa.Table:
    ballots = [BALLOTS[u] for u in uprns]
    return pa.table({"uprn": uprns, "ballot_ids": pa.array(ballots, pa.list_(pa.string()))})


def joined_from(token: str) -> PartitionRecord:
    return PartitionRecord.new(3, {"addressbase": token, "join": "DuckDBQueryEngine x"})


def expected(uprns: list[str]) -> list[dict]:
    by_uprn = {u: (address, postcode) for u, address, postcode in LETTER}
    return [
        {
            "uprn": u,
            "address": by_uprn[u][0],
            "postcode": by_uprn[u][1],
            "addressbase_source": SOURCE,
            "ballot_ids": BALLOTS[u],
        }
        for u in uprns
    ]


def completed(store, table: pa.Table, record: PartitionRecord | None) -> list[dict]:
    rows = with_address_columns(
        store, table, letter="L", record=record, addresses=ADDRESSES, columns=COLUMNS
    )
    return rows.select(COLUMNS).to_pylist()


@pytest.mark.parametrize(
    "uprns", [["10", "11", "12"], ["12", "10", "11"]], ids=["as_addressbase", "reordered"]
)
def test_each_row_gets_the_columns_of_its_own_uprn(store, uprns):
    """The embedded engine keeps the AddressBase letter's order; Athena's UNLOAD need not."""
    record = write_addressbase_letter(store, LETTER)
    assert completed(store, joined(uprns), joined_from(record.token)) == expected(uprns)


def test_a_letter_joined_from_an_addressbase_letter_since_replaced_is_refused(store):
    """The same UPRNs are no proof: a new drop may have moved or renamed the addresses."""
    write_addressbase_letter(store, LETTER)
    with pytest.raises(AddressesOutOfStep, match=r"addressbase/first_letter=L/: .*joined from"):
        completed(store, joined(["10", "11", "12"]), joined_from("an-earlier-token"))


@pytest.mark.parametrize(
    ("addressbase", "rows"),
    [(LETTER[:2], "2 rows against 3"), ([*LETTER[:2], ("13", "13 Otley Road", "LS6 1AC")], "3")],
    ids=["one_missing", "one_other"],
)
def test_an_addressbase_letter_without_the_joined_uprns_is_refused(store, addressbase, rows):
    record = write_addressbase_letter(store, addressbase)
    with pytest.raises(AddressesOutOfStep, match=rf"addressbase/first_letter=L/: .*\({rows}"):
        completed(store, joined(["12", "10", "11"]), joined_from(record.token))


def test_a_joined_letter_holding_every_column_is_taken_as_it_is(store):
    """As an earlier bake wrote them; no AddressBase letter is read (there is none here)."""
    table = pa.Table.from_pylist(expected(["11", "10"]))
    assert completed(store, table, None) == expected(["11", "10"])


def test_without_a_record_the_uprns_alone_pair_the_rows(store):
    write_addressbase_letter(store, LETTER)
    assert completed(store, joined(["11", "12", "10"]), None) == expected(["11", "12", "10"])
