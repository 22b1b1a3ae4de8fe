"""A joined letter's rows (:func:`read_joined`) and its addresses: the columns of the
partitioned AddressBase it does not hold.

A layer's joined table holds each address's UPRN and list column only. Its other columns
(``address``, ``postcode``, ``addressbase_source``) would be the partitioned AddressBase's,
copied: decoding and encoding 30 million addresses' texts again cost a bake seconds, and a
rebake that changes lists in every letter more. So the version takes them from the AddressBase
letter the joined letter was joined from, as its record says (``built_from["addressbase"]``,
:mod:`databaker.layers.unchanged_letters`): an AddressBase letter replaced since then, whose
addresses the lists were not made from, is refused, never paired with them.

Rows are paired by UPRN, unique in both (their checks see to it). The embedded engine's joins
keep the AddressBase letter's order, so its rows are taken row for row once the UPRNs are seen
to be equal; Athena's are matched by UPRN.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databaker.parquet_leaves import string_leaves
from databaker.resources import LayerStore
from databaker.staging import PartitionRecord, is_data_file, partition_prefix, partition_record

READ_AS_DICTIONARY = ("addressbase_source", "postcode")
"""Columns read dictionary-encoded: one value for a whole bake, or one for a few dozen
addresses, which would otherwise be materialised once per row (a letter's postcodes read and
encoded cost a third as much). The outcode files hold them as the strings they are."""


class AddressesOutOfStep(ValueError):
    """A joined letter cannot be paired with the AddressBase letter there now."""


def with_address_columns(
    store: LayerStore,
    joined: pa.Table,
    *,
    letter: str,
    record: PartitionRecord | None,
    addresses: str,
    columns: Sequence[str],
) -> pa.Table:
    """The joined ``letter``'s rows (``joined``, whose ``record`` it is) with those of
    ``columns`` they lack, from the same letter of the table under ``addresses``.

    Raises :class:`AddressesOutOfStep`, naming the letter's folder, when the record says the
    letter was joined from another AddressBase letter than the one there now, or when the
    AddressBase letter does not hold the joined letter's UPRNs, each once."""
    missing = [name for name in columns if name not in joined.column_names]
    if not missing:
        return joined
    folder = partition_prefix(addresses, letter)
    joined_from = (record.built_from.get("addressbase") if record else None) or None
    if joined_from is not None:
        now = partition_record(store, addresses, letter)
        if now is None or now.token != joined_from:
            raise AddressesOutOfStep(
                f"{folder}: the joined letter {letter} was joined from AddressBase letter "
                f"{joined_from}, but it now holds {now.token if now else 'no record'}: "
                "materialise the joined table again"
            )
    keys = [key for key in store.list_keys(folder) if is_data_file(key)]
    if not keys:
        raise AddressesOutOfStep(f"{folder}: no AddressBase rows for joined letter {letter}")
    rows = read_joined(store, keys, columns=["uprn", *missing])
    if not rows["uprn"].equals(joined["uprn"]):
        rows = rows.take(_positions_of(joined["uprn"], rows["uprn"], folder))
    for name in missing:
        joined = joined.append_column(rows.schema.field(name), rows[name])
    return joined


def read_joined(
    store: LayerStore,
    keys: Sequence[str],
    *,
    lists: Sequence[str] = (),
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """The rows of a letter's data files ``keys`` (its ``columns``, or all), the columns of
    ``READ_AS_DICTIONARY`` and the strings within the ``lists`` columns dictionary-encoded
    (:mod:`databaker.parquet_leaves`). Where the store's requests wait on a network, the files
    are read at once rather than one after another, and a file read whole is one GET (opened
    for ranged reads, it would be asked for its size, then its footer, then its columns)."""

    def read(key: str) -> list[pa.Table]:
        with store.open_input(key) as source:
            return _row_groups(source, lists, columns)

    if columns is None and store.in_flight() > 1:
        whole = store.read_all(keys)
        parts = [_row_groups(pa.BufferReader(data), lists, columns) for data in whole]
    elif store.in_flight() > 1 and len(keys) > 1:
        with ThreadPoolExecutor(min(len(keys), store.in_flight())) as pool:
            parts = list(pool.map(read, keys))
    else:
        parts = [read(key) for key in keys]
    tables = [table for part in parts for table in part]
    return pa.concat_tables(tables, promote_options="permissive")


def _row_groups(
    source: pa.NativeFile, lists: Sequence[str], columns: Sequence[str] | None
) -> list[pa.Table]:
    """A data file's rows, a table per row group: Arrow reads a list's strings
    dictionary-encoded one row group at a time, not a whole file's at once. A row group's
    columns are fetched at once (``pre_buffer``): on S3, one round trip per group rather than
    one per column."""
    footer = pq.ParquetFile(source)
    encoded = string_leaves(footer.schema_arrow, [*READ_AS_DICTIONARY, *lists])
    parquet = pq.ParquetFile(
        source, metadata=footer.metadata, read_dictionary=encoded, pre_buffer=True
    )
    wanted = None if columns is None else list(columns)
    if not parquet.num_row_groups:
        return [parquet.read(columns=wanted)]
    return [parquet.read_row_group(i, columns=wanted) for i in range(parquet.num_row_groups)]


def _positions_of(uprns: pa.ChunkedArray, among: pa.ChunkedArray, folder: str) -> pa.Array:
    """Where each of ``uprns`` is among the AddressBase letter's ``among``, which must hold
    the same UPRNs, each once."""
    positions = pc.index_in(uprns, value_set=among.combine_chunks())
    if len(uprns) != len(among) or positions.null_count:
        raise AddressesOutOfStep(
            f"{folder}: the AddressBase letter does not hold the joined letter's UPRNs "
            f"({len(among):,} rows against {len(uprns):,}): materialise the joined table again"
        )
    return positions.combine_chunks()
