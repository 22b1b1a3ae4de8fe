"""AddressBase: the cleaned drop as received, then split by the postcode's first letter."""

import dagster as dg
from pydantic import Field

from databaker.csv_records import record_pattern
from databaker.partitions import first_letter_partitions, one_run_per_backfill
from databaker.rejections import enforce_limit, rejects_key
from databaker.resources import LayerStore, QueryEngine, SqlQuery
from databaker.sources import SAMPLE_ADDRESSBASE, drop_files
from databaker.staging import replace_partitions, rows_per_partition, staging_area

ADDRESSBASE_RAW = "addressbase_cleaned_raw/addressbase_cleaned_raw.parquet"
ADDRESSBASE_PARTITIONED = "addressbase_partitioned/"

RAW_QUERY = SqlQuery.beside(__file__, "addressbase_cleaned_raw")
PARTITIONED_QUERY = SqlQuery.beside(__file__, "addressbase_partitioned")


class AddressBaseDropConfig(dg.Config):
    source: str = Field(
        default=str(SAMPLE_ADDRESSBASE),
        description="The drop: a folder of headerless CSV files (.csv or .csv.gz) or one file.",
    )
    max_rejected_rows: int = Field(
        default=0,
        ge=0,
        description="How many malformed rows may be left out (and reported) before the bake stops.",
    )


@dg.asset(group_name="addressbase", kinds={"duckdb", "csv", "parquet"})
def addressbase_cleaned_raw(
    context: dg.AssetExecutionContext,
    config: AddressBaseDropConfig,
    engine: QueryEngine,
    store: LayerStore,
) -> dg.MaterializeResult:
    """The AddressBase drop as received, every line validated; rejected lines reported by number."""
    addressbase_source, files = drop_files(config.source)
    report = rejects_key("addressbase_cleaned_raw")
    with staging_area(store, context, "addressbase_cleaned_raw") as staging:
        summary = engine.run(
            RAW_QUERY,
            {
                "files": files,
                "record_pattern": record_pattern(5),
                "addressbase_source": addressbase_source,
                "output": store.uri_for_writing(staging + "valid.parquet"),
                "rejects_output": store.uri_for_writing(staging + "rejected.csv"),
            },
        ).to_pylist()[0]
        store.move(staging + "rejected.csv", report)
        enforce_limit(
            what=f"AddressBase drop {addressbase_source}",
            rejected=summary["rejected_rows"],
            allowed=config.max_rejected_rows,
            first_rejected=summary["first_rejected"],
            report=store.uri(report),
        )
        store.move(staging + "valid.parquet", ADDRESSBASE_RAW)
    context.log.info(
        f"read {summary['lines']} lines from {len(files)} file(s): "
        f"{summary['valid_rows']} valid, {summary['rejected_rows']} rejected"
    )
    return dg.MaterializeResult(
        metadata={
            "addressbase_source": addressbase_source,
            "files": len(files),
            "rows": summary["valid_rows"],
            "rejected_rows": summary["rejected_rows"],
            "rejected_report": dg.MetadataValue.path(store.uri(report)),
            "path": dg.MetadataValue.path(store.uri(ADDRESSBASE_RAW)),
        }
    )


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
    letters = sorted(context.partition_keys)
    if not store.list_keys("addressbase_cleaned_raw/"):
        raise dg.Failure("addressbase_cleaned_raw has not been materialised yet")
    with staging_area(store, context, "addressbase_partitioned") as staging:
        stats = engine.run(
            PARTITIONED_QUERY,
            {
                "addressbase_cleaned_raw": store.uri(ADDRESSBASE_RAW),
                "letters": letters,
                "output": store.uri_for_writing(staging),
            },
        ).to_pydict()
        replace_partitions(store, staging, ADDRESSBASE_PARTITIONED, letters)
    rows = rows_per_partition(stats)
    context.log.info(f"wrote {sum(rows.values())} addresses in {len(rows)} letter partition(s)")
    return dg.MaterializeResult(
        metadata={
            "rows": sum(rows.values()),
            "rows_per_letter": rows,
            "letters_without_addresses": sorted(set(letters) - rows.keys()),
            "path": dg.MetadataValue.path(store.uri(ADDRESSBASE_PARTITIONED)),
        }
    )
