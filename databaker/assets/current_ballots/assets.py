"""The ballots table: every current ballot's area, parsed from the ballots export."""

from collections.abc import Sequence
from typing import Any

import dagster as dg
from pydantic import Field

from databaker.assets.current_ballots.ballot_ids import invalid_ballot_ids
from databaker.assets.current_ballots.from_every_election import BALLOTS_FROM_EVERY_ELECTION
from databaker.assets.current_ballots.wkt import POLYGONAL_WKT
from databaker.catalog import OWNERS, ROW_COUNT, table_schema
from databaker.concurrency import layer_pool
from databaker.csv_records import record_pattern
from databaker.line_reading import InputUnreadable, run_on_lines
from databaker.markdown import markdown_table
from databaker.rejections import REJECTED_ROWS, VALID_ROWS, RejectionLimit, publish_checked_input
from databaker.resources import DuckDBQueryEngine, LayerStore, SqlQuery, Table
from databaker.resources.every_election import is_every_election_url
from databaker.resources.input_locations import InputLocations, content_version
from databaker.sources import export_file
from databaker.staging import staging_area

CURRENT_BALLOTS_TABLE = Table.beside(__file__, "current_ballots")
CURRENT_BALLOTS = CURRENT_BALLOTS_TABLE.prefix + "current_ballots.parquet"

PARSED_QUERY = SqlQuery.beside(__file__, "current_ballots_parsed")
BALLOTS_QUERY = SqlQuery.beside(__file__, "current_ballots")

WITHOUT_AREA = "ballot_ids_without_area"
"""The metadata key of the ballots that no usable line gives an area, as a list: the layer's
guard rails count them as still in the export (a broken line must not pass for a withdrawn
ballot)."""

MAX_LINE_BYTES = 64 << 20
"""The longest line read as a record, in bytes: a line holds a whole geometry, which may be
large; a longer line is a rejected row."""

HEADERS = (
    ("election_id", "division_id", "geometry", "source_table"),
    ("election_id", "geography_id", "geography_text", "source_table"),
)

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


def current_ballots_asset(upstream: Sequence[dg.AssetKey] = ()) -> dg.AssetsDefinition:
    """The asset of the ballots table; ``upstream``: the asset that writes the ballots export
    it reads, when that is taken from EveryElection's database (:mod:`databaker.layers.exported`).
    """
    return dg.asset(
        name="current_ballots",
        deps=upstream,
        group_name="current_elections",
        kinds={"duckdb", "csv", "parquet"},
        pool=layer_pool("current_elections"),
        owners=OWNERS,
        metadata=table_schema(COLUMNS),
    )(_current_ballots)


def _current_ballots(
    context: dg.AssetExecutionContext,
    config: BallotsExportConfig,
    reader: DuckDBQueryEngine,
    store: LayerStore,
    inputs: InputLocations,
) -> dg.MaterializeResult:
    """Every current ballot's area, one row per polygon piece; invalid polygons repaired."""
    source = config.source or inputs.ballots
    if is_every_election_url(source):
        source = BALLOTS_FROM_EVERY_ELECTION.location_read(store, source, inputs)
    export = export_file(source)
    version = content_version(export)
    with staging_area(store, context) as staging:
        parsed = _parse(reader, export, store.uri_for_writing(staging + "parsed.parquet"))
        _check_header(export, parsed["header"], parsed["first_line"])
        invalid = invalid_ballot_ids(parsed["election_ids"])
        summary = reader.run(
            BALLOTS_QUERY,
            {
                "parsed": store.uri(staging + "parsed.parquet"),
                "invalid_ids": list(invalid),
                "invalid_reasons": list(invalid.values()),
                "file": export,
                "output": store.uri_for_writing(staging + VALID_ROWS),
                "rejects_output": store.uri_for_writing(staging + REJECTED_ROWS),
            },
        ).to_pylist()[0]
        rows_read = (
            summary["rows"] + summary["skipped_without_geography"] + summary["rejected_rows"]
        )
        report = publish_checked_input(
            store,
            staging,
            asset_name="current_ballots",
            what=f"ballots export {export}",
            summary=summary,
            rows=rows_read,
            limit=config,
            target=CURRENT_BALLOTS,
        )
    context.log.info(
        f"{summary['ballots']} ballots in {summary['rows']} pieces; "
        f"{summary['repaired']} repaired, "
        f"{summary['skipped_without_geography']} without geography, "
        f"{summary['rejected_rows']} rejected"
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(version),
        metadata={
            "ballots_source": export,
            "ballots_version": version,
            "ballots": summary["ballots"],
            ROW_COUNT: summary["rows"],
            "rows": summary["rows"],
            "division_rows": summary["division_rows"],
            "organisation_rows": summary["organisation_rows"],
            "repaired_geometries": summary["repaired"],
            "skipped_without_geography": summary["skipped_without_geography"],
            "rejected_rows": summary["rejected_rows"],
            "rejected_rows_allowed": config.allowed(rows_read),
            "invalid_ballot_ids": markdown_table(
                ["election_id", "why it is no ballot ID"], sorted(invalid.items())
            ),
            "ballots_without_area": markdown_table(
                ["ballot named on no usable line"],
                ([ballot] for ballot in summary["ballots_without_area"]),
            ),
            WITHOUT_AREA: dg.MetadataValue.json(summary["ballots_without_area"]),
            "rejected_report": dg.MetadataValue.path(report),
            "path": dg.MetadataValue.path(store.uri(CURRENT_BALLOTS)),
        },
    )


current_ballots = current_ballots_asset()


def _parse(reader: DuckDBQueryEngine, export: str, output: str) -> dict[str, Any]:
    """Every data line of the export with its verdict, written to ``output``; return the
    header's fields (and line 1 as text, with its fault), and the election IDs of the usable
    lines. The lines are cut as the AddressBase drop's are (:mod:`databaker.line_reading`)."""
    params = {
        "record_pattern": record_pattern(4),
        "polygonal_wkt": POLYGONAL_WKT,
        "output": output,
    }
    try:
        parsed = run_on_lines(
            reader,
            PARSED_QUERY,
            params,
            files=[export],
            table="export_lines_read",
            max_line_bytes=MAX_LINE_BYTES,
        )
    except InputUnreadable as error:
        raise dg.Failure(f"ballots export refused: {error}") from None
    return parsed.to_pylist()[0]


def _check_header(
    export: str, header: list[str] | None, first_line: dict[str, str | None] | None
) -> None:
    """Refuse an export whose line 1 is not one of ``HEADERS`` (in any case, fields trimmed),
    showing what line 1 holds instead."""
    found = tuple(field.strip().lower() for field in header or ())
    if found in HEADERS:
        return
    if header:
        shown = ",".join(header)
    elif first_line:
        reason = first_line["fault"] or "not a CSV record of 4 fields"
        shown = f"{first_line['text']!r} ({reason})"
    else:
        shown = "(nothing)"
    expected = " or ".join(",".join(names) for names in HEADERS)
    raise dg.Failure(f"{export}:1: the header must be {expected}, not {shown}")
