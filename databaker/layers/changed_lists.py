"""The rows of a joined letter whose lists a rebuild changed, with their lists before and after.

A letter rebuilt by joining some of its addresses again
(:mod:`databaker.layers.rejoined_addresses`) knows which rows' lists changed since the rows it
held under an earlier token (:class:`~databaker.staging.RowChanges`), and what they were. It
keeps them in the letter's folder (``CHANGED_LISTS``, Arrow IPC, a name that readers of the
folder's data files skip), and its record says how many there are (``RowChanges.rows``). A diff
against a version that read the letter under that token counts the letter's changes from them
(:func:`databaker.layers.diff.compare_versions`), instead of reading and comparing the thousand
outcode files that a change spread over the country touches; and the version derives the
letter's changed outcode files from that version's files and them, instead of reading the
letter (:func:`databaker.layers.outcode_files.write_outcode_files`).

The file moves with the letter: a letter replaced later is replaced whole, record and file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databaker.resources import LayerStore, LayerStoreError
from databaker.staging import partition_prefix, partition_record

CHANGED_LISTS = "_changed_lists.arrow"
"""In a letter folder of a joined table: its rows whose lists changed since ``RowChanges.since``."""
CHANGED_LISTS_COLUMNS = pa.schema(
    [
        ("uprn", pa.string()),
        ("postcode", pa.string()),
        ("before", pa.list_(pa.string())),
        ("after", pa.list_(pa.string())),
    ]
)


def changed_lists_file(rows: pa.Table) -> bytes:
    """The file of ``rows``, which have the columns of ``CHANGED_LISTS_COLUMNS`` (strings and
    lists' elements may be dictionary-encoded: they are kept plain)."""
    plain = rows.select(CHANGED_LISTS_COLUMNS.names).cast(CHANGED_LISTS_COLUMNS)
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_file(sink, CHANGED_LISTS_COLUMNS, options=options) as file:
        file.write_table(plain.combine_chunks())
    return sink.getvalue().to_pybytes()


def changed_lists(
    store: LayerStore, joined_prefix: str, letter: str, since: str
) -> pa.Table | None:
    """The rows of the joined ``letter`` whose lists changed since the rows it held under the
    token ``since``, if its record says it keeps them (a letter joined whole, or by a release
    that kept none, does not); None otherwise, or when the file does not hold as many rows as
    the record says."""
    record = partition_record(store, joined_prefix, letter)
    changes = record.changes if record else None
    if changes is None or changes.since != since or changes.rows is None:
        return None
    if not changes.rows:
        return pa.Table.from_batches([], schema=CHANGED_LISTS_COLUMNS)
    try:
        data = store.read_bytes(partition_prefix(joined_prefix, letter) + CHANGED_LISTS)
        with pa.ipc.open_file(pa.py_buffer(data)) as file:
            rows = file.read_all().select(CHANGED_LISTS_COLUMNS.names).cast(CHANGED_LISTS_COLUMNS)
    except (LayerStoreError, OSError, KeyError, pa.ArrowException):
        return None
    return rows if rows.num_rows == changes.rows else None


def changed_lists_since(
    store: LayerStore, joined_prefix: str, tokens: Mapping[str, str]
) -> dict[str, pa.Table]:
    """:func:`changed_lists` of each letter of ``tokens`` since its token there, for the
    letters that keep them; read as many at a time as the store keeps requests in flight."""
    found: dict[str, pa.Table] = {}

    def read(letter: str) -> None:
        rows = changed_lists(store, joined_prefix, letter, tokens[letter])
        if rows is not None:
            found[letter] = rows

    store.for_each(read, sorted(tokens))
    return dict(sorted(found.items()))


def by_outcode(rows: pa.Table) -> dict[str, pa.Table]:
    """The changed rows of each outcode they are in (a canonical postcode's outcode is all but
    its last four characters)."""
    outcodes = pc.dictionary_encode(
        pc.utf8_slice_codeunits(rows["postcode"], 0, -4).combine_chunks()
    )
    codes = outcodes.indices.to_numpy()
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(outcodes.dictionary) + 1))
    return {
        name: rows.take(pa.array(order[starts[code] : starts[code + 1]]))
        for code, name in enumerate(outcodes.dictionary.to_pylist())
    }


def with_changed_lists(file_rows: pa.Table, ids_column: str, changed: pa.Table) -> pa.Table | None:
    """An earlier outcode file's rows with the ``changed`` rows' lists as they are now; None
    when the file does not hold every changed row with the list it had before (it was not
    derived from the rows the lists changed from)."""
    lists = file_rows[ids_column].combine_chunks()
    at = pc.index_in(changed["uprn"], value_set=file_rows["uprn"].combine_chunks())
    if at.null_count:
        return None
    at = at.to_numpy(zero_copy_only=False)
    kind = lists.type
    same = pc.equal(_keys(lists.take(pa.array(at))), _keys(changed["before"].cast(kind)))
    if not pc.all(same, skip_nulls=False).as_py():
        return None
    source = np.arange(len(lists))
    source[at] = len(lists) + np.arange(len(at))
    now = pa.concat_arrays([lists, changed["after"].cast(kind).combine_chunks()])
    where = file_rows.schema.get_field_index(ids_column)
    return file_rows.set_column(where, file_rows.schema.field(where), now.take(pa.array(source)))


def addresses_per_element_now(before: Mapping[str, int], changed: pa.Table) -> dict[str, int]:
    """How many addresses each element is on, given how many it was on before the ``changed``
    rows' lists changed: each changed address counts for its elements after, not before."""
    counts = Counter(before)
    for column, sign in (("before", -1), ("after", 1)):
        counted = pc.value_counts(pc.list_flatten(changed[column]))
        for value, count in zip(
            counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
        ):
            counts[value] += sign * count
    return dict(sorted((value, count) for value, count in counts.items() if count > 0))


def _keys(lists: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Each list as one string, its elements joined by a character no ID holds; a null list
    as a null."""
    return pc.binary_join(lists, "\x1f")
