"""The boundary-reviews table: every division of every boundary review in Democracy Club's
export, the old divisions and the new, with their areas.

The export is a folder (or ``s3://`` prefix) of headerless CSV part files laid out as
``boundary_review_id=<int>/divisionset_generation=old|new/division_type=<TYPE>/part-*.csv``
(:func:`databaker.sources.boundary_review_parts`). What it holds, as this table reads it:

- the review, the generation and the division type of a row are its folders'; the row's own
  columns for them may be empty, and otherwise must say the same (else the row is rejected);
- a row needs a ``division_slug`` and an area that the ballots export would accept (the same
  WKT rules, repairs and reasons); every other field may be empty, and is kept as ``''``;
- a division may come in several rows, pieces of its area: each is a row of the table, and
  ``division_key`` (``<review>/<generation>/<type>/<division_slug>``) says which division it
  is a piece of;
- a folder without part files is an export of no reviews.
"""

from collections.abc import Sequence
from typing import Any

import dagster as dg
from pydantic import Field

from databaker.assets.boundary_reviews.from_every_election import (
    BOUNDARY_REVIEWS_FROM_EVERY_ELECTION,
)
from databaker.assets.current_ballots.wkt import POLYGONAL_WKT
from databaker.csv_records import record_pattern
from databaker.input_tables import InputTable, Outputs
from databaker.rejections import RejectionLimit
from databaker.resources import DuckDBQueryEngine, LayerStore, SqlQuery, Table
from databaker.resources.input_locations import InputLocations, files_version
from databaker.sources import BoundaryReviewPart, boundary_review_parts

BOUNDARY_REVIEW_DIVISIONS_TABLE = Table.beside(__file__, "boundary_review_divisions")

DIVISIONS_QUERY = SqlQuery.beside(__file__, "boundary_review_divisions")

FIELDS = 20
"""The columns of a part file's rows (``boundary_review_divisions.duckdb.sql`` names them)."""

COLUMNS = tuple(
    dg.TableColumn(name, kind, description=description)
    for name, kind, description in (
        ("boundary_review_id", "int64", "The review's ID, from its `boundary_review_id=` folder."),
        ("slug", "string", "The review's slug."),
        ("status", "string", "The review's status."),
        ("latest_event", "string", "The review's latest event."),
        ("consultation_url", "string", "The review's consultation page."),
        ("legislation_title", "string", "The legislation that makes the new divisions."),
        ("effective_date", "string", "When the new divisions take effect (`2027-05-06`)."),
        ("review_created", "string", "When the review was created."),
        ("review_modified", "string", "When the review was last modified."),
        ("organisation_name", "string", "The council under review."),
        ("organisation_official_name", "string", "The council's official name."),
        ("organisation_gss", "string", "The council's GSS code (`E07000123`)."),
        ("divisionset_id", "string", "The divisionset the division belongs to."),
        ("divisionset_pmtiles_url", "string", "The divisionset's map tiles (PMTiles)."),
        ("division_slug", "string", "The division's slug; a row without one is rejected."),
        ("division_name", "string", "The division's name."),
        ("division_official_identifier", "string", "The division's official identifier."),
        (
            "divisionset_generation",
            "string",
            "`old` or `new`: the divisionset before or after the review, from the folder.",
        ),
        ("division_type", "string", "The division type (`DIW`), from the `division_type=` folder."),
        (
            "division_key",
            "string",
            "The division the piece is part of: `<review>/<generation>/<type>/<division_slug>`.",
        ),
        ("geometry", "binary", "A polygon piece of the division as WKB, in lon/lat (EPSG:4326)."),
        ("repaired", "bool", "Whether the piece was an invalid polygon, repaired."),
        ("source_file", "string", "The part file the row was read from."),
        ("source_line", "int64", "The part file's line the row comes from."),
    )
)
"""The table's columns; a field the export leaves empty is `''`."""


class BoundaryReviewsExportConfig(RejectionLimit):
    source: str | None = Field(
        default=None,
        description="The boundary-reviews export: a folder or s3:// prefix of headerless CSV "
        "part files under boundary_review_id=<int>/divisionset_generation=old|new/"
        "division_type=<TYPE>/; by default the deployment's export.",
    )


REVIEWS = InputTable(
    table=BOUNDARY_REVIEW_DIVISIONS_TABLE,
    layer="current_boundary_reviews",
    columns=COLUMNS,
    what="boundary reviews export",
    every_election=BOUNDARY_REVIEWS_FROM_EVERY_ELECTION,
)
BOUNDARY_REVIEW_DIVISIONS = REVIEWS.target


def boundary_review_divisions_asset(
    upstream: Sequence[dg.AssetKey] = (),
) -> dg.AssetsDefinition:
    """The asset of the boundary-reviews table; ``upstream``: the asset that writes the
    boundary-reviews export it reads, when that is taken from EveryElection's database
    (:mod:`databaker.layers.exported`)."""
    return REVIEWS.asset(_boundary_review_divisions, upstream)


def _boundary_review_divisions(
    context: dg.AssetExecutionContext,
    config: BoundaryReviewsExportConfig,
    reader: DuckDBQueryEngine,
    store: LayerStore,
    inputs: InputLocations,
) -> dg.MaterializeResult:
    """Every division of every boundary review, old and new, one row per piece of its area;
    invalid polygons repaired."""
    location, parts = boundary_review_parts(REVIEWS.source(config.source, store, inputs))
    version = files_version(part.file for part in parts)
    table = REVIEWS.publish(
        context, store, config, location, lambda outputs: _read(reader, parts, outputs)
    )
    summary = table.summary
    # Every review a part file's folder names, whether or not any of its rows was kept: a
    # review whose rows were all rejected is broken, not withdrawn.
    reviews_in_export = [str(review) for review in sorted({p.boundary_review_id for p in parts})]
    context.log.info(
        f"{summary['boundary_reviews']} boundary reviews, {summary['divisions']} divisions in "
        f"{summary['rows']} pieces from {len(parts)} part files; {summary['repaired']} "
        f"repaired, {summary['rejected_rows']} rejected"
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(version),
        metadata=table.metadata(
            {
                "boundary_reviews_source": location,
                "boundary_reviews_version": version,
                "boundary_reviews": summary["boundary_reviews"],
                "divisions": summary["divisions"],
            },
            counts={"repaired_geometries": summary["repaired"]},
            details={"reviews_in_export": dg.MetadataValue.json(reviews_in_export)},
        ),
    )


boundary_review_divisions = boundary_review_divisions_asset()


def _read(
    reader: DuckDBQueryEngine, parts: list[BoundaryReviewPart], outputs: Outputs
) -> dict[str, Any]:
    """Write the kept rows of every part file and the report of the rejected ones to
    ``outputs``; return the query's summary. The files are read in one pass, cut into lines as
    the other inputs are (:mod:`databaker.line_reading`), each line carrying its file, which
    the query matches with the values of that file's folders."""
    files = [part.file.location for part in parts]
    params = {
        "part_files": files,
        "review_ids": [part.boundary_review_id for part in parts],
        "generations": [part.divisionset_generation for part in parts],
        "division_types": [part.division_type for part in parts],
        "record_pattern": record_pattern(FIELDS),
        "polygonal_wkt": POLYGONAL_WKT,
        **outputs,
    }
    summary = REVIEWS.lines(reader, DIVISIONS_QUERY, params, files=files, table="review_lines_read")
    return summary.to_pylist()[0]
