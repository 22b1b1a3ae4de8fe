"""AddressBase: the cleaned drop as received, then split by the postcode's first letter."""

from typing import Any

import dagster as dg
from pydantic import Field

from databaker.csv_records import record_pattern
from databaker.partitions import first_letter_partitions, one_run_per_backfill
from databaker.rejections import REJECTED_ROWS, VALID_ROWS, RejectionLimit, publish_checked_input
from databaker.resources import (
    DuckDBQueryEngine,
    LayerStore,
    QueryEngine,
    QueryError,
    SqlQuery,
    Table,
)
from databaker.resources.input_locations import InputLocations
from databaker.resources.query_engine import ParamValue
from databaker.sources import drop_files
from databaker.staging import rebuild_letter_partitions, staging_area

ADDRESSBASE_RAW_TABLE = Table.beside(__file__, "addressbase_cleaned_raw")
ADDRESSBASE_RAW = ADDRESSBASE_RAW_TABLE.prefix + "addressbase_cleaned_raw.parquet"
ADDRESSBASE_PARTITIONED_TABLE = Table.beside(__file__, "addressbase_partitioned")
ADDRESSBASE_PARTITIONED = ADDRESSBASE_PARTITIONED_TABLE.prefix

RAW_QUERY = SqlQuery.beside(__file__, "addressbase_cleaned_raw")
PARTITIONED_QUERY = SqlQuery.beside(__file__, "addressbase_partitioned")


class AddressBaseDropConfig(RejectionLimit):
    source: str | None = Field(
        default=None,
        description="The drop: a folder of headerless CSV files (.csv or .csv.gz) or one file; "
        "by default the newest complete drop in the drops location.",
    )


@dg.asset(group_name="addressbase", kinds={"duckdb", "csv", "parquet"})
def addressbase_cleaned_raw(
    context: dg.AssetExecutionContext,
    config: AddressBaseDropConfig,
    reader: DuckDBQueryEngine,
    store: LayerStore,
    inputs: InputLocations,
) -> dg.MaterializeResult:
    """The AddressBase drop as received, every line validated; rejected lines reported by number."""
    addressbase_source, files = drop_files(config.source or inputs.latest_complete_drop().location)
    with staging_area(store, context) as staging:
        params = {
            "files": files,
            "record_pattern": record_pattern(5),
            "addressbase_source": addressbase_source,
            "output": store.uri_for_writing(staging + VALID_ROWS),
            "rejects_output": store.uri_for_writing(staging + REJECTED_ROWS),
        }
        summary = _read_drop(reader, params)
        report = publish_checked_input(
            store,
            staging,
            asset_name="addressbase_cleaned_raw",
            what=f"AddressBase drop {addressbase_source}",
            summary=summary,
            allowed=config.max_rejected_rows,
            target=ADDRESSBASE_RAW,
        )
    context.log.info(
        f"read {summary['lines']} lines from {len(files)} file(s): "
        f"{summary['valid_rows']} valid, {summary['rejected_rows']} rejected"
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(addressbase_source),
        metadata={
            "addressbase_source": addressbase_source,
            "files": len(files),
            "rows": summary["valid_rows"],
            "rejected_rows": summary["rejected_rows"],
            "rejected_report": dg.MetadataValue.path(report),
            "path": dg.MetadataValue.path(store.uri(ADDRESSBASE_RAW)),
        },
    )


def _read_drop(reader: DuckDBQueryEngine, params: dict[str, ParamValue]) -> dict[str, Any]:
    """The drop's summary row: from the fast reading, which stops at the first line it cannot
    take, else from the line-by-line reading, which names every rejected line."""
    try:
        return reader.run(RAW_QUERY, {**params, "exact": False}).to_pylist()[0]
    except QueryError:
        return reader.run(RAW_QUERY, {**params, "exact": True}).to_pylist()[0]


@dg.asset(
    deps=[addressbase_cleaned_raw],
    partitions_def=first_letter_partitions,
    backfill_policy=one_run_per_backfill,
    group_name="addressbase",
    kinds={"duckdb", "parquet"},
)
def addressbase_partitioned(
    context: dg.AssetExecutionContext, engine: QueryEngine, store: LayerStore
) -> dg.MaterializeResult:
    """Every address of the drop as parquet, one partition per postcode first letter."""
    if not store.list_keys(ADDRESSBASE_RAW_TABLE.prefix):
        raise dg.Failure("addressbase_cleaned_raw has not been materialised yet")
    rows = rebuild_letter_partitions(
        context,
        engine,
        store,
        query=PARTITIONED_QUERY,
        params={
            "addressbase_cleaned_raw": ADDRESSBASE_RAW_TABLE.in_store(store),
            "letters": sorted(context.partition_keys),
        },
        table_prefix=ADDRESSBASE_PARTITIONED,
    )
    context.log.info(f"wrote {sum(rows.values())} addresses in {len(rows)} letter partition(s)")
    return dg.MaterializeResult(
        metadata={
            "rows": sum(rows.values()),
            "rows_per_letter": dg.MetadataValue.json(rows),
            "letters_without_addresses": sorted(set(context.partition_keys) - rows.keys()),
            "path": dg.MetadataValue.path(store.uri(ADDRESSBASE_PARTITIONED)),
        }
    )
