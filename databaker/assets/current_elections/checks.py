"""Checks that stop the current-elections layer from being written from a bad joined table."""

import dagster as dg

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED
from databaker.assets.current_elections.joined import (
    JOINED,
    current_ballots_joined_to_address_base,
)
from databaker.resources import LayerStore, QueryEngine, SqlQuery

SOURCES_QUERY = SqlQuery.beside(__file__, "addressbase_source_count")
UPRN_SETS_QUERY = SqlQuery.beside(__file__, "uprn_sets")
UPRN_DIFFERENCES_QUERY = SqlQuery.beside(__file__, "uprn_set_differences")
SAMPLE_SIZE = 10


def _table_files(store: LayerStore, prefix: str) -> list[str]:
    return [store.uri(key) for key in store.list_keys(prefix) if key.endswith(".parquet")]


@dg.asset_check(
    asset=current_ballots_joined_to_address_base,
    name="single_addressbase_source",
    blocking=True,
)
def joined_has_single_addressbase_source(
    engine: QueryEngine, store: LayerStore
) -> dg.AssetCheckResult:
    """The whole joined table comes from exactly one AddressBase drop."""
    joined = _table_files(store, JOINED)
    if not joined:
        return dg.AssetCheckResult(passed=False, description="the joined table has no rows")
    found = engine.run(SOURCES_QUERY, {"joined": joined, "sample_size": SAMPLE_SIZE}).to_pylist()[0]
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
    """The joined table holds each UPRN of the partitioned AddressBase exactly once, no more."""
    addressbase = _table_files(store, ADDRESSBASE_PARTITIONED)
    joined = _table_files(store, JOINED)
    if not addressbase or not joined:
        return dg.AssetCheckResult(
            passed=False,
            description=f"nothing to compare: {len(addressbase)} AddressBase file(s), "
            f"{len(joined)} joined file(s)",
        )
    sets = engine.run(UPRN_SETS_QUERY, {"addressbase": addressbase, "joined": joined}).to_pylist()[
        0
    ]
    metadata: dict = dict(sets)
    passed = (
        sets["joined_rows"] == sets["joined_uprns"]
        and sets["addressbase_uprns"] == sets["joined_uprns"]
        and sets["addressbase_checksum"] == sets["joined_checksum"]
    )
    description = None
    if not passed:
        differences = engine.run(
            UPRN_DIFFERENCES_QUERY,
            {"addressbase": addressbase, "joined": joined, "sample_size": SAMPLE_SIZE},
        ).to_pylist()[0]
        metadata.update({k: dg.MetadataValue.json(v) for k, v in differences.items()})
        description = (
            f"joined rows {sets['joined_rows']}, joined UPRNs {sets['joined_uprns']}, "
            f"AddressBase UPRNs {sets['addressbase_uprns']}; missing from joined: "
            f"{differences['missing_from_joined']}; not in AddressBase: "
            f"{differences['not_in_addressbase']}"
        )
    return dg.AssetCheckResult(passed=passed, description=description, metadata=metadata)
