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

from databaker.assets.addressbase.checks import addressbase_uprns_are_unique
from databaker.assets.current_elections.layer import (
    FRESHNESS,
    LAYER_CHECKS,
    current_elections_parquet,
)
from databaker.assets.current_elections.version import LAYER
from databaker.check_gate import Checks, check_keys, check_problems
from databaker.layer_versions import interrupted_publish
from databaker.resources import LayerStore


@dataclass(frozen=True)
class PublishedLayer:
    asset: dg.AssetsDefinition
    checks: Checks
    fail_window: timedelta
    prefix: str
    """Where the layer is published in the store."""


PUBLISHED_LAYERS = [
    PublishedLayer(
        current_elections_parquet,
        [addressbase_uprns_are_unique, *LAYER_CHECKS],
        FRESHNESS,
        LAYER,
    ),
]


@dataclass(frozen=True)
class LayerStatus:
    name: str
    materialised_at: datetime | None
    addressbase_source: str
    ballots_version: str
    freshness_problem: str | None
    checks: int
    check_problems: list[str]
    publishing_problem: str | None = None

    @property
    def problems(self) -> list[str]:
        problems = [self.freshness_problem, self.publishing_problem, *self.check_problems]
        return [p for p in problems if p]

    @property
    def healthy(self) -> bool:
        return not self.problems


def layer_statuses(
    instance: dg.DagsterInstance, now: datetime | None = None, store: LayerStore | None = None
) -> list[LayerStatus]:
    now = now or datetime.now(UTC)
    return [_status(instance, layer, now, store) for layer in PUBLISHED_LAYERS]


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
        ballots_version=str(metadata.get("ballots_version", "unknown")),
        freshness_problem=freshness_problem,
        checks=len(check_keys(layer.checks)),
        check_problems=check_problems(instance, layer.checks),
        publishing_problem=_publishing_problem(store, layer) if store else None,
    )


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"
