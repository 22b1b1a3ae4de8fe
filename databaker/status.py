"""Whether every published layer is fresh and built from checked tables (``databaker status``).

Read from the Dagster instance the daemon writes to: a layer is healthy when it was
materialised within its freshness window and every check on the tables it is built from
passed (or only warned) after those tables were last materialised. Given the layer store, it
also reads the layer itself: a layer whose publish was interrupted (or is running now) mixes
two bakes, and is not healthy until the publish completes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from databaker.assets import LAYERS
from databaker.check_gate import Checks, check_keys, check_problems
from databaker.layers import Layer
from databaker.layers.build import layer_definitions
from databaker.layers.versions import interrupted_publish
from databaker.resources import LayerStore


@dataclass(frozen=True)
class PublishedLayer:
    asset: dg.AssetsDefinition
    checks: Checks
    fail_window: timedelta
    prefix: str
    """Where the layer is published in the store."""
    input_version_key: str
    """The metadata key of the input's version the layer was baked from."""
    as_of_key: str | None = None
    """The metadata key of the date the input was read as of, for an input read so."""


def published_layer(layer: Layer) -> PublishedLayer:
    built = layer_definitions(layer)
    return PublishedLayer(
        built.published,
        built.published_checks,
        layer.freshness,
        layer.prefix,
        layer.input_version_key,
        layer.input.as_of_key if layer.input else None,
    )


@dataclass(frozen=True)
class LayerStatus:
    name: str
    materialised_at: datetime | None
    addressbase_source: str
    input_version_key: str
    input_version: str
    freshness_problem: str | None
    checks: int
    check_problems: list[str]
    publishing_problem: str | None = None
    as_of: tuple[str, str] | None = None
    """For a layer whose input is read as of a date: the metadata key and the date."""

    @property
    def problems(self) -> list[str]:
        problems = [self.freshness_problem, self.publishing_problem, *self.check_problems]
        return [p for p in problems if p]

    @property
    def healthy(self) -> bool:
        return not self.problems


def layer_statuses(
    instance: dg.DagsterInstance,
    now: datetime | None = None,
    store: LayerStore | None = None,
    layers: tuple[Layer, ...] = LAYERS,
) -> list[LayerStatus]:
    now = now or datetime.now(UTC)
    return [_status(instance, published_layer(layer), now, store) for layer in layers]


def _publishing_problem(store: LayerStore, layer: PublishedLayer) -> str | None:
    marker = interrupted_publish(store, layer.prefix)
    if marker is None:
        return None
    return (
        f"mid-publish since {marker.started}: the layer mixes {marker.mixing} (interrupted, or "
        f"running now); the next bake completes it, or `databaker rollback --to <bake id>` "
        f"replaces it"
    )


def _status(
    instance: dg.DagsterInstance, layer: PublishedLayer, now: datetime, store: LayerStore | None
) -> LayerStatus:
    key = layer.asset.key
    event = instance.get_latest_materialization_event(key)
    freshness_problem = None
    materialised_at = None
    metadata: dict = {}
    if event is None or event.asset_materialization is None:
        freshness_problem = "never materialised"
    else:
        materialised_at = datetime.fromtimestamp(event.timestamp, UTC)
        metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        age = now - materialised_at
        if age > layer.fail_window:
            freshness_problem = (
                f"stale: materialised {_hours(age)} ago, allowed {_hours(layer.fail_window)}"
            )
    return LayerStatus(
        name=key.to_user_string(),
        materialised_at=materialised_at,
        addressbase_source=str(metadata.get("addressbase_source", "unknown")),
        input_version_key=layer.input_version_key,
        input_version=str(metadata.get(layer.input_version_key, "unknown")),
        freshness_problem=freshness_problem,
        checks=len(check_keys(layer.checks)),
        check_problems=check_problems(instance, layer.checks),
        publishing_problem=_publishing_problem(store, layer) if store else None,
        as_of=(layer.as_of_key, str(metadata.get(layer.as_of_key, "unknown")))
        if layer.as_of_key
        else None,
    )


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"
