"""Everything Dagster needs of a layer, built once from its declaration."""

from dataclasses import dataclass
from functools import cache

import dagster as dg

from databaker.assets.addressbase import addressbase_uprns_are_unique
from databaker.assets.addressbase import assets as addressbase_assets
from databaker.concurrency import layer_pool
from databaker.layers.automation import (
    AssetJob,
    full_job,
    input_changes_sensor,
    nightly_schedule,
    rebuild_job,
)
from databaker.layers.exported import export_asset
from databaker.layers.joined import joined_asset, joined_checks
from databaker.layers.layer import Layer
from databaker.layers.published import published_asset
from databaker.layers.version import version_asset


@dataclass(frozen=True)
class LayerDefinitions:
    """A layer's assets (its input's, its joined table, its version, the published layer),
    checks, jobs, sensor and schedule."""

    layer: Layer
    inputs: list[dg.AssetsDefinition]
    """The input asset, and before it the export asset when the input comes from EE's
    database."""
    joined: dg.AssetsDefinition
    joined_checks: list[dg.AssetChecksDefinition]
    version: dg.AssetsDefinition
    published: dg.AssetsDefinition
    full_job: AssetJob
    rebuild_job: AssetJob
    schedule: dg.ScheduleDefinition | None

    @property
    def assets(self) -> list[dg.AssetsDefinition]:
        return [*self.inputs, self.joined, self.version, self.published]

    @property
    def jobs(self) -> list[AssetJob]:
        return [self.full_job, self.rebuild_job]

    @property
    def published_checks(self) -> list[dg.AssetChecksDefinition | dg.AssetCheckKey]:
        """Every check a published bake has passed: on the AddressBase drop, on the joined
        table, then the guard rails."""
        rails = [rail.key(self.layer.version_asset_name) for rail in self.layer.rails]
        return [addressbase_uprns_are_unique, *self.joined_checks, *rails]

    @property
    def from_database(self) -> bool:
        return len(self.inputs) > 1

    def sensors(self, interval_seconds: int) -> list[dg.SensorDefinition]:
        """The sensor on the input's file; none for an input from EE's database, whose change
        events trigger rebuilds instead (:mod:`databaker.automation.every_election_events`)."""
        if self.layer.input is None or self.from_database:
            return []
        return [input_changes_sensor(self.layer, self.rebuild_job, interval_seconds)]


@cache
def layer_definitions(layer: Layer, from_database: bool = False) -> LayerDefinitions:
    """The layer's definitions, made once per layer (Dagster needs one object per asset);
    ``from_database``: its input is exported from EE's database (:mod:`.exported`) first.

    The layer's input asset must be in the layer's pool, as its own assets are: otherwise a
    run materialising the input alone would not wait for a bake of the layer.
    """
    if layer.input is not None:
        pools = {node.pool for node in layer.input.asset.node_def.iterate_node_defs()}
        if pools != {layer_pool(layer.name)}:
            raise dg.DagsterInvalidDefinitionError(
                f"{layer.input.asset_name}, the {layer.name} layer's input, is in pool(s) "
                f"{sorted(map(str, pools))}: give it pool=layer_pool({layer.name!r})"
            )
    inputs = _input_assets(layer, from_database)
    joined = joined_asset(layer)
    checks = joined_checks(layer, joined)
    version = version_asset(layer, joined, checks)
    published = published_asset(layer, version)
    own = [joined, version, published]
    rebuild = rebuild_job(layer, inputs, own)
    return LayerDefinitions(
        layer=layer,
        inputs=inputs,
        joined=joined,
        joined_checks=checks,
        version=version,
        published=published,
        full_job=full_job(layer, addressbase_assets, inputs, own),
        rebuild_job=rebuild,
        schedule=nightly_schedule(layer, rebuild),
    )


def _input_assets(layer: Layer, from_database: bool) -> list[dg.AssetsDefinition]:
    if layer.input is None:
        return []
    if not from_database:
        return [layer.input.asset]
    export = layer.input.export
    if export is None or layer.input.asset_after is None:
        raise dg.DagsterInvalidDefinitionError(
            f"the {layer.name} layer's {layer.input.label} cannot come from EveryElection's "
            f"database: only from a file or an s3:// URL"
        )
    exported = export_asset(export)
    return [exported, layer.input.asset_after([exported.key])]
