"""An earlier outcode file takes the lists that changed only if it holds their rows as they
were, and the counts of addresses per element follow the change."""

import pyarrow as pa

from databaker.layers.changed_lists import (
    CHANGED_LISTS_COLUMNS,
    addresses_per_element_now,
    with_changed_lists,
)
from databaker.layers.outcode_files import _changed_by_outcode

FILE = pa.table(
    {
        "uprn": ["1", "2", "3"],
        "postcode": ["LS6 1AA", "LS6 1AA", "LS6 1AB"],
        "ballot_ids": pa.array([["a"], [], ["a", "b"]], pa.list_(pa.field("element", pa.string()))),
    }
)


def changed(rows: list[tuple[str, str, list[str], list[str]]]) -> pa.Table:
    return pa.Table.from_pylist(
        [dict(zip(CHANGED_LISTS_COLUMNS.names, row, strict=True)) for row in rows],
        schema=CHANGED_LISTS_COLUMNS,
    )


def test_the_file_takes_the_new_lists_of_the_rows_it_holds_as_they_were():
    now = with_changed_lists(
        FILE,
        "ballot_ids",
        changed([("3", "LS6 1AB", ["a", "b"], ["b"]), ("2", "LS6 1AA", [], ["c"])]),
    )
    assert now["ballot_ids"].to_pylist() == [["a"], ["c"], ["b"]]
    assert now.schema == FILE.schema
    assert now.select(["uprn", "postcode"]).equals(FILE.select(["uprn", "postcode"]))


def test_a_file_without_a_changed_row_or_with_another_list_for_it_is_not_used():
    assert with_changed_lists(FILE, "ballot_ids", changed([("9", "LS6 1AA", [], ["c"])])) is None
    stale = changed([("1", "LS6 1AA", ["z"], ["b"])])
    assert with_changed_lists(FILE, "ballot_ids", stale) is None


def test_counts_follow_the_change_and_elements_on_no_address_drop_out():
    rows = changed([("1", "LS6 1AA", ["a"], ["b"]), ("3", "LS6 1AB", ["a", "c"], [])])
    assert addresses_per_element_now({"a": 2, "b": 1, "c": 1}, rows) == {"b": 2}


def test_changed_rows_are_grouped_by_outcode():
    rows = changed(
        [("1", "LS6 1AA", [], ["a"]), ("5", "LS10 2BB", [], ["b"]), ("3", "LS6 1AB", ["a"], [])]
    )
    groups = {name: table["uprn"].to_pylist() for name, table in _changed_by_outcode(rows).items()}
    assert groups == {"LS6": ["1", "3"], "LS10": ["5"]}
