"""The ballots table: every current ballot's area, parsed from the ballots export."""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from databaker.assets.current_ballots.ballot_ids import invalid_ballot_ids
from databaker.assets.current_ballots.from_every_election import BALLOTS_FROM_EVERY_ELECTION
from databaker.assets.current_ballots.wkt import POLYGONAL_WKT
from databaker.input_tables import ROWS_PER_BATCH, Header, InputTable
from databaker.markdown import markdown_table
from databaker.rejections import RejectionLimit
from databaker.resources import DuckDBQueryEngine, LayerStore, SqlQuery, Table
from databaker.resources.input_locations import InputLocations, content_version
from databaker.sources import export_file

CURRENT_BALLOTS_TABLE = Table.beside(__file__, "current_ballots")

FIELDS_QUERY = SqlQuery.beside(__file__, "current_ballots_fields")
PARSED_QUERY = SqlQuery.beside(__file__, "current_ballots_parsed")
BALLOTS_QUERY = SqlQuery.beside(__file__, "current_ballots")

WITHOUT_AREA = "ballot_ids_without_area"
"""The metadata key of the ballots that no usable line gives an area, as a list: the layer's
guard rails count them as still in the export (a broken line must not pass for a withdrawn
ballot)."""

FIELDS = ("election_id", "division_id", "geometry_text", "source_table")
"""The fields of a line as ``current_ballots_fields`` cuts it."""

HEADERS = (
    ("election_id", "division_id", "geometry", "source_table"),
    ("election_id", "geography_id", "geography_text", "source_table"),
)
LINE_ONE = Header(FIELDS, HEADERS, fold=True, shown=200)
"""Line 1 is either header, in any case, its fields trimmed."""

COLUMNS = (
    dg.TableColumn(
        "election_id",
        "string",
        description="The ballot's ID, valid by Democracy Club's `uk-election-ids`.",
    ),
    dg.TableColumn(
        "division_id",
        "string",
        description="The export's ID of the ballot's area (its `division_id` or `geography_id`).",
    ),
    dg.TableColumn(
        "source_table", "string", description="The kind of area: `Division` or `Organisation`."
    ),
    dg.TableColumn(
        "geometry",
        "binary",
        description="A polygon piece of the ballot's area as WKB, in lon/lat (EPSG:4326).",
    ),
    dg.TableColumn(
        "repaired",
        "bool",
        description="Whether the piece was an invalid polygon, repaired by `ST_MakeValid`.",
    ),
    dg.TableColumn("source_line", "int64", description="The export's line the piece comes from."),
)


class BallotsExportConfig(RejectionLimit):
    source: str | None = Field(
        default=None,
        description="The ballots export: CSV of election_id, division_id, geometry, "
        "source_table; by default the deployment's ballots export.",
    )


BALLOTS = InputTable(
    table=CURRENT_BALLOTS_TABLE,
    layer="current_elections",
    columns=COLUMNS,
    what="ballots export",
    every_election=BALLOTS_FROM_EVERY_ELECTION,
)
CURRENT_BALLOTS = BALLOTS.target


def current_ballots_asset(upstream: Sequence[dg.AssetKey] = ()) -> dg.AssetsDefinition:
    """The asset of the ballots table; ``upstream``: the asset that writes the ballots export
    it reads, when that is taken from EveryElection's database (:mod:`databaker.layers.exported`).
    """
    return BALLOTS.asset(_current_ballots, upstream)


def _current_ballots(
    context: dg.AssetExecutionContext,
    config: BallotsExportConfig,
    reader: DuckDBQueryEngine,
    store: LayerStore,
    inputs: InputLocations,
) -> dg.MaterializeResult:
    """Every current ballot's area, one row per polygon piece; invalid polygons repaired."""
    export = export_file(BALLOTS.source(config.source, store, inputs, required=False), BALLOTS.what)
    version = content_version(export)
    parsed, checked = _parse(reader, export)
    table = BALLOTS.publish_query(
        context,
        store,
        config,
        export,
        reader,
        BALLOTS_QUERY,
        {"invalid_ids": list(checked), "invalid_reasons": list(checked.values()), "file": export},
        {"parsed": parsed},
    )
    summary = table.summary
    # The IDs of lines whose geometry was refused were checked too, and are left out.
    invalid = {ballot: checked[ballot] for ballot in summary["refused_ids"]}
    context.log.info(
        f"{summary['ballots']} ballots in {summary['rows']} pieces; "
        f"{summary['repaired']} repaired, "
        f"{summary['skipped_without_geography']} without geography, "
        f"{summary['rejected_rows']} rejected"
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(version),
        metadata=table.metadata(
            {"ballots_source": export, "ballots_version": version, "ballots": summary["ballots"]},
            counts={
                "division_rows": summary["division_rows"],
                "organisation_rows": summary["organisation_rows"],
                "repaired_geometries": summary["repaired"],
                "skipped_without_geography": summary["skipped_without_geography"],
            },
            details={
                "invalid_ballot_ids": markdown_table(
                    ["election_id", "why it is no ballot ID"], sorted(invalid.items())
                ),
                "ballots_without_area": markdown_table(
                    ["ballot named on no usable line"],
                    ([ballot] for ballot in summary["ballots_without_area"]),
                ),
                WITHOUT_AREA: dg.MetadataValue.json(summary["ballots_without_area"]),
            },
        ),
    )


current_ballots = current_ballots_asset()


def _parse(reader: DuckDBQueryEngine, export: str) -> tuple[pa.Table, dict[str, str]]:
    """Every data line of the export with its verdict and, when usable, its area
    (``current_ballots_parsed``); and the election IDs it names that are no ballot IDs, each
    with why (:func:`invalid_ballot_ids`). Refuses an export without a header."""
    fields = BALLOTS.fields(reader, FIELDS_QUERY, export, LINE_ONE, table="export_lines_read")
    with ThreadPoolExecutor(1) as checker:
        # DuckDB leaves the GIL while it parses the geometries: the IDs are checked meanwhile.
        checking = checker.submit(invalid_ballot_ids, _election_ids(fields))
        parsed = reader.run_sql(
            PARSED_QUERY,
            {"polygonal_wkt": POLYGONAL_WKT},
            streams={"export_fields": fields.to_reader(ROWS_PER_BATCH)},
        )
        return parsed, checking.result()


def _election_ids(fields: pa.Table) -> list[str]:
    """The distinct election IDs the data lines name, sorted: those of the lines that end up in
    the table among them, checked before the geometries tell which lines those are."""
    data_lines = fields.filter(pc.greater(fields["line_no"], 1))
    return sorted(pc.unique(data_lines["election_id"]).drop_null().to_pylist())
