"""Rejected input rows: reported with file, line and reason; too many of them stop the bake.

An asset that reads an input line by line runs a query that writes, into its staging area,
the rows it keeps (``VALID_ROWS``) and a report of the lines it rejects (``REJECTED_ROWS``).
:func:`publish_checked_input` then publishes the report in every case, and the kept rows only
when the rejections are within the configured allowance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from pydantic import Field

from databaker.resources import LayerStore

REJECTS_PREFIX = "rejected/"
VALID_ROWS = "valid.parquet"
VALID_PARTITIONS = "valid/"
"""Where a query that writes its kept rows as a partitioned folder stages them."""
REJECTED_ROWS = "rejected.csv"
NO_REJECTED_ROWS = b"file,line,reason,text\n"
"""The report of a reading that rejected nothing: its header only."""


class RejectionLimit(dg.Config):
    """Configuration of assets that read an input line by line: how many unusable rows may be
    left out (and reported) before the bake stops. The larger of the two allowances applies."""

    max_rejected_rows: int = Field(
        default=0, ge=0, description="Rows that may be rejected, whatever the input's size."
    )
    max_rejected_share: float = Field(
        default=0.001,
        ge=0,
        le=1,
        description="Share of the input's rows that may be rejected (0.001: one in a thousand).",
    )

    def allowed(self, rows: int) -> int:
        """Rejected rows allowed in an input of ``rows`` rows (kept and rejected)."""
        return max(self.max_rejected_rows, math.floor(self.max_rejected_share * rows))


def rejects_key(asset_name: str) -> str:
    """Where an asset's report of rejected rows is kept (replaced by every materialisation)."""
    return f"{REJECTS_PREFIX}{asset_name}.csv"


def publish_checked_input(
    store: LayerStore,
    staging: str,
    *,
    asset_name: str,
    what: str,
    summary: Mapping[str, Any],
    rows: int,
    limit: RejectionLimit,
    target: str,
    valid_rows: str = VALID_ROWS,
) -> str:
    """Publish the report, stop if too many rows were rejected, then publish the kept rows.

    ``summary`` is the query's summary row, with ``rejected_rows`` and ``first_rejected`` (a
    list of ``{file, line, reason}``); ``rows`` counts the input's rows, kept and rejected.
    Kept rows staged as a folder (``valid_rows`` ending in ``/``) replace the folder
    ``target``. Returns where the report is.
    """
    report = rejects_key(asset_name)
    store.move(staging + REJECTED_ROWS, report)
    _enforce_limit(
        what=what,
        rejected=summary["rejected_rows"],
        allowed=limit.allowed(rows),
        rows=rows,
        first_rejected=summary["first_rejected"],
        report=store.uri(report),
    )
    if valid_rows.endswith("/"):
        store.replace_prefix(staging + valid_rows, target)
    else:
        store.move(staging + valid_rows, target)
    return store.uri(report)


def _enforce_limit(
    *,
    what: str,
    rejected: int,
    allowed: int,
    rows: int,
    first_rejected: Sequence[Mapping[str, Any]],
    report: str,
) -> None:
    """Raise a ``Failure`` naming the first rejected rows if more than ``allowed`` were rejected."""
    if rejected <= allowed:
        return
    listed = [f"{row['file']}:{row['line']}: {row['reason']}" for row in first_rejected]
    more = rejected - len(listed)
    lines = [f"{what}: {rejected} rejected row(s), {allowed} allowed of {rows} rows", *listed]
    if more:
        lines.append(f"... and {more} more")
    lines.append(f"every rejected row is listed in {report}")
    raise dg.Failure(
        description="\n".join(lines),
        metadata={"rejected_rows": rejected, "rejected_report": dg.MetadataValue.path(report)},
    )
