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
The whole-column helpers that find and replace changed lists (:func:`lists_equal`,
:func:`replaced_lists`) are here too, for the merge that writes the file and the version that
reads it.
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


def with_changed_lists(file_rows: pa.Table, ids_column: str, changed: pa.Table) -> pa.Table | None:
    """An earlier outcode file's rows with the ``changed`` rows' lists as they are now; None
    when the file does not hold every changed row with the list it had before (it was not
    derived from the rows the lists changed from)."""
    lists = file_rows[ids_column].combine_chunks()
    found = pc.index_in(changed["uprn"], value_set=file_rows["uprn"].combine_chunks())
    if found.null_count:
        return None
    found = found.to_numpy(zero_copy_only=False)
    order = np.argsort(found)
    at = found[order]
    take = pa.array(order)
    if not lists_equal(
        lists.take(pa.array(at)), changed["before"].take(take).cast(lists.type)
    ).all():
        return None
    now = replaced_lists(lists, at, changed["after"].take(take).cast(lists.type).combine_chunks())
    where = file_rows.schema.get_field_index(ids_column)
    return file_rows.set_column(where, file_rows.schema.field(where), now)


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


def replaced_lists(lists: pa.ListArray, at: np.ndarray, new: pa.ListArray) -> pa.ListArray:
    """``lists`` with the lists at positions ``at`` (sorted) replaced by ``new``'s, built from
    offsets and one gather of the elements: taking whole lists row by row costs ten times as
    much. Dictionary-encoded elements are gathered as their indices, over the dictionary
    Arrow makes of both when it concatenates them."""
    if lists.null_count or new.null_count or not pa.types.is_list(lists.type):
        combined = pa.concat_arrays([lists, new])
        source = np.arange(len(lists))
        source[at] = len(lists) + np.arange(len(new))
        return combined.take(pa.array(source))
    old_offsets = lists.offsets.to_numpy()
    new_offsets = new.offsets.to_numpy()
    starts = old_offsets[:-1].astype(np.int64)
    lengths = np.diff(old_offsets).astype(np.int64)
    old_values = lists.values.slice(old_offsets[0], old_offsets[-1] - old_offsets[0])
    new_values = new.values.slice(new_offsets[0], new_offsets[-1] - new_offsets[0])
    starts -= old_offsets[0]
    starts[at] = len(old_values) + new_offsets[:-1] - new_offsets[0]
    lengths[at] = np.diff(new_offsets)
    values = pa.concat_arrays([old_values, new_values])
    offsets = np.zeros(len(lists) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
    return pa.ListArray.from_arrays(
        pa.array(offsets.astype(np.int32)), values.take(pa.array(gather)), type=lists.type
    )


def lists_equal(a: pa.ListArray, b: pa.ListArray) -> np.ndarray:
    """Whether each list of ``a`` equals the list of ``b`` at its position, element by
    element (elements may be structs); on whole columns."""
    lengths = pc.list_value_length(a).to_numpy(zero_copy_only=False)
    same_length = lengths == pc.list_value_length(b).to_numpy(zero_copy_only=False)
    rows = pa.array(np.flatnonzero(same_length))
    a, b = a.take(rows), b.take(rows)
    equal = _values_equal(pc.list_flatten(a), pc.list_flatten(b))
    parents = pc.list_parent_indices(a).to_numpy(zero_copy_only=False)
    differing = np.bincount(parents[~equal], minlength=len(a))
    result = np.zeros(len(lengths), np.bool_)
    result[same_length] = differing == 0
    return result


def _values_equal(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Element-wise equality, null equal to null."""
    if isinstance(a, pa.DictionaryArray):
        a = a.dictionary_decode()
    if isinstance(b, pa.DictionaryArray):
        b = b.dictionary_decode()
    if pa.types.is_struct(a.type):
        equal = np.ones(len(a), np.bool_)
        for i in range(a.type.num_fields):
            equal &= _values_equal(a.field(i), b.field(i))
        return equal & (
            a.is_null().to_numpy(zero_copy_only=False) == b.is_null().to_numpy(zero_copy_only=False)
        )
    both_null = pc.and_(a.is_null(), b.is_null())
    equal = pc.or_(both_null, pc.fill_null(pc.equal(a, b), False))
    return equal.to_numpy(zero_copy_only=False)
