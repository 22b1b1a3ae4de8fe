"""The line-by-line reading of an AddressBase drop: the files cut into numbered lines
(:mod:`databaker.line_reading`), ``addressbase_cleaned_raw.duckdb.sql`` judging them, rejecting
each bad line by its number.

This reading defines what a drop holds; the fast reading (``fast_reading.py``) keeps the same
rows or declines.
"""

from __future__ import annotations

from typing import Any

from databaker.csv_records import record_pattern
from databaker.line_reading import run_on_lines
from databaker.resources import DuckDBQueryEngine, SqlQuery

RAW_QUERY = SqlQuery.beside(__file__, "addressbase_cleaned_raw")
MAX_LINE_BYTES = 1 << 20
"""The longest line read as a record, in bytes, its line ending left out."""


def read_line_by_line(
    reader: DuckDBQueryEngine,
    files: list[str],
    *,
    addressbase_source: str,
    output: str,
    rejects_output: str,
) -> dict[str, Any]:
    """Write the drop's kept rows as ``first_letter=<L>/`` partitions under the folder
    ``output`` and its report of rejected rows to ``rejects_output`` (URIs); return the
    query's summary (``lines``, ``rejected_rows``, ``first_rejected``).

    Raises :class:`databaker.line_reading.InputUnreadable` when a file cannot be read to its
    end.
    """
    params = {
        "record_pattern": record_pattern(5),
        "addressbase_source": addressbase_source,
        "output": output,
        "rejects_output": rejects_output,
    }
    summary = run_on_lines(
        reader,
        RAW_QUERY,
        params,
        files=files,
        table="drop_lines_read",
        max_line_bytes=MAX_LINE_BYTES,
    )
    return summary.to_pylist()[0]
