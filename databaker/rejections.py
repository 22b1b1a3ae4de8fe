"""Rejected input rows: reported with file, line and reason; too many of them stop the bake."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

REJECTS_PREFIX = "rejected/"


def rejects_key(asset_name: str) -> str:
    """Where an asset's report of rejected rows is kept (replaced by every materialisation)."""
    return f"{REJECTS_PREFIX}{asset_name}.csv"


def describe(rejected: Sequence[dict[str, Any]]) -> list[str]:
    return [f"{row['file']}:{row['line']}: {row['reason']}" for row in rejected]


def enforce_limit(
    *,
    what: str,
    rejected: int,
    allowed: int,
    first_rejected: Sequence[dict[str, Any]],
    report: str,
) -> None:
    """Raise a ``Failure`` naming the first rejected rows if more than ``allowed`` were rejected."""
    if rejected <= allowed:
        return
    listed = describe(first_rejected)
    more = rejected - len(listed)
    lines = [f"{what}: {rejected} rejected row(s), {allowed} allowed", *listed]
    if more:
        lines.append(f"... and {more} more")
    lines.append(f"every rejected row is listed in {report}")
    raise dg.Failure(
        description="\n".join(lines),
        metadata={"rejected_rows": rejected, "rejected_report": dg.MetadataValue.path(report)},
    )
