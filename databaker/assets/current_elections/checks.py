"""Checks that stop the current-elections layer from being written from a bad joined table."""

import dagster as dg

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.assets.current_elections.joined import (
    JOINED_TABLE,
    current_ballots_joined_to_address_base,
)
from databaker.resources import LayerStore, QueryEngine, SqlQuery

SOURCES_QUERY = SqlQuery.beside(__file__, "addressbase_source_count")
UPRN_SETS_QUERY = SqlQuery.beside(__file__, "uprn_sets")
UPRN_DIFFERENCES_QUERY = SqlQuery.beside(__file__, "uprn_set_differences")
SAMPLE_SIZE = 10


def _has_rows(store: LayerStore, prefix: str) -> bool:
    return bool(store.list_keys(prefix))


@dg.asset_check(
    asset=current_ballots_joined_to_address_base,
    name="single_addressbase_source",
    blocking=True,
)
def joined_has_single_addressbase_source(
    engine: QueryEngine, store: LayerStore
) -> dg.AssetCheckResult:
    """The whole joined table comes from exactly one AddressBase drop."""
    if not _has_rows(store, JOINED_TABLE.prefix):
        return dg.AssetCheckResult(passed=False, description="the joined table has no rows")
    found = engine.run(
        SOURCES_QUERY, {"joined": JOINED_TABLE.in_store(store), "sample_size": SAMPLE_SIZE}
    ).to_pylist()[0]
    passed = found["sources"] == 1 and found["rows_without_source"] == 0
    return dg.AssetCheckResult(
        passed=passed,
        description=None
        if passed
        else f"{found['sources']} AddressBase sources: {', '.join(found['source_sample'])}",
        metadata={
            "addressbase_sources": found["sources"],
            "sources": dg.MetadataValue.json(found["source_sample"]),
            "rows_without_source": found["rows_without_source"],
        },
    )


@dg.asset_check(
    asset=current_ballots_joined_to_address_base,
    name="uprns_match_addressbase",
    blocking=True,
)
def joined_uprns_match_addressbase(engine: QueryEngine, store: LayerStore) -> dg.AssetCheckResult:
    """The joined table holds each UPRN of the partitioned AddressBase exactly once, no more.

    Equal row counts and checksums make the two UPRN multisets equal; the partitioned table
    holds each UPRN once by construction (see ``addressbase_partitioned``), so the joined one
    does too.
    """
    tables = {"addressbase_partitioned": ADDRESSBASE_PARTITIONED_TABLE, "joined": JOINED_TABLE}
    empty = [t.prefix for t in tables.values() if not _has_rows(store, t.prefix)]
    if empty:
        return dg.AssetCheckResult(
            passed=False, description=f"nothing to compare: no files under {', '.join(empty)}"
        )
    refs = {name: table.in_store(store) for name, table in tables.items()}
    sets = engine.run(UPRN_SETS_QUERY, refs).to_pylist()[0]
    metadata: dict = dict(sets)
    passed = (
        sets["addressbase_rows"] == sets["joined_rows"]
        and sets["addressbase_checksum"] == sets["joined_checksum"]
    )
    description = None
    if not passed:
        differences = engine.run(
            UPRN_DIFFERENCES_QUERY,
            {**refs, "sample_size": SAMPLE_SIZE},
        ).to_pylist()[0]
        metadata.update({k: dg.MetadataValue.json(v) for k, v in differences.items()})
        description = (
            f"joined rows {sets['joined_rows']}, AddressBase rows {sets['addressbase_rows']}; "
            f"missing from joined: "
            f"{differences['missing_from_joined']}; not in AddressBase: "
            f"{differences['not_in_addressbase']}"
        )
    return dg.AssetCheckResult(passed=passed, description=description, metadata=metadata)
