"""AddressBase: the cleaned drop as received, then split by the postcode's first letter."""

from typing import Any

import dagster as dg
from pydantic import Field

from databaker.assets.addressbase.fast_reading import DropNotReadFast, write_drop_partitions
from databaker.assets.addressbase.line_by_line import read_line_by_line
from databaker.catalog import (
    ADDRESS,
    ADDRESSBASE_SOURCE,
    FIRST_LETTER,
    OUTCODE,
    OWNERS,
    POSTCODE,
    ROW_COUNT,
    UPRN,
    column_lineage,
    copied_from,
    table_schema,
)
from databaker.check_gate import latest_evaluation, require_passed_checks
from databaker.concurrency import ADDRESSBASE_POOL
from databaker.line_reading import InputUnreadable
from databaker.partitions import letter_partitioned_asset
from databaker.rejections import (
    NO_REJECTED_ROWS,
    REJECTED_ROWS,
    VALID_PARTITIONS,
    RejectionLimit,
    publish_checked_input,
    rejects_key,
)
from databaker.resources import (
    DuckDBQueryEngine,
    LayerStore,
    QueryEngine,
    SqlQuery,
    Table,
)
from databaker.resources.input_locations import InputLocations
from databaker.sources import drop_files
from databaker.staging import (
    partition_prefix,
    rebuild_letter_partitions,
    report_letter_partitions,
    rows_in,
    staging_area,
)

ADDRESSBASE_RAW_TABLE = Table.beside(__file__, "addressbase_cleaned_raw")
ADDRESSBASE_RAW = ADDRESSBASE_RAW_TABLE.prefix
ADDRESSBASE_PARTITIONED_TABLE = Table.beside(__file__, "addressbase_partitioned")
ADDRESSBASE_PARTITIONED = ADDRESSBASE_PARTITIONED_TABLE.prefix

PARTITIONED_QUERY = SqlQuery.beside(__file__, "addressbase_partitioned")
REPEATED_LETTERS_QUERY = SqlQuery.beside(__file__, "letters_with_repeated_uprns")

ADDRESSBASE_COLUMNS = (
    UPRN,
    ADDRESS,
    POSTCODE,
    OUTCODE,
    dg.TableColumn(
        "longitude",
        "double",
        description="The address's longitude (WGS 84), from the drop's "
        "`location` (`SRID=4326;POINT(<lon> <lat>)`).",
    ),
    dg.TableColumn(
        "latitude", "double", description="The address's latitude (WGS 84), from `location`."
    ),
    dg.TableColumn(
        "address_type", "string", description="The address's type as the drop gives it (`RD04`)."
    ),
    ADDRESSBASE_SOURCE,
    dg.TableColumn("source_file", "string", description="The drop's file the row was read from."),
    FIRST_LETTER,
)
"""The AddressBase tables' columns: the drop's fields, validated, with the outcode."""


class AddressBaseDropConfig(RejectionLimit):
    source: str | None = Field(
        default=None,
        description="The drop: a folder of headerless CSV files (.csv or .csv.gz) or one file; "
        "by default the newest complete drop in the drops location.",
    )


@dg.asset(
    group_name="addressbase",
    kinds={"duckdb", "csv", "parquet"},
    pool=ADDRESSBASE_POOL,
    owners=OWNERS,
    metadata=table_schema(ADDRESSBASE_COLUMNS),
)
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
        try:
            summary = _read_drop(context, reader, store, staging, addressbase_source, files)
        except InputUnreadable as error:
            raise dg.Failure(f"AddressBase drop {addressbase_source} refused: {error}") from None
        rows_read = summary["valid_rows"] + summary["rejected_rows"]
        if not summary["valid_rows"] and summary["rejected_rows"] <= config.allowed(rows_read):
            _refuse_without_rows(store, staging, addressbase_source, summary)
        report = publish_checked_input(
            store,
            staging,
            asset_name="addressbase_cleaned_raw",
            what=f"AddressBase drop {addressbase_source}",
            summary=summary,
            rows=rows_read,
            limit=config,
            target=ADDRESSBASE_RAW,
            valid_rows=VALID_PARTITIONS,
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
            ROW_COUNT: summary["valid_rows"],
            "rows": summary["valid_rows"],
            "rejected_rows": summary["rejected_rows"],
            "rejected_rows_allowed": config.allowed(rows_read),
            "rejected_report": dg.MetadataValue.path(report),
            "path": dg.MetadataValue.path(store.uri(ADDRESSBASE_RAW)),
        },
    )


UNIQUENESS_CHECK = dg.AssetCheckKey(addressbase_cleaned_raw.key, "uprns_are_unique")


def _no_repeated_uprns(instance: dg.DagsterInstance) -> bool:
    """True when the uniqueness check passed on the raw table there now: it passes only when
    no UPRN repeats at all, so no letter needs rewriting and its own scan can be spared."""
    evaluation = latest_evaluation(instance, UNIQUENESS_CHECK)
    return evaluation is not None and evaluation.passed


def _read_drop(
    context: dg.AssetExecutionContext,
    reader: DuckDBQueryEngine,
    store: LayerStore,
    staging: str,
    addressbase_source: str,
    files: list[str],
) -> dict[str, Any]:
    """Stage the drop's valid rows and its report of rejected rows; return its summary.

    The fast reading takes a clean drop whole. At the first line it cannot take as it stands,
    it declines, and the line-by-line reading names every rejected line.
    """
    valid_rows = staging + VALID_PARTITIONS
    try:
        write_drop_partitions(
            store, files, addressbase_source=addressbase_source, output=valid_rows
        )
    except DropNotReadFast as declined:
        context.log.info(f"reading the drop line by line, for {declined}")
        store.delete_prefix(valid_rows)
        summary = read_line_by_line(
            reader,
            files,
            addressbase_source=addressbase_source,
            output=store.uri_for_writing(valid_rows),
            rejects_output=store.uri_for_writing(staging + REJECTED_ROWS),
        )
    else:
        store.write_bytes(staging + REJECTED_ROWS, NO_REJECTED_ROWS)
        summary = {"lines": None, "rejected_rows": 0, "first_rejected": []}
    summary["valid_rows"] = rows_in(store, store.list_keys(valid_rows))
    if summary["lines"] is None:
        summary["lines"] = summary["valid_rows"]
    return summary


def _refuse_without_rows(
    store: LayerStore, staging: str, addressbase_source: str, summary: dict[str, Any]
) -> None:
    """Stop at the raw table when no address of the drop is kept (empty files, blank lines, or
    every row rejected and allowed to be), so nothing downstream runs on an empty table."""
    rejected = summary["rejected_rows"]
    if rejected:
        store.move(staging + REJECTED_ROWS, rejects_key("addressbase_cleaned_raw"))
    raise dg.Failure(
        f"AddressBase drop {addressbase_source} holds no address rows"
        + (f" (its {rejected} row(s) were all rejected)" if rejected else "")
    )


@letter_partitioned_asset(
    deps=[addressbase_cleaned_raw],
    group_name="addressbase",
    kinds={"duckdb", "parquet"},
    pool=ADDRESSBASE_POOL,
    owners=OWNERS,
    metadata={
        **table_schema(ADDRESSBASE_COLUMNS),
        **column_lineage(
            copied_from(addressbase_cleaned_raw.key, [c.name for c in ADDRESSBASE_COLUMNS])
        ),
    },
)
def addressbase_partitioned(
    context: dg.AssetExecutionContext, engine: QueryEngine, store: LayerStore
) -> dg.MaterializeResult:
    """Every address of the drop as parquet, one partition per postcode first letter, each
    UPRN once.

    Built only from a raw table whose uniqueness check passed, or warned of identical repeated
    rows: those are dropped here, so every UPRN is left once, which the checks downstream rely
    on. The raw table is already split by letter: a letter where no UPRN repeats is copied file
    by file, and only letters with a repeated UPRN are rewritten.
    """
    if not store.list_keys(ADDRESSBASE_RAW_TABLE.prefix):
        raise dg.Failure("addressbase_cleaned_raw has not been materialised yet")
    require_passed_checks(context, [UNIQUENESS_CHECK], refusing="not partitioning")
    raw = {"addressbase_cleaned_raw": ADDRESSBASE_RAW_TABLE.in_store(store)}
    letters = sorted(context.partition_keys)
    if _no_repeated_uprns(context.instance):
        rewritten = []
    else:
        repeated = engine.run(REPEATED_LETTERS_QUERY, {**raw, "letters": letters})
        rewritten = sorted(repeated.column("first_letter").to_pylist())

    def write(staging: str) -> None:
        if rewritten:
            output = store.uri_for_writing(staging)
            engine.run(PARTITIONED_QUERY, {**raw, "letters": rewritten, "output": output})

    rows = rebuild_letter_partitions(
        context,
        store,
        write=write,
        table_prefix=ADDRESSBASE_PARTITIONED,
        copied_from={
            letter: partition_prefix(ADDRESSBASE_RAW_TABLE.prefix, letter)
            for letter in letters
            if letter not in rewritten
        },
    )
    context.log.info(
        f"wrote {sum(rows.values())} addresses in {len(rows)} letter partition(s); "
        f"rewritten for repeated UPRNs: {', '.join(rewritten) or 'none'}"
    )
    report_letter_partitions(
        context,
        store,
        table_prefix=ADDRESSBASE_PARTITIONED,
        rows=rows,
        each={
            letter: {"rewritten_for_repeated_uprns": letter in rewritten}
            for letter in context.partition_keys
        },
    )
    return dg.MaterializeResult()
