"""The joined table: every address with the IDs of the ballots whose area contains it."""

import dagster as dg

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE, addressbase_partitioned
from databaker.assets.current_ballots import CURRENT_BALLOTS_TABLE, current_ballots
from databaker.partitions import first_letter_partitions, one_run_per_backfill
from databaker.resources import ContainsJoin, LayerStore, QueryEngine, SqlQuery, Table
from databaker.staging import partition_prefix, query_writer, rebuild_letter_partitions

JOINED_TABLE = Table.beside(__file__, "current_ballots_joined_to_address_base")
JOINED = JOINED_TABLE.prefix

JOIN_QUERY = ContainsJoin(
    sql=SqlQuery.beside(__file__, "current_ballots_joined_to_address_base"),
    points="addressbase_partitioned",
    areas="current_ballots",
    letters="letters",
    carried=("uprn", "address", "postcode", "addressbase_source"),
    area_id="election_id",
    ids_column="ballot_ids",
    repeating=("addressbase_source",),
)


@dg.asset(
    deps=[addressbase_partitioned, current_ballots],
    partitions_def=first_letter_partitions,
    backfill_policy=one_run_per_backfill,
    group_name="current_elections",
    kinds={"duckdb", "parquet"},
)
def current_ballots_joined_to_address_base(
    context: dg.AssetExecutionContext, engine: QueryEngine, store: LayerStore
) -> dg.MaterializeResult:
    """Every address once, with the sorted IDs of the ballots whose area contains it."""
    if not store.list_keys(CURRENT_BALLOTS_TABLE.prefix):
        raise dg.Failure("current_ballots has not been materialised yet")
    letters = sorted(
        letter
        for letter in context.partition_keys
        if store.list_keys(partition_prefix(ADDRESSBASE_PARTITIONED_TABLE.prefix, letter))
    )
    inputs = {
        "addressbase_partitioned": ADDRESSBASE_PARTITIONED_TABLE.in_store(store),
        "letters": letters,
        "current_ballots": CURRENT_BALLOTS_TABLE.in_store(store),
    }
    rows = rebuild_letter_partitions(
        context,
        store,
        write=query_writer(engine, store, JOIN_QUERY, inputs) if letters else lambda _: None,
        table_prefix=JOINED,
    )
    context.log.info(f"joined {sum(rows.values())} addresses in {len(rows)} letter partition(s)")
    return dg.MaterializeResult(
        metadata={
            "rows": sum(rows.values()),
            "rows_per_letter": dg.MetadataValue.json(rows),
            "path": dg.MetadataValue.path(store.uri(JOINED)),
        }
    )
