"""The published current-elections layer: one parquet file per outcode."""

from datetime import timedelta

import dagster as dg

from databaker.assets.current_elections.checks import (
    joined_has_single_addressbase_source,
    joined_uprns_match_addressbase,
)
from databaker.assets.current_elections.joined import JOINED, current_ballots_joined_to_address_base
from databaker.check_gate import require_passed_checks
from databaker.outcode_files import publish_outcode_files
from databaker.resources import LayerStore
from databaker.staging import staging_area

LAYER = "current_elections_parquet/"
FRESHNESS = timedelta(hours=26)
"""A nightly rebuild plus two hours' grace."""
LAYER_CHECKS = [joined_has_single_addressbase_source, joined_uprns_match_addressbase]
LAYER_COLUMNS = ["uprn", "address", "postcode", "addressbase_source", "ballot_ids", "outcode"]


@dg.asset(
    deps=[current_ballots_joined_to_address_base],
    group_name="current_elections",
    kinds={"parquet"},
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=FRESHNESS),
)
def current_elections_parquet(
    context: dg.AssetExecutionContext, store: LayerStore
) -> dg.MaterializeResult:
    """The published lookup: ``<OUTCODE>.parquet`` per outcode, each address with its ballots."""
    require_passed_checks(context, LAYER_CHECKS)
    with staging_area(store, context) as staging:
        published = publish_outcode_files(
            store,
            joined_prefix=JOINED,
            layer_prefix=LAYER,
            staging_prefix=staging,
            columns=LAYER_COLUMNS,
            ids_column="ballot_ids",
        )
    context.log.info(
        f"wrote {published.outcodes} outcode files ({published.empty_outcodes} empty), "
        f"deleted {len(published.deleted)} stale"
    )
    return dg.MaterializeResult(
        metadata={
            "addresses": published.rows,
            "addresses_with_ballots": published.rows_with_ids,
            "outcodes": published.outcodes,
            "empty_outcodes": published.empty_outcodes,
            "stale_outcodes_deleted": len(published.deleted),
            "addressbase_source": ", ".join(published.sources),
            "ballots_version": _ballots_version(context.instance),
            "path": dg.MetadataValue.path(store.uri(LAYER)),
        }
    )


def _ballots_version(instance: dg.DagsterInstance) -> str:
    """The version of the ballots export the joined table was built from (the latest one)."""
    event = instance.get_latest_materialization_event(dg.AssetKey("current_ballots"))
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    version = metadata.get("ballots_version")
    return str(version.value) if version is not None else "unknown"
