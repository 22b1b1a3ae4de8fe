"""Staging: every table is written aside first and moved into place only when complete.

A bake that fails half-way leaves the previous objects where they were; a letter partition is
replaced as a whole, so a letter never holds a mix of two bakes. Staging areas are per run, under
``_staging/``; what a killed bake left there is removed by the next run to take the data root's
lease (``LayerStore.yield_for_execution``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pyarrow.parquet as pq

from databaker.catalog import PARTITION_ROW_COUNT, ROW_COUNT
from databaker.resources import LayerStore, QueryEngine
from databaker.resources.layer_store import STAGING
from databaker.resources.query_engine import ParamValue, Query


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


def rebuild_letter_partitions(
    context: dg.AssetExecutionContext,
    store: LayerStore,
    *,
    write: Callable[[str], None],
    table_prefix: str,
) -> dict[str, int]:
    """Make each letter of the run exactly what ``write`` stages for it; return rows per letter.

    ``write`` gets a staging prefix to fill with ``first_letter=<L>/`` folders of parquet files
    (DuckDB's ``COPY ... PARTITION_BY``, Athena's ``UNLOAD ... partitioned_by``, or copies).
    Rows are counted from the parquet footers, which every engine writes. A letter left empty
    empties its partition. Letters are replaced as many at a time as the store keeps requests
    in flight, each whole.
    """
    rows: dict[str, int] = {}
    with staging_area(store, context) as staging:
        write(staging)

        def replace(letter: str) -> None:
            staged = store.list_keys(partition_prefix(staging, letter))
            if staged:
                rows[letter] = sum(parquet_rows(store, key) for key in staged)
            store.replace_prefix(
                partition_prefix(staging, letter), partition_prefix(table_prefix, letter)
            )

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
