"""The organisations table: every current organisation's area and its current divisions', as of
a date, read from the organisations export.

The export is one CSV file (or ``s3://`` object) with a header row, a row per piece of an area.
What it holds, as this table reads it:

- a row whose ``division_slug`` is empty is a piece of its organisation's own area, and leaves
  the divisionset and division fields empty; one with a slug is a piece of one of the
  organisation's divisions, in the divisionset that runs from ``divisionset_start_date``;
- an organisation is ``<organisation_type>/<official_identifier>/<start_date>``
  (``organisation_key``), and a division that and ``<divisionset_start_date>/<division_type>/
  <division_slug>``: an area may come in several rows, and ``area_key`` says which area, the
  organisation's or a division's, a row is a piece of;
- dates are YYYY-MM-DD, an empty end date an open end; the areas follow the ballots export's
  rules, with its repairs and reasons;
- a usable row is kept when its organisation, and its divisionset for a division's, is current
  on the date the table is taken as of, and is otherwise reported as skipped, with why.
"""

import contextlib
import datetime
import re
from collections.abc import Sequence

import dagster as dg
from pydantic import Field

from databaker.assets.current_ballots.wkt import POLYGONAL_WKT
from databaker.assets.organisations.from_every_election import ORGANISATIONS_FROM_EVERY_ELECTION
from databaker.input_tables import Header, InputTable
from databaker.layers.exported import LONDON
from databaker.organisation_records import HEADER, ORGANISATION_TYPES
from databaker.rejections import RejectionLimit
from databaker.resources import DuckDBQueryEngine, LayerStore, SqlQuery, Table
from databaker.resources.input_locations import InputLocations, content_version
from databaker.sources import export_file

ORGANISATION_AREAS_TABLE = Table.beside(__file__, "organisation_areas")

FIELDS_QUERY = SqlQuery.beside(__file__, "organisation_areas_fields")
AREAS_QUERY = SqlQuery.beside(__file__, "organisation_areas")
FIELDS = (*HEADER[:-1], "geometry_text")
"""``organisation_areas_fields`` returns the fields as ``HEADER`` names them, the geometry's as
``geometry_text``."""
LINE_ONE = Header(FIELDS, (HEADER,))
"""Line 1 is ``HEADER`` exactly."""
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

COLUMNS = tuple(
    dg.TableColumn(name, kind, description=description)
    for name, kind, description in (
        ("organisation_type", "string", "EveryElection's type of the organisation (`parl`)."),
        ("official_identifier", "string", "The organisation's official identifier."),
        ("organisation_name", "string", "The organisation's name."),
        (
            "gss",
            "string",
            "The organisation's GSS code (`E07000123`); `''` when the export has none.",
        ),
        ("start_date", "date", "The day the organisation starts."),
        ("end_date", "date", "The organisation's last day; null when open-ended."),
        (
            "divisionset_start_date",
            "date",
            "The day the division's divisionset starts; null on a piece of the organisation's "
            "own area.",
        ),
        (
            "divisionset_end_date",
            "date",
            "The divisionset's last day; null when open-ended or on a piece of the "
            "organisation's own area.",
        ),
        (
            "division_type",
            "string",
            "The division's type (`DIW`); `''` for the organisation's own area.",
        ),
        ("division_slug", "string", "The division's slug; `''` for the organisation's own area."),
        ("division_name", "string", "The division's name; `''` for the organisation's own area."),
        (
            "division_official_identifier",
            "string",
            "The division's official identifier; `''` when none, or for the organisation's "
            "own area.",
        ),
        (
            "organisation_key",
            "string",
            "The organisation the piece counts for: "
            "`<organisation_type>/<official_identifier>/<start_date>`.",
        ),
        (
            "area_key",
            "string",
            "The area the piece is part of: the `organisation_key` for the organisation's own "
            "area, `<organisation_key>/<divisionset_start_date>/<division_type>/<division_slug>` "
            "for a division's.",
        ),
        ("geometry", "binary", "A polygon piece of the area as WKB, in lon/lat (EPSG:4326)."),
        ("repaired", "bool", "Whether the piece was an invalid polygon, repaired."),
        ("source_file", "string", "The export the row was read from."),
        ("source_line", "int64", "The export's line the row comes from."),
    )
)
"""The table's columns, current rows only; a text field the export leaves empty is `''`."""


class OrganisationsExportConfig(RejectionLimit):
    source: str | None = Field(
        default=None,
        description="The organisations export: a CSV file or s3:// object with a header row, "
        "a row per piece of an organisation's or a division's area; by default the "
        "deployment's export.",
    )
    on: str | None = Field(
        default=None,
        description="The date the table is taken as of (YYYY-MM-DD), which decides which "
        "organisations and divisionsets are current; by default today in Europe/London.",
    )

    def date(self) -> datetime.date:
        """The date the table is taken as of; a ``Failure`` when ``on`` is no date."""
        if self.on is None:
            return datetime.datetime.now(LONDON).date()
        if DATE.fullmatch(self.on):
            with contextlib.suppress(ValueError):
                return datetime.date.fromisoformat(self.on)
        raise dg.Failure(f"on must be a date, YYYY-MM-DD, not {self.on!r}")


ORGANISATIONS = InputTable(
    table=ORGANISATION_AREAS_TABLE,
    layer="current_organisations",
    columns=COLUMNS,
    what="organisations export",
    every_election=ORGANISATIONS_FROM_EVERY_ELECTION,
)
ORGANISATION_AREAS = ORGANISATIONS.target


def organisation_areas_asset(upstream: Sequence[dg.AssetKey] = ()) -> dg.AssetsDefinition:
    """The asset of the organisations table; ``upstream``: the asset that writes the
    organisations export it reads, when that is taken from EveryElection's database
    (:mod:`databaker.layers.exported`)."""
    return ORGANISATIONS.asset(_organisation_areas, upstream)


def _organisation_areas(
    context: dg.AssetExecutionContext,
    config: OrganisationsExportConfig,
    reader: DuckDBQueryEngine,
    store: LayerStore,
    inputs: InputLocations,
) -> dg.MaterializeResult:
    """Every current organisation's area and its current divisions', one row per piece, as of a
    date; invalid polygons repaired."""
    on = config.date().isoformat()
    export = export_file(ORGANISATIONS.source(config.source, store, inputs), ORGANISATIONS.what)
    version = content_version(export)
    fields = ORGANISATIONS.fields(
        reader, FIELDS_QUERY, export, LINE_ONE, table="organisation_lines_read"
    )
    params = {
        "organisation_types": list(ORGANISATION_TYPES),
        "on_date": on,
        "polygonal_wkt": POLYGONAL_WKT,
        "file": export,
    }
    table = ORGANISATIONS.publish_query(
        context, store, config, export, reader, AREAS_QUERY, params, {"export_fields": fields}
    )
    summary = table.summary
    context.log.info(
        f"on {on}: {summary['organisations']} organisations, {summary['divisions']} divisions "
        f"in {summary['rows']} pieces; {summary['repaired']} repaired, "
        f"{summary['skipped_rows']} not current, {summary['rejected_rows']} rejected"
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(f"{version} on {on}"),
        metadata=table.metadata(
            {
                "organisations_source": export,
                "organisations_version": version,
                "organisations_on": on,
                "organisations": summary["organisations"],
                "divisions": summary["divisions"],
            },
            counts={
                "skipped_rows": summary["skipped_rows"],
                "repaired_geometries": summary["repaired"],
            },
            details={
                "organisations_in_export": dg.MetadataValue.json(summary["organisations_in_export"])
            },
        ),
    )


organisation_areas = organisation_areas_asset()
