"""The organisations export taken from EveryElection's database (EE), in exactly the CSV the
``organisation_areas`` asset reads from a delivered file: the header, then a row per piece of
each organisation's own area and of each of its divisions' areas, the pieces as EE subdivided
them (``organisations_export.postgres.sql`` says which organisations, areas and divisions, and
how EE's fields map to the CSV's).

What is in the export and what is current are decided apart: the export holds what is not
ended before the date it is taken as of (what starts later included), and the reader keeps
what is current on the date the layer is baked as of. An export taken today therefore bakes
today or any later day; a bake as of an earlier day exports as of that day
(:func:`databaker.bake.bake` passes its date on).

The rows stream from the server to ``out`` by ``COPY``; no geometry is held in Python. Their
order is fixed (by type, identifier, start date, then own area first, divisionset, division
and piece), so an export of an unchanged database is the same bytes, and so is its version.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import BinaryIO

from databaker.organisation_records import HEADER
from databaker.resources.every_election import Snapshot

ROWS_QUERY = Path(__file__).with_name("organisations_export.postgres.sql").read_text()


EXPORT_QUERY = (
    f"SELECT {', '.join(HEADER)} FROM ({ROWS_QUERY}) AS piece WHERE left_out IS NULL"
    ' ORDER BY organisation_type COLLATE "C", official_identifier COLLATE "C", start_date,'
    " organisation_id, divisionset_start_date NULLS FIRST, divisionset_id NULLS FIRST,"
    ' division_type COLLATE "C", division_slug COLLATE "C", division_id, area_division_id,'
    " piece_id"
)

COUNTS_QUERY = (
    "SELECT"
    " count(DISTINCT organisation_id) FILTER (WHERE left_out IS NULL),"
    " count(DISTINCT divisionset_id) FILTER (WHERE left_out IS NULL),"
    " count(DISTINCT division_id) FILTER (WHERE left_out IS NULL),"
    " count(*) FILTER (WHERE left_out IS NULL),"
    " count(*) FILTER (WHERE left_out IS NULL AND division_id IS NULL),"
    " count(*) FILTER (WHERE left_out IS NULL AND division_id IS NOT NULL),"
    " count(*) FILTER (WHERE left_out IS NULL AND piece_id IS NULL),"
    " count(*) FILTER (WHERE left_out = 'organisation without area'),"
    " count(DISTINCT organisation_id) FILTER (WHERE area_division_id IS NOT NULL),"
    " count(DISTINCT division_id) FILTER (WHERE left_out = 'division without area'),"
    " count(DISTINCT division_id) FILTER (WHERE left_out = 'division without slug')"
    f" FROM ({ROWS_QUERY}) AS piece"
)
"""The export's rows counted, and what it left out; the server leaves the unused geometry
text uncomputed."""

COUNTS = (
    "organisations",
    "divisionsets",
    "divisions",
    "rows",
    "organisation_rows",
    "division_rows",
    "whole_areas",
    "organisations_without_area",
    "organisations_with_divisions_as_area",
    "divisions_without_area",
    "divisions_without_slug",
)
"""``organisations``: those with a row (an organisation without an area but with divisions
has theirs); ``whole_areas``: rows of an area EE holds no subdivided pieces of, exported
whole; ``organisations_with_divisions_as_area``: those without an area of their own in EE,
whose area is their current divisions' (``organisations_export.postgres.sql``)."""


def export_organisations(
    snapshot: Snapshot, out: BinaryIO, *, as_of: datetime.date
) -> dict[str, int]:
    """Write every organisation not ended before ``as_of`` with its divisions to ``out`` as
    the organisations CSV; return the counts of :data:`COUNTS`, all counted in ``snapshot``,
    the transaction the rows were read in."""
    params = {"as_of": as_of}
    snapshot.copy_csv(EXPORT_QUERY, params, out, header=True)
    (counts,) = snapshot.rows(COUNTS_QUERY, params)
    return dict(zip(COUNTS, counts, strict=True))
