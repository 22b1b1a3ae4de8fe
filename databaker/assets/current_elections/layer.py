"""The published current-elections layer: one parquet file per outcode."""

import csv
import io
from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field

from databaker.assets.current_elections.checks import (
    joined_has_single_addressbase_source,
    joined_uprns_match_addressbase,
)
from databaker.assets.current_elections.joined import JOINED, current_ballots_joined_to_address_base
from databaker.check_gate import require_passed_checks
from databaker.layer_versions import (
    KEPT_VERSIONS,
    Manifest,
    new_bake_id,
    prune_versions,
    publish,
    version_prefix,
    write_manifest,
)
from databaker.outcode_files import write_outcode_files
from databaker.rejections import REJECTS_PREFIX, rejects_key
from databaker.resources import LayerStore

LAYER = "current_elections_parquet/"
FRESHNESS = timedelta(hours=26)
"""A nightly rebuild plus two hours' grace."""
LAYER_CHECKS = [joined_has_single_addressbase_source, joined_uprns_match_addressbase]
REPORTING_INPUTS = ("addressbase_cleaned_raw", "current_ballots")
"""The assets whose reports of rejected rows a version keeps."""
LAYER_COLUMNS = ["uprn", "address", "postcode", "addressbase_source", "ballot_ids", "outcode"]


class LayerConfig(dg.Config):
    kept_versions: int = Field(
        default=KEPT_VERSIONS, ge=1, description="Bakes kept under versions/ for rollback."
    )


@dg.asset(
    deps=[current_ballots_joined_to_address_base],
    group_name="current_elections",
    kinds={"parquet"},
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=FRESHNESS),
)
def current_elections_parquet(
    context: dg.AssetExecutionContext, config: LayerConfig, store: LayerStore
) -> dg.MaterializeResult:
    """The published lookup: ``<OUTCODE>.parquet`` per outcode, each address with its ballots.

    The bake is written as a version of its own, then published over the stable path (see
    :mod:`databaker.layer_versions`); older versions stay for rollback.
    """
    require_passed_checks(context, LAYER_CHECKS)
    bake_id = new_bake_id(context.run.run_id)
    try:
        written = write_outcode_files(
            store,
            joined_prefix=JOINED,
            output_prefix=version_prefix(LAYER, bake_id),
            columns=LAYER_COLUMNS,
            ids_column="ballot_ids",
        )
    except BaseException:
        store.delete_prefix(version_prefix(LAYER, bake_id))
        raise
    rejected = _keep_rejection_reports(store, version_prefix(LAYER, bake_id))
    manifest = Manifest(
        bake_id=bake_id,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        addressbase_source=", ".join(written.sources),
        ballots_version=_ballots_version(context.instance),
        rows=written.rows,
        rows_with_ids=written.rows_with_ids,
        outcodes=written.outcodes,
        empty_outcodes=written.empty_outcodes,
        files=written.files,
        rejected_rows=rejected,
    )
    write_manifest(store, LAYER, manifest)
    published = publish(store, LAYER, bake_id)
    pruned = prune_versions(store, LAYER, keep=config.kept_versions)
    context.log.info(
        f"bake {bake_id}: {written.outcodes} outcode files ({written.empty_outcodes} empty); "
        f"published {published.written} changed, {published.unchanged} unchanged, "
        f"deleted {len(published.deleted)} stale; pruned {len(pruned)} old version(s)"
    )
    return dg.MaterializeResult(
        metadata={
            "bake_id": bake_id,
            "addresses": written.rows,
            "addresses_with_ballots": written.rows_with_ids,
            "outcodes": written.outcodes,
            "empty_outcodes": written.empty_outcodes,
            "outcode_files_written": published.written,
            "outcode_files_unchanged": published.unchanged,
            "stale_outcodes_deleted": len(published.deleted),
            "addressbase_source": manifest.addressbase_source,
            "ballots_version": manifest.ballots_version,
            "version": dg.MetadataValue.path(store.uri(version_prefix(LAYER, bake_id))),
            "path": dg.MetadataValue.path(store.uri(LAYER)),
        }
    )


def _keep_rejection_reports(store: LayerStore, version: str) -> dict[str, int]:
    """Copy each input's report of rejected rows into the version; return how many rows each
    input rejected."""
    counts = {}
    reports = set(store.list_keys(REJECTS_PREFIX))
    for asset_name in REPORTING_INPUTS:
        key = rejects_key(asset_name)
        if key not in reports:
            continue
        store.copy(key, f"{version}{key}")
        rows = csv.DictReader(io.StringIO(store.read_bytes(key).decode("utf-8")))
        # The ballots report also lists the rows skipped for want of a geography.
        counts[asset_name] = sum(row.get("status", "rejected") == "rejected" for row in rows)
    return counts


def _ballots_version(instance: dg.DagsterInstance) -> str:
    """The version of the ballots export the joined table was built from (the latest one)."""
    event = instance.get_latest_materialization_event(dg.AssetKey("current_ballots"))
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    version = metadata.get("ballots_version")
    return str(version.value) if version is not None else "unknown"
