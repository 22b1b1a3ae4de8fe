"""A layer's bake: written as a version of its own and compared with the published layer,
which it replaces only if its guard rails pass (``<layer>_version``)."""

import csv
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pyarrow as pa

from databaker.asset_records import latest_metadata
from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE, addressbase_partitioned
from databaker.catalog import OWNERS, ROW_COUNT
from databaker.check_gate import require_passed_checks
from databaker.concurrency import layer_pool
from databaker.layers.changed_lists import changed_lists_since
from databaker.layers.columns import outcode_files_metadata
from databaker.layers.diff import DIFF, EncodedRows, compare_versions
from databaker.layers.guard_rails import LayerConfig, RailInputs, rail_results
from databaker.layers.joined_addresses import AddressesOutOfStep
from databaker.layers.layer import Layer
from databaker.layers.outcode_files import EarlierFiles, write_outcode_files
from databaker.layers.overview import overview
from databaker.layers.versions import (
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
from databaker.markdown import short_version
from databaker.rejections import REJECTS_PREFIX, rejects_key
from databaker.resources import LayerStore

ADDRESSBASE_INPUT = "addressbase_cleaned_raw"
"""Every layer's first input, whose report of rejected rows each version keeps."""


def version_asset(
    layer: Layer, joined: dg.AssetsDefinition, joined_checks: list[dg.AssetChecksDefinition]
) -> dg.AssetsDefinition:
    """The layer's version asset: outcode files, manifest, diff and guard-rail verdicts."""
    config_class: type[LayerConfig] = layer.config

    @dg.asset(
        name=layer.version_asset_name,
        deps=[joined, addressbase_partitioned],
        group_name=layer.name,
        pool=layer_pool(layer.name),
        kinds={"parquet"},
        check_specs=[rail.spec(layer.version_asset_name, layer.config) for rail in layer.rails],
        owners=OWNERS,
        metadata=outcode_files_metadata(
            layer, joined.key, addresses_from=addressbase_partitioned.key
        ),
        description=f"This bake of the {layer.name} layer under `versions/`, with its manifest "
        f"and its diff against the published layer; its guard rails are blocking checks.",
    )
    def version(
        context: dg.AssetExecutionContext, config: config_class, store: LayerStore
    ) -> dg.MaterializeResult:
        completed = complete_interrupted_publish(store, layer.prefix)
        if completed:
            context.log.info(f"completed the interrupted publish of bake {completed.bake_id}")
        require_passed_checks(context, joined_checks, refusing="not baking")
        bake_id = new_bake_id(context.run.run_id)
        prefix = version_prefix(layer.prefix, bake_id)
        input_metadata = (
            latest_metadata(context.instance, layer.input.asset.key) if layer.input else {}
        )
        published = published_manifest(store, layer.prefix)
        earlier = _earlier_files(store, layer, published)
        changed = _changed_lists(store, layer, earlier)
        encoded = (
            EncodedRows(
                layer.ids_column, element_fields=layer.element_fields, not_needed=changed.keys()
            )
            if published
            else None
        )
        try:
            written = write_outcode_files(
                store,
                joined_prefix=layer.joined.prefix,
                addresses=ADDRESSBASE_PARTITIONED_TABLE.prefix,
                output_prefix=prefix,
                columns=layer.columns,
                ids_column=layer.ids_column,
                element_ids=layer.element_ids,
                element_fields=layer.element_fields,
                earlier=earlier,
                changed_lists=changed,
                copy_reused=False,
                on_encoded=encoded.keep if encoded else None,
            )
            written.keep(store, prefix)
            manifest = Manifest(
                bake_id=bake_id,
                created=datetime.now(UTC).isoformat(timespec="seconds"),
                addressbase_source=", ".join(written.sources),
                input_version=str(input_metadata.get(layer.input_version_key, "unknown")),
                input_as_of=_input_as_of(layer, input_metadata),
                rows=written.rows,
                rows_with_ids=written.rows_with_ids,
                outcodes=written.outcodes,
                empty_outcodes=written.empty_outcodes,
                files=written.files,
                rejected_rows=_keep_rejection_reports(store, layer, prefix),
                addresses_per_id=written.addresses_per_id,
                held_by=_held_by(published, written.reused_files),
            )
            diff, changes = compare_versions(
                store,
                before=published,
                before_prefix=_published_files(store, layer, published),
                after=manifest,
                after_prefix=prefix,
                ids_column=layer.ids_column,
                element_ids=layer.element_ids,
                element_fields=layer.element_fields,
                element_kinds=layer.element_kinds,
                encoded=encoded,
                changed_lists=changed,
            )
            del encoded, changed
            rails = RailInputs(
                diff=diff,
                ids_named=layer.input.ids_named(store, input_metadata) if layer.input else set(),
                input_changed=_input_changed(published, manifest),
                today=datetime.now(UTC).date(),
                addresses_per_id=manifest.addresses_per_id,
            )
            checks = rail_results(layer.rails, rails, config, asset=layer.version_asset_name)
            store.write_bytes(prefix + DIFF, diff.to_json())
            write_verdicts(
                store, layer.prefix, bake_id, {c.check_name: _refused(c) for c in checks}
            )
            write_manifest(store, layer.prefix, manifest)
        except AddressesOutOfStep as error:
            store.delete_prefix(prefix)
            raise dg.Failure(f"not baking: {error}") from None
        except BaseException:
            store.delete_prefix(prefix)
            raise
        pruned = prune_versions(store, layer.prefix, keep=config.kept_versions)
        context.log.info(
            f"bake {bake_id}: {written.outcodes} outcode files ({written.empty_outcodes} empty, "
            f"{written.reused} unchanged since the published bake, left where it holds them); "
            f"{written.letters_kept} of {len(written.letters)} letters unchanged since the "
            f"published bake and not read, {written.letters_in_part} changed in part (only "
            f"the outcodes whose rows changed derived; {written.letters_from_earlier_files} of "
            f"them from the published bake's files and the lists that changed, not read); "
            f"{diff.addresses_changed} addresses' {layer.ids_column} changed against "
            f"{diff.baseline or 'nothing published'}; pruned {len(pruned)} old version(s)"
        )
        label = layer.id_label.replace(" ", "_")
        pictures = overview(
            context.log,
            store,
            layer,
            written,
            rails.ids_named,
            diff,
            changes,
            version=prefix,
            earlier=version_prefix(layer.prefix, published.bake_id) if published else None,
        )
        return dg.MaterializeResult(
            metadata={
                "bake_id": bake_id,
                "baseline": diff.baseline or "",
                ROW_COUNT: written.rows_in_files,
                "addresses": written.rows,
                f"addresses_with_{label}s": written.rows_with_ids,
                "outcodes": written.outcodes,
                "empty_outcodes": written.empty_outcodes,
                "addresses_changed": diff.addresses_changed,
                f"{label}s_appearing": len(diff.ids_appearing),
                f"{label}s_disappearing": len(diff.ids_disappearing),
                "diff": dg.MetadataValue.md(diff.markdown(id_label=layer.id_label)),
                "addressbase_source": manifest.addressbase_source,
                layer.input_version_key: short_version(manifest.input_version),
                "version": dg.MetadataValue.path(store.uri(prefix)),
                "manifest": dg.MetadataValue.path(store.uri(prefix + MANIFEST)),
                **bake_files(store, prefix, manifest),
                **pictures,
            },
            check_results=checks,
        )

    return version


def bake_files(store: LayerStore, version: str, manifest: Manifest) -> dict[str, dg.MetadataValue]:
    """Links to what a kept bake holds beside its outcode files: its diff against the layer it
    was compared with, and the inputs' reports of rejected rows."""
    return {
        "diff_json": dg.MetadataValue.path(store.uri(version + DIFF)),
        **{
            f"rejected_report_{asset}": dg.MetadataValue.path(
                store.uri(version + rejects_key(asset))
            )
            for asset in manifest.rejected_rows
        },
    }


def _refused(check: dg.AssetCheckResult) -> bool:
    return not check.passed and check.severity == dg.AssetCheckSeverity.ERROR


def _input_as_of(layer: Layer, input_metadata: Mapping[str, Any]) -> str:
    """The date the layer's input was read as of, for an input read so."""
    if layer.input is None or layer.input.as_of_key is None:
        return ""
    return str(input_metadata.get(layer.input.as_of_key, ""))


def _input_changed(published: Manifest | None, manifest: Manifest) -> bool:
    """Whether the input differs from the published bake's, in content or in the date it was
    read as of; an unknown version (no record of the input's materialisation) counts as
    changed."""
    versions = {published.input_version if published else "unknown", manifest.input_version}
    as_of_moved = published is not None and published.input_as_of != manifest.input_as_of
    return len(versions) > 1 or "unknown" in versions or as_of_moved


def _published_files(store: LayerStore, layer: Layer, published: Manifest | None) -> str:
    """Where the published version's files are read from: its own version when it holds them
    all, else the stable path, which matches the published manifest by now (the version step
    completes an interrupted publish before anything else)."""
    if published is None or published.held_by:
        return layer.prefix
    kept = version_prefix(layer.prefix, published.bake_id)
    return kept if store.exists(kept + MANIFEST) else layer.prefix


def _held_by(published: Manifest | None, reused: tuple[str, ...]) -> dict[str, str]:
    """Where the files reused from the published bake are: wherever it has them."""
    if published is None:
        return {}
    return {name: published.held_by.get(name, published.bake_id) for name in reused}


def _earlier_files(
    store: LayerStore, layer: Layer, published: Manifest | None
) -> EarlierFiles | None:
    """The published bake's own version, whose files a bake whose rows are the same reuses
    (and whose letters' summaries stand for the joined letters that did not change), with
    where it holds those it names elsewhere."""
    if published is None:
        return None
    held_at = {name: version_prefix(layer.prefix, bake) for name, bake in published.held_by.items()}
    return EarlierFiles.kept(
        store, version_prefix(layer.prefix, published.bake_id), published.files, held_at
    )


def _changed_lists(
    store: LayerStore, layer: Layer, earlier: EarlierFiles | None
) -> dict[str, pa.Table]:
    """The rows of each joined letter whose lists changed since the published bake read it,
    where the letter keeps them: what the letter's files are derived from, with the published
    bake's, and what the diff counts, instead of reading the letter and its files."""
    if earlier is None or earlier.letters is None:
        return {}
    tokens = {letter: read.token for letter, read in earlier.letters.letters.items() if read.token}
    return changed_lists_since(store, layer.joined.prefix, tokens)


def _keep_rejection_reports(store: LayerStore, layer: Layer, version: str) -> dict[str, int]:
    """Copy each input's report of rejected rows into the version; return how many rows each
    input rejected."""
    counts = {}
    reports = set(store.list_keys(REJECTS_PREFIX))
    for asset_name in (ADDRESSBASE_INPUT, *([layer.input.asset_name] if layer.input else [])):
        key = rejects_key(asset_name)
        if key not in reports:
            continue
        store.copy(key, f"{version}{key}")
        rows = csv.DictReader(io.StringIO(store.read_bytes(key).decode("utf-8")))
        # A report may also list rows skipped on purpose (the ballots' without a geography).
        counts[asset_name] = sum(row.get("status", "rejected") == "rejected" for row in rows)
    return counts
