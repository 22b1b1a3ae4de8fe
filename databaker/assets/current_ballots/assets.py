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

FIELDS_QUERY = SqlQuery.beside(__file__, "current_ballots_fields")
PARSED_QUERY = SqlQuery.beside(__file__, "current_ballots_parsed")
BALLOTS_QUERY = SqlQuery.beside(__file__, "current_ballots")

ROWS_PER_BATCH = 512
"""The lines DuckDB takes at a time from those Python hands it: the export is parsed by every
thread, a batch each, however few lines it has (a table of 20,000 lines is one row group,
which one thread alone reads)."""

WITHOUT_AREA = "ballot_ids_without_area"
"""The metadata key of the ballots that no usable line gives an area, as a list: the layer's
guard rails count them as still in the export (a broken line must not pass for a withdrawn
ballot)."""

MAX_LINE_BYTES = 64 << 20
"""The longest line read as a record, in bytes: a line holds a whole geometry, which may be
large; a longer line is a rejected row."""

FIELDS = ("election_id", "division_id", "geometry_text", "source_table")
"""The fields of a line as ``current_ballots_fields`` cuts it."""

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
    parsed, checked = _parse(reader, export)
    with staging_area(store, context) as staging:
        summary = reader.run_sql(
            BALLOTS_QUERY,
            {
                "invalid_ids": list(checked),
                "invalid_reasons": list(checked.values()),
                "file": export,
                "output": store.uri_for_writing(staging + VALID_ROWS),
                "rejects_output": store.uri_for_writing(staging + REJECTED_ROWS),
            },
            streams={"parsed": parsed.to_reader(ROWS_PER_BATCH)},
        ).to_pylist()[0]
        # The IDs of lines whose geometry was refused were checked too, and are left out.
        invalid = {ballot: checked[ballot] for ballot in summary["refused_ids"]}
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


def _parse(reader: DuckDBQueryEngine, export: str) -> tuple[pa.Table, dict[str, str]]:
    """Every data line of the export with its verdict and, when usable, its area
    (``current_ballots_parsed``); and the election IDs it names that are no ballot IDs, each
    with why (:func:`invalid_ballot_ids`). Refuses an export without a header."""
    fields = _fields(reader, export)
    _check_header(export, fields)
    with ThreadPoolExecutor(1) as checker:
        # DuckDB leaves the GIL while it parses the geometries: the IDs are checked meanwhile.
        checking = checker.submit(invalid_ballot_ids, _election_ids(fields))
        parsed = reader.run_sql(
            PARSED_QUERY,
            {"polygonal_wkt": POLYGONAL_WKT},
            streams={"export_fields": fields.to_reader(ROWS_PER_BATCH)},
        )
        return parsed, checking.result()


def _fields(reader: DuckDBQueryEngine, export: str) -> pa.Table:
    """Every line of the export that is not blank, cut into its fields
    (``current_ballots_fields``). The lines are cut as the AddressBase drop's are
    (:mod:`databaker.line_reading`)."""
    try:
        return run_on_lines(
            reader,
            FIELDS_QUERY,
            {"record_pattern": record_pattern(4)},
            files=[export],
            table="export_lines_read",
            max_line_bytes=MAX_LINE_BYTES,
        )
    except InputUnreadable as error:
        raise dg.Failure(f"ballots export refused: {error}") from None


def _election_ids(fields: pa.Table) -> list[str]:
    """The distinct election IDs the data lines name, sorted: those of the lines that end up in
    the table among them, checked before the geometries tell which lines those are."""
    data_lines = fields.filter(pc.greater(fields["line_no"], 1))
    return sorted(pc.unique(data_lines["election_id"]).drop_null().to_pylist())


def _check_header(export: str, fields: pa.Table) -> None:
    """Refuse an export whose line 1 is not one of ``HEADERS`` (in any case, fields trimmed),
    showing what line 1 holds instead."""
    line_one = fields.filter(pc.equal(fields["line_no"], 1)).to_pylist()
    first = line_one[0] if line_one else None
    header = [first[name] for name in FIELDS] if first and first["well_formed"] else None
    found = tuple(field.strip().lower() for field in header or ())
    if found in HEADERS:
        return
    if header:
        shown = ",".join(header)
    elif first:
        reason = first["line_fault"] or "not a CSV record of 4 fields"
        shown = f"{first['text'][:200]!r} ({reason})"
    else:
        shown = "(nothing)"
    expected = " or ".join(",".join(names) for names in HEADERS)
    raise dg.Failure(f"{export}:1: the header must be {expected}, not {shown}")
