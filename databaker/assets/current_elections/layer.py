"""The published current-elections layer: one parquet file per outcode."""

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
LAYER_COLUMNS = ["uprn", "address", "postcode", "addressbase_source", "ballot_ids", "outcode"]


@dg.asset(
    deps=[current_ballots_joined_to_address_base],
    group_name="current_elections",
    kinds={"parquet"},
)
def current_elections_parquet(
    context: dg.AssetExecutionContext, store: LayerStore
) -> dg.MaterializeResult:
    """The published lookup: ``<OUTCODE>.parquet`` per outcode, each address with its ballots."""
    require_passed_checks(
        context, [joined_has_single_addressbase_source, joined_uprns_match_addressbase]
    )
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
            "path": dg.MetadataValue.path(store.uri(LAYER)),
        }
    )
