"""The boundary-reviews export taken from EveryElection's database (EE), when a deployment
names that database as its boundary reviews' location (:mod:`databaker.layers.exported`).

It is written in exactly the layout the export's reader takes from delivered files
(:func:`databaker.sources.boundary_review_parts`): a headerless part file
``boundary_review_id=<id>/divisionset_generation=old|new/division_type=<TYPE>/part-00000.csv``
for each review, generation and division type, a row per piece of a division's area. Which
reviews it holds is the deployment's choice: ``boundary_review_ids`` (exactly those) or else
``boundary_review_statuses`` (``CURRENT`` by default).

A small query lists the part files first (``boundary_reviews_export_groups.postgres.sql``);
each is then one ``COPY ... TO STDOUT`` of ``boundary_reviews_export.postgres.sql`` streamed
to its file, all within the export's one snapshot, so no geometry passes through Python.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import dagster as dg

from databaker.layers.exported import DatabaseExport, ExportFiles, ExportRequest
from databaker.resources.every_election import Snapshot

GROUPS_QUERY = (Path(__file__).parent / "boundary_reviews_export_groups.postgres.sql").read_text()
PART_QUERY = (Path(__file__).parent / "boundary_reviews_export.postgres.sql").read_text()

PMTILES_BASE_URL = "https://s3.eu-west-2.amazonaws.com/ee.public.data/"
"""EE's public data bucket, as EE's divisionset pages link it: EE keeps each divisionset's map
tiles there, under ``pmtiles-store/``."""

PART_FILE = "part-00000.csv"


class Group(NamedTuple):
    """A row of the groups query: a review's divisionset of one generation and the divisions
    of one type in it, which make one part file."""

    boundary_review_id: int
    divisionset_generation: str
    divisionset_id: int | None
    division_type: str | None
    type_is_folder_name: bool
    divisions: int
    pieces: int
    divisions_without_area: int

    @property
    def part_path(self) -> str:
        """Where the group's rows go below the export, as the export's reader expects them."""
        return (
            f"boundary_review_id={self.boundary_review_id}/"
            f"divisionset_generation={self.divisionset_generation}/"
            f"division_type={self.division_type}/{PART_FILE}"
        )


def write_boundary_reviews_export(
    snapshot: Snapshot, files: ExportFiles, request: ExportRequest
) -> Mapping[str, int]:
    """Write the selected reviews' part files; return what the export holds and what it left
    out (a review without a new or an old divisionset, a division without an area or whose
    type cannot name a folder), by count.

    Raises ``dg.Failure`` when ``boundary_review_ids`` names a review EE does not have: the
    deployment asked for it, and an export without it would pass for a complete one.
    """
    review_ids = sorted(set(request.inputs.boundary_review_ids))
    groups = snapshot.rows(
        GROUPS_QUERY,
        {
            "review_ids": [str(review_id) for review_id in review_ids],
            "statuses": list(request.inputs.boundary_review_statuses),
        },
    )
    reviews = {row[0] for row in groups}
    unknown = [review_id for review_id in review_ids if review_id not in reviews]
    if unknown:
        raise dg.Failure(
            f"boundary reviews export: EveryElection's database {snapshot.shown} has no "
            f"boundary review {', '.join(map(str, unknown))}, which boundary_review_ids "
            f"(DATABAKER_BOUNDARY_REVIEW_IDS) names"
        )
    counts: Counter[str] = Counter()
    for group in map(Group._make, groups):
        if group.divisionset_id is None:
            counts[f"boundary_reviews_without_{group.divisionset_generation}_divisionset"] += 1
            continue
        counts["divisions_without_area"] += group.divisions_without_area
        if group.division_type is None or not group.divisions:
            continue
        if not group.type_is_folder_name:
            counts["divisions_of_a_type_no_folder_can_name"] += group.divisions
            continue
        with files.open(group.part_path) as out:
            snapshot.copy_csv(
                PART_QUERY,
                {
                    "boundary_review_id": group.boundary_review_id,
                    "divisionset_generation": group.divisionset_generation,
                    "divisionset_id": group.divisionset_id,
                    "division_type": group.division_type,
                    "pmtiles_base_url": PMTILES_BASE_URL,
                },
                out,
                header=False,
            )
        counts["divisions"] += group.divisions
        counts["division_pieces"] += group.pieces
    return {
        "boundary_reviews": len(reviews),
        "boundary_reviews_without_new_divisionset": 0,
        "boundary_reviews_without_old_divisionset": 0,
        "divisions": 0,
        "division_pieces": 0,
        "divisions_without_area": 0,
        "divisions_of_a_type_no_folder_can_name": 0,
    } | dict(counts)


BOUNDARY_REVIEWS_FROM_EVERY_ELECTION = DatabaseExport(
    asset_name="boundary_reviews_export",
    layer="current_boundary_reviews",
    option="boundary_reviews",
    label="boundary-reviews export",
    reads="",
    write=write_boundary_reviews_export,
    description="The boundary-reviews export taken from EveryElection's database: the old and "
    "new divisions of each selected review (DATABAKER_BOUNDARY_REVIEW_IDS, else the reviews of "
    "DATABAKER_BOUNDARY_REVIEW_STATUSES, CURRENT by default), a row per piece of a division's "
    "area, in the export's part-file layout.",
    events=("boundary_change_set_changed",),
)
