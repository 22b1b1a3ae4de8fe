"""The published current-elections layer: one parquet file per outcode."""

from datetime import timedelta

import dagster as dg

from databaker.asset_records import latest_metadata
from databaker.assets.current_elections.guard_rails import RAILS
from databaker.assets.current_elections.version import (
    JOINED_CHECKS,
    LAYER,
    current_elections_version,
)
from databaker.check_gate import require_passed_checks
from databaker.layer_versions import (
    MANIFEST,
    Manifest,
    publish,
    published_manifest,
    version_prefix,
)
from databaker.resources import LayerStore

FRESHNESS = timedelta(hours=26)
"""A nightly rebuild plus two hours' grace."""
LAYER_CHECKS = [*JOINED_CHECKS, *(rail.key for rail in RAILS)]
"""Every check a published bake has passed: on the joined table, then the guard rails."""


@dg.asset(
    deps=[current_elections_version],
    group_name="current_elections",
    kinds={"parquet"},
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=FRESHNESS),
)
def current_elections_parquet(
    context: dg.AssetExecutionContext, store: LayerStore
) -> dg.MaterializeResult:
    """The published lookup: ``<OUTCODE>.parquet`` per outcode, each address with its ballots.

    Publishes the latest bake (``current_elections_version``) over the stable path, as
    :mod:`databaker.layer_versions` describes, once its guard rails have passed.
    """
    require_passed_checks(context, [rail.key for rail in RAILS])
    bake = _latest_bake(context.instance)
    current = published_manifest(store, LAYER)
    if (current.bake_id if current else "") not in (bake["baseline"], bake["bake_id"]):
        raise dg.Failure(
            f"bake {bake['bake_id']} was compared with published bake "
            f"{bake['baseline'] or '(none)'}, but {current.bake_id if current else 'nothing'} "
            f"is published now: bake again to compare with it"
        )
    manifest = Manifest.from_json(
        store.read_bytes(version_prefix(LAYER, bake["bake_id"]) + MANIFEST)
    )
    published = publish(store, LAYER, manifest.bake_id)
    context.log.info(
        f"published bake {manifest.bake_id}: {published.written} changed, "
        f"{published.unchanged} unchanged, deleted {len(published.deleted)} stale"
    )
    return dg.MaterializeResult(
        metadata={
            "bake_id": manifest.bake_id,
            "addresses": manifest.rows,
            "addresses_with_ballots": manifest.rows_with_ids,
            "outcodes": manifest.outcodes,
            "empty_outcodes": manifest.empty_outcodes,
            "outcode_files_written": published.written,
            "outcode_files_unchanged": published.unchanged,
            "stale_outcodes_deleted": len(published.deleted),
            "addressbase_source": manifest.addressbase_source,
            "ballots_version": manifest.ballots_version,
            "version": dg.MetadataValue.path(store.uri(version_prefix(LAYER, manifest.bake_id))),
            "path": dg.MetadataValue.path(store.uri(LAYER)),
        }
    )


def _latest_bake(instance: dg.DagsterInstance) -> dict[str, str]:
    metadata = latest_metadata(instance, current_elections_version.key)
    if not metadata:
        raise dg.Failure("current_elections_version has not been materialised: nothing to publish")
    return {name: str(metadata[name]) for name in ("bake_id", "baseline")}
