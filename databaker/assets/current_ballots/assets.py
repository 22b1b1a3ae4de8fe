"""The ballots table: every current ballot's area, parsed from the ballots export."""

import dagster as dg
from pydantic import Field

from databaker.assets.current_ballots.ballot_ids import invalid_ballot_ids
from databaker.assets.current_ballots.wkt import POLYGONAL_WKT
from databaker.csv_records import record_pattern
from databaker.rejections import REJECTED_ROWS, VALID_ROWS, RejectionLimit, publish_checked_input
from databaker.resources import DuckDBQueryEngine, LayerStore, SqlQuery, Table
from databaker.resources.input_locations import InputLocations, content_version
from databaker.sources import export_file
from databaker.staging import staging_area

CURRENT_BALLOTS_TABLE = Table.beside(__file__, "current_ballots")
CURRENT_BALLOTS = CURRENT_BALLOTS_TABLE.prefix + "current_ballots.parquet"

PARSED_QUERY = SqlQuery.beside(__file__, "current_ballots_parsed")
BALLOTS_QUERY = SqlQuery.beside(__file__, "current_ballots")

HEADERS = (
    ("election_id", "division_id", "geometry", "source_table"),
    ("election_id", "geography_id", "geography_text", "source_table"),
)


class BallotsExportConfig(RejectionLimit):
    source: str | None = Field(
        default=None,
        description="The ballots export: CSV of election_id, division_id, geometry, "
        "source_table; by default the deployment's ballots export.",
    )


@dg.asset(group_name="current_elections", kinds={"duckdb", "csv", "parquet"})
def current_ballots(
    context: dg.AssetExecutionContext,
    config: BallotsExportConfig,
    reader: DuckDBQueryEngine,
    store: LayerStore,
    inputs: InputLocations,
) -> dg.MaterializeResult:
    """Every current ballot's area, one row per polygon piece; invalid polygons repaired."""
    export = export_file(config.source or inputs.ballots)
    version = content_version(export)
    with staging_area(store, context) as staging:
        parsed = reader.run(
            PARSED_QUERY,
            {
                "file": export,
                "record_pattern": record_pattern(4),
                "polygonal_wkt": POLYGONAL_WKT,
                "output": store.uri_for_writing(staging + "parsed.parquet"),
            },
        ).to_pylist()[0]
        _check_header(export, parsed["header"])
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
            "rows": summary["rows"],
            "division_rows": summary["division_rows"],
            "organisation_rows": summary["organisation_rows"],
            "repaired_geometries": summary["repaired"],
            "skipped_without_geography": summary["skipped_without_geography"],
            "rejected_rows": summary["rejected_rows"],
            "rejected_rows_allowed": config.allowed(rows_read),
            "invalid_ballot_ids": dg.MetadataValue.json(invalid),
            "ballots_without_area": dg.MetadataValue.json(summary["ballots_without_area"]),
            "rejected_report": dg.MetadataValue.path(report),
            "path": dg.MetadataValue.path(store.uri(CURRENT_BALLOTS)),
        },
    )


def _check_header(export: str, header: list[str] | None) -> None:
    found = tuple(field.strip().lower() for field in header or ())
    if found not in HEADERS:
        expected = " or ".join(",".join(names) for names in HEADERS)
        raise dg.Failure(
            f"{export}:1: the header must be {expected}, not {','.join(header or ['(nothing)'])}"
        )
