"""A published layer: one parquet file per outcode at ``<layer>_parquet/``, which consumers
read; the latest version, once its guard rails have passed."""

from typing import Any

import dagster as dg

from databaker.asset_records import latest_metadata
from databaker.catalog import OWNERS, ROW_COUNT
from databaker.check_gate import require_passed_checks
from databaker.concurrency import layer_pool
from databaker.layers.columns import outcode_files_metadata
from databaker.layers.layer import Layer
from databaker.layers.overview import COVERAGE_MAP
from databaker.layers.version import bake_files
from databaker.layers.versions import (
    MANIFEST,
    Manifest,
    publish,
    published_manifest,
    version_prefix,
)
from databaker.resources import LayerStore
from databaker.staging import rows_in


def published_asset(layer: Layer, version: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The layer's published asset, publishing the latest bake over the stable path as
    :mod:`databaker.layers.versions` describes."""
    rails = [rail.key(layer.version_asset_name) for rail in layer.rails]
    label = layer.id_label.replace(" ", "_")

    @dg.asset(
        name=layer.published_asset_name,
        deps=[version],
        group_name=layer.name,
        pool=layer_pool(layer.name),
        kinds={"parquet"},
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=layer.freshness),
        owners=OWNERS,
        metadata=outcode_files_metadata(layer, version.key, outcode_from="outcode"),
        description=f"The published lookup: `<OUTCODE>.parquet` per outcode, each address with "
        f"its `{layer.ids_column}`. The latest bake of `{layer.version_asset_name}`, "
        f"published once its guard rails have passed.",
    )
    def published(context: dg.AssetExecutionContext, store: LayerStore) -> dg.MaterializeResult:
        require_passed_checks(context, rails)
        bake = _latest_bake(context.instance, version.key)
        current = published_manifest(store, layer.prefix)
        if (current.bake_id if current else "") not in (bake["baseline"], bake["bake_id"]):
            raise dg.Failure(
                f"bake {bake['bake_id']} was compared with published bake "
                f"{bake['baseline'] or '(none)'}, but "
                f"{current.bake_id if current else 'nothing'} is published now: bake again to "
                f"compare with it"
            )
        manifest = Manifest.from_json(
            store.read_bytes(version_prefix(layer.prefix, bake["bake_id"]) + MANIFEST)
        )
        done = publish(store, layer.prefix, manifest.bake_id)
        context.log.info(
            f"published bake {manifest.bake_id}: {done.written} changed, "
            f"{done.unchanged} unchanged, deleted {len(done.deleted)} stale"
        )
        return dg.MaterializeResult(
            metadata={
                "bake_id": manifest.bake_id,
                ROW_COUNT: _rows_in_files(store, layer, manifest, bake["rows_in_files"]),
                "addresses": manifest.rows,
                f"addresses_with_{label}s": manifest.rows_with_ids,
                "outcodes": manifest.outcodes,
                "empty_outcodes": manifest.empty_outcodes,
                "outcode_files_written": done.written,
                "outcode_files_unchanged": done.unchanged,
                "stale_outcodes_deleted": len(done.deleted),
                "addressbase_source": manifest.addressbase_source,
                layer.input_version_key: manifest.input_version,
                **(
                    {layer.input.as_of_key: manifest.input_as_of}
                    if layer.input and layer.input.as_of_key
                    else {}
                ),
                "version": dg.MetadataValue.path(
                    store.uri(version_prefix(layer.prefix, manifest.bake_id))
                ),
                "path": dg.MetadataValue.path(store.uri(layer.prefix)),
                "manifest": dg.MetadataValue.path(store.uri(layer.prefix + MANIFEST)),
                **bake_files(store, version_prefix(layer.prefix, manifest.bake_id), manifest),
                # The bake's picture, drawn by the version step, shown where the layer is.
                **(
                    {COVERAGE_MAP: dg.MetadataValue.md(bake["coverage_map"])}
                    if bake["coverage_map"]
                    else {}
                ),
            }
        )

    return published


def _latest_bake(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, Any]:
    metadata = latest_metadata(instance, key)
    if not metadata:
        raise dg.Failure(f"{key.to_user_string()} has not been materialised: nothing to publish")
    bake = {name: str(metadata[name]) for name in ("bake_id", "baseline")}
    return {
        **bake,
        "rows_in_files": metadata.get(ROW_COUNT),
        "coverage_map": metadata.get(COVERAGE_MAP),
    }


def _rows_in_files(store: LayerStore, layer: Layer, manifest: Manifest, counted: int | None) -> int:
    """The rows of the published files: as the bake counted them, or, for a bake whose count
    was not recorded (by an older release), from the files' footers."""
    if counted is not None:
        return counted
    return rows_in(store, [layer.prefix + name for name in manifest.files])
