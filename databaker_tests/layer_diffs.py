"""The diff a version's own must equal, found the slow way: every changed file of both sides
read and compared."""

from __future__ import annotations

from databaker.layers.diff import DIFF, LayerDiff, diff_versions
from databaker.layers.layer import Layer
from databaker.layers.versions import kept_versions, published_manifest, version_prefix
from databaker.resources import LayerStore


def published_diff(store: LayerStore, layer: Layer) -> LayerDiff:
    """The diff the published bake's version keeps."""
    published = published_manifest(store, layer.prefix)
    return LayerDiff.from_json(
        store.read_bytes(version_prefix(layer.prefix, published.bake_id) + DIFF)
    )


def diff_of_files(store: LayerStore, layer: Layer, before_bake: str) -> LayerDiff:
    """The published bake against the bake ``before_bake``, whose version holds its every file
    (a first bake's does), from their files alone."""
    after = published_manifest(store, layer.prefix)
    (before,) = (m for m in kept_versions(store, layer.prefix) if m.bake_id == before_bake)
    before_prefix = version_prefix(layer.prefix, before_bake)
    held = {key.rpartition("/")[2] for key in store.list_keys(before_prefix)}
    assert set(before.files) <= held, "the earlier version holds its files"
    return diff_versions(
        store,
        before=before,
        before_prefix=before_prefix,
        after=after,
        after_prefix=layer.prefix,
        ids_column=layer.ids_column,
        element_ids=layer.element_ids,
        element_fields=layer.element_fields,
        element_kinds=layer.element_kinds,
    )
