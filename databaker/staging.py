"""Staging: every table is written aside first and moved into place only when complete.

A bake that fails half-way leaves the previous objects where they were; a partition is
replaced as a whole, so a letter is never left holding a mix of two bakes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import dagster as dg

from databaker.resources import LayerStore, Replacement


@contextmanager
def staging_area(store: LayerStore, context: dg.AssetExecutionContext, name: str) -> Iterator[str]:
    """A prefix private to this run and asset, emptied when the block ends."""
    prefix = f"_staging/{context.run.run_id}/{name}/"
    try:
        yield prefix
    finally:
        store.delete_prefix(prefix)


def partition_prefix(table_prefix: str, letter: str) -> str:
    return f"{table_prefix}first_letter={letter}/"


def replace_partitions(
    store: LayerStore, staged_prefix: str, table_prefix: str, letters: Iterable[str]
) -> dict[str, Replacement]:
    """Replace each letter's partition with what was staged for it (nothing staged: emptied)."""
    return {
        letter: store.replace_prefix(
            partition_prefix(staged_prefix, letter), partition_prefix(table_prefix, letter)
        )
        for letter in letters
    }


def rows_per_partition(copy_stats: dict[str, list], column: str = "first_letter") -> dict[str, int]:
    """Row counts per partition value from DuckDB's ``COPY ... RETURN_STATS`` result."""
    rows: dict[str, int] = {}
    for count, keys in zip(copy_stats["count"], copy_stats["partition_keys"], strict=True):
        value = dict(keys)[column]
        rows[value] = rows.get(value, 0) + int(count)
    return dict(sorted(rows.items()))
