"""The ballots export taken from EveryElection's database (EE), byte for byte the CSV the
``current_ballots`` asset reads from a delivered file: the header
``election_id,division_id,geometry,source_table``, then one row per subdivided piece of each
current ballot's area (``ballots_export.postgres.sql`` says which ballots and pieces).

The rows stream from the server to ``out`` by ``COPY``; no geometry is held in Python. Their
order is fixed, so an export of an unchanged database is the same bytes, and so is its content
version.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import BinaryIO

from databaker.resources.every_election import Snapshot

CURRENT_PAST_DAYS = 30
"""A ballot stays current this many days after its poll date (unless marked otherwise)."""

EXPORT_QUERY = Path(__file__).with_name("ballots_export.postgres.sql").read_text()

COUNTS_QUERY = (
    "SELECT count(DISTINCT election_id), count(*),"
    " count(*) FILTER (WHERE source_table = 'Division'),"
    " count(*) FILTER (WHERE source_table = 'Organisation'),"
    " count(*) FILTER (WHERE source_table = 'None')"
    " FROM (" + EXPORT_QUERY + ") AS export"
)
"""The export's rows counted; the server leaves the unused geometry text uncomputed."""

COUNTS = ("ballots", "rows", "division_rows", "organisation_rows", "without_geography")


def export_ballots(snapshot: Snapshot, out: BinaryIO, *, today: datetime.date) -> dict[str, int]:
    """Write the ballots current on ``today`` to ``out`` as the ballots CSV; return how many
    ballots it names (those without geography included), its data rows, the rows of division
    and of organisation areas, and the ballots without geography (one ``None`` row each), all
    counted in ``snapshot``, the transaction the rows were read in."""
    params = {"since": today - datetime.timedelta(days=CURRENT_PAST_DAYS)}
    snapshot.copy_csv(EXPORT_QUERY, params, out, header=True)
    (counts,) = snapshot.rows(COUNTS_QUERY, params)
    return dict(zip(COUNTS, counts, strict=True))
