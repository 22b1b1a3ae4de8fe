"""Staging: every table is written aside first and moved into place only when complete.

A bake that fails half-way leaves the previous objects where they were; a letter partition is
replaced as a whole, its old record deleted first and its new one written last
(:func:`rebuild_letter_partitions`), so a letter that a kill caught mid-replacement has no
record and nothing derived from it is trusted. Staging areas are per run, under
``_staging/``; what a killed bake left there is removed by the next run to take the data
root's lease (``LayerStore.yield_for_execution``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import uuid4

import dagster as dg
import pyarrow.parquet as pq
from pydantic import TypeAdapter, ValidationError

from databaker.catalog import PARTITION_ROW_COUNT, ROW_COUNT
from databaker.resources import LayerStore, LayerStoreError, QueryEngine
from databaker.resources.layer_store import STAGING, describes
from databaker.resources.query_engine import ParamValue, Query

PARTITION_RECORD = "_partition.json"
"""In each letter folder of a letter-partitioned table: its :class:`PartitionRecord`. Readers
skip it: queries read ``first_letter=*/*.parquet``, Athena and :mod:`databaker.layers` skip
names that start with an underscore."""


@dataclass(frozen=True)
class RowChanges:
    """Where a letter's rows may differ from those it held under an earlier token: rows whose
    postcode is in none of ``outcodes`` are the rows the letter held then, unchanged. What lets a
    bake that derived files per outcode from the earlier rows derive again only those of
    ``outcodes``."""

    since: str
    """The token of the letter's earlier rows."""
    outcodes: list[str]
    """Sorted; the outcode of a canonical postcode is all but its last four characters."""
    rows: int | None = None
    """How many rows' lists changed, kept in the letter's folder with their lists before and
    after (:mod:`databaker.layers.changed_lists`); None: not kept."""


@dataclass(frozen=True)
class PartitionRecord:
    """What a letter partition holds, written with it and moved into place with it.

    ``token`` is new each time the letter is written, so a letter holding the same token as
    when something was derived from it holds the same rows: what lets a bake reuse what it
    derived from a letter before (its outcode files, its join) without reading it again.
    """

    token: str
    rows: int
    built_from: dict[str, str] = field(default_factory=dict)
    """Whatever the letter's rows follow from, for the asset that wrote them to compare (the
    tokens of the letters it was read from, a version of its other inputs)."""
    changes: RowChanges | None = None
    """When the letter was written by changing some rows of an earlier token's: which rows may
    differ. None: nothing is known of how its rows relate to earlier ones."""

    @classmethod
    def new(
        cls,
        rows: int,
        built_from: Mapping[str, str] | None = None,
        changes: RowChanges | None = None,
    ) -> PartitionRecord:
        return cls(uuid4().hex, rows, dict(built_from or {}), changes)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()


_RECORD = TypeAdapter(PartitionRecord)


def partition_record(store: LayerStore, table_prefix: str, letter: str) -> PartitionRecord | None:
    """The letter's record; ``None`` when it has none (written before records were kept, or
    empty) or it cannot be read, which callers treat as "nothing known about its rows"."""
    try:
        data = store.read_bytes(partition_prefix(table_prefix, letter) + PARTITION_RECORD)
        return _RECORD.validate_json(data)
    except (LayerStoreError, ValidationError):
        return None


def partition_records(
    store: LayerStore, table_prefix: str, letters: Sequence[str]
) -> dict[str, PartitionRecord | None]:
    """:func:`partition_record` of each of ``letters``, read as many at a time as the store
    keeps requests in flight."""
    records: dict[str, PartitionRecord | None] = {}

    def read(letter: str) -> None:
        records[letter] = partition_record(store, table_prefix, letter)

    store.for_each(read, list(letters))
    return records


def write_partition_record(
    store: LayerStore, table_prefix: str, letter: str, record: PartitionRecord
) -> None:
    store.write_bytes(partition_prefix(table_prefix, letter) + PARTITION_RECORD, record.to_json())


def is_data_file(key: str) -> bool:
    """Whether ``key`` is one of a table's data files: any name but a record's or a hidden one
    (Athena's ``UNLOAD`` names its parquet files without a suffix)."""
    return not describes(key) and not key.rpartition("/")[2].startswith(".")


@contextmanager
def staging_area(
    store: LayerStore, context: dg.AssetExecutionContext, purpose: str = ""
) -> Iterator[str]:
    """A prefix private to this run and asset (and ``purpose``, for a second area beside the
    first), emptied when the block ends."""
    name = context.asset_key.to_user_string() + (f".{purpose}" if purpose else "")
    prefix = f"{STAGING}{context.run.run_id}/{name}/"
    try:
        yield prefix
    finally:
        store.delete_prefix(prefix)


def partition_prefix(table_prefix: str, letter: str) -> str:
    return f"{table_prefix}first_letter={letter}/"


def letters_holding_keys(store: LayerStore, table_prefix: str) -> set[str]:
    """The letters whose folder under ``table_prefix`` holds any object: one listing of the
    table, where a listing per letter would wait a round trip to S3 for each."""
    folder = partition_prefix(table_prefix, "").removesuffix("/")
    return {
        key[len(folder) :].split("/", 1)[0]
        for key in store.list_keys(table_prefix)
        if key.startswith(folder) and "/" in key[len(folder) :]
    }


def rebuild_letter_partitions(
    context: dg.AssetExecutionContext,
    store: LayerStore,
    *,
    write: Callable[[str], Mapping[str, RowChanges] | None],
    table_prefix: str,
    built_from: Mapping[str, Mapping[str, str]] | None = None,
    kept: Collection[str] = (),
    copied_from: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Make each letter of the run exactly what ``write`` stages for it; return rows per letter.

    ``write`` gets a staging prefix to fill with ``first_letter=<L>/`` folders of parquet files
    (DuckDB's ``COPY ... PARTITION_BY``, Athena's ``UNLOAD ... partitioned_by``, or copies), and
    may return, by letter, how the rows it staged differ from the letter's rows now
    (:class:`RowChanges`, kept in the letter's record).
    Rows are counted from the parquet footers, which every engine writes. A letter left empty
    empties its partition. Each letter written gets a new :class:`PartitionRecord` (with its
    entry of ``built_from``), written once its files are in place. Letters are replaced as
    many at a time as the store keeps requests in flight, each whole. The letters of ``kept``
    are left as they are (the caller knows their rows to be what ``write`` would stage): their
    rows come from their records. The letters of ``copied_from`` are copies of the folder it
    names for each, copied straight into place rather than staged first (on S3 a move is a
    copy too: staging them would copy every byte twice).
    """
    rows: dict[str, int] = {}
    copied_from = copied_from or {}
    with staging_area(store, context) as staging:
        changes = write(staging) or {}

        def replace(letter: str) -> None:
            if letter in kept:
                record = partition_record(store, table_prefix, letter)
                if record is None:
                    raise LayerStoreError(f"{partition_prefix(table_prefix, letter)}: no record")
                rows[letter] = record.rows
                return
            source = copied_from.get(letter, partition_prefix(staging, letter))
            staged = list(filter(is_data_file, store.list_keys(source)))
            if staged:
                rows[letter] = rows_in(store, staged)
            store.replace_prefix(
                source, partition_prefix(table_prefix, letter), copy=letter in copied_from
            )
            if staged:
                record = PartitionRecord.new(
                    rows[letter], (built_from or {}).get(letter), changes.get(letter)
                )
                write_partition_record(store, table_prefix, letter, record)

        store.for_each(replace, list(context.partition_keys))
    return dict(sorted(rows.items()))


def report_letter_partitions(
    context: dg.AssetExecutionContext,
    store: LayerStore,
    *,
    table_prefix: str,
    rows: Mapping[str, int],
    each: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Give each letter's materialisation its own row count and folder (and its entry of
    ``each``): a run rebuilds many letters, and a letter's page must tell of that letter alone,
    not of the run."""
    for letter in context.partition_keys:
        count = rows.get(letter, 0)
        metadata = {
            ROW_COUNT: count,
            PARTITION_ROW_COUNT: count,
            "path": dg.MetadataValue.path(store.uri(partition_prefix(table_prefix, letter))),
            **(each or {}).get(letter, {}),
        }
        context.add_asset_metadata(metadata, partition_key=letter)


def query_writer(
    engine: QueryEngine, store: LayerStore, query: Query, params: Mapping[str, ParamValue]
) -> Callable[[str], None]:
    """A ``write`` for :func:`rebuild_letter_partitions` that runs ``query`` with ``params`` and
    ``$output``, the staging folder."""

    def write(staging: str) -> None:
        engine.run(query, {**params, "output": store.uri_for_writing(staging)})

    return write


def parquet_rows(store: LayerStore, key: str) -> int:
    """The row count in a parquet object's footer."""
    with store.open_input(key) as source:
        return pq.ParquetFile(source).metadata.num_rows


def rows_in(store: LayerStore, keys: Iterable[str]) -> int:
    """The rows of the parquet objects ``keys``, from their footers, read as many at a time
    as the store keeps requests in flight: on S3 a footer is two round trips."""
    counts: dict[str, int] = {}

    def count(key: str) -> None:
        counts[key] = parquet_rows(store, key)

    store.for_each(count, list(keys))
    return sum(counts.values())
