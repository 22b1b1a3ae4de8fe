"""This bake of the current-elections layer: written as a version of its own and compared with
the published layer, which it replaces only if its guard rails pass."""

import csv
import io
from datetime import UTC, datetime

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from databaker.asset_records import latest_metadata
from databaker.assets.current_ballots import CURRENT_BALLOTS, current_ballots
from databaker.assets.current_elections.checks import (
    joined_has_single_addressbase_source,
    joined_uprns_match_addressbase,
)
from databaker.assets.current_elections.guard_rails import RAILS, GuardRails, guard_rail_results
from databaker.assets.current_elections.joined import JOINED, current_ballots_joined_to_address_base
from databaker.check_gate import require_passed_checks
from databaker.layer_diff import DIFF, diff_versions
from databaker.layer_versions import (
    KEPT_VERSIONS,
    MANIFEST,
    Manifest,
    complete_interrupted_publish,
    new_bake_id,
    prune_versions,
    published_manifest,
    version_prefix,
    write_manifest,
    write_verdicts,
)
from databaker.outcode_files import write_outcode_files
from databaker.rejections import REJECTS_PREFIX, rejects_key
from databaker.resources import LayerStore

LAYER = "current_elections_parquet/"
LAYER_COLUMNS = ["uprn", "address", "postcode", "addressbase_source", "ballot_ids", "outcode"]
IDS_COLUMN = "ballot_ids"
JOINED_CHECKS = [joined_has_single_addressbase_source, joined_uprns_match_addressbase]
REPORTING_INPUTS = ("addressbase_cleaned_raw", "current_ballots")
"""The assets whose reports of rejected rows a version keeps."""


class VersionConfig(GuardRails):
    kept_versions: int = Field(
        default=KEPT_VERSIONS,
        ge=1,
        description="Bakes kept under versions/ for rollback (the published one is kept too).",
    )


@dg.asset(
    deps=[current_ballots_joined_to_address_base],
    group_name="current_elections",
    kinds={"parquet"},
    check_specs=[rail.spec for rail in RAILS],
)
def current_elections_version(
    context: dg.AssetExecutionContext, config: VersionConfig, store: LayerStore
) -> dg.MaterializeResult:
    """This bake's outcode files under ``versions/``, with its manifest and its diff against
    the published layer."""
    completed = complete_interrupted_publish(store, LAYER)
    if completed:
        context.log.info(f"completed the interrupted publish of bake {completed.bake_id}")
    require_passed_checks(context, JOINED_CHECKS, refusing="not baking")
    bake_id = new_bake_id(context.run.run_id)
    version = version_prefix(LAYER, bake_id)
    try:
        written = write_outcode_files(
            store,
            joined_prefix=JOINED,
            output_prefix=version,
            columns=LAYER_COLUMNS,
            ids_column=IDS_COLUMN,
        )
        ballots = latest_metadata(context.instance, current_ballots.key)
        manifest = Manifest(
            bake_id=bake_id,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            addressbase_source=", ".join(written.sources),
            ballots_version=str(ballots.get("ballots_version", "unknown")),
            rows=written.rows,
            rows_with_ids=written.rows_with_ids,
            outcodes=written.outcodes,
            empty_outcodes=written.empty_outcodes,
            files=written.files,
            rejected_rows=_keep_rejection_reports(store, version),
            addresses_per_id=written.addresses_per_id,
        )
        published = published_manifest(store, LAYER)
        diff = diff_versions(
            store,
            before=published,
            before_prefix=_published_files(store, published),
            after=manifest,
            after_prefix=version,
            ids_column=IDS_COLUMN,
        )
        checks = guard_rail_results(
            diff,
            config,
            ballots_in_export=_ballots_in_export(store, ballots),
            ballots_changed=_ballots_changed(published, manifest),
            today=datetime.now(UTC).date(),
        )
        store.write_bytes(version + DIFF, diff.to_json())
        write_verdicts(store, LAYER, bake_id, {c.check_name: _refused(c) for c in checks})
        write_manifest(store, LAYER, manifest)
    except BaseException:
        store.delete_prefix(version)
        raise
    pruned = prune_versions(store, LAYER, keep=config.kept_versions)
    context.log.info(
        f"bake {bake_id}: {written.outcodes} outcode files ({written.empty_outcodes} empty); "
        f"{diff.addresses_changed} addresses' ballots changed against "
        f"{diff.baseline or 'nothing published'}; pruned {len(pruned)} old version(s)"
    )
    return dg.MaterializeResult(
        metadata={
            "bake_id": bake_id,
            "baseline": diff.baseline or "",
            "addresses": written.rows,
            "addresses_with_ballots": written.rows_with_ids,
            "outcodes": written.outcodes,
            "empty_outcodes": written.empty_outcodes,
            "addresses_changed": diff.addresses_changed,
            "ballots_appearing": len(diff.ids_appearing),
            "ballots_disappearing": len(diff.ids_disappearing),
            "diff": dg.MetadataValue.md(diff.markdown(id_label="ballot")),
            "addressbase_source": manifest.addressbase_source,
            "ballots_version": manifest.ballots_version,
            "version": dg.MetadataValue.path(store.uri(version)),
        },
        check_results=checks,
    )


def _refused(check: dg.AssetCheckResult) -> bool:
    return not check.passed and check.severity == dg.AssetCheckSeverity.ERROR


def _ballots_changed(published: Manifest | None, manifest: Manifest) -> bool:
    """Whether the ballots export differs from the published bake's; an unknown version
    (no record of the ballots' materialisation) counts as changed."""
    versions = {published.ballots_version if published else "unknown", manifest.ballots_version}
    return len(versions) > 1 or "unknown" in versions


def _published_files(store: LayerStore, published: Manifest | None) -> str:
    """Where the published version's files are read from: its own version (which matches its
    manifest even after an interrupted publish), else the stable path."""
    if published is None:
        return LAYER
    kept = version_prefix(LAYER, published.bake_id)
    return kept if store.list_keys(kept + MANIFEST) else LAYER


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


def _ballots_in_export(store: LayerStore, ballots: dict) -> set[str]:
    """Every ballot the export names: those with an area in the ballots table, and those whose
    every row was skipped or rejected (a broken export must not pass for a withdrawn ballot)."""
    with store.open_input(CURRENT_BALLOTS) as source:
        ids = pq.read_table(source, columns=["election_id"])["election_id"]
    return set(pc.unique(ids).to_pylist()) | set(ballots.get("ballots_without_area", []))
