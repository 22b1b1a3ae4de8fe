"""A layer's jobs, the sensor on its input and its nightly rebuild.

Every job of a layer carries the `databaker/layer` tag with the layer's name, to find its runs.
What keeps two bakes of one layer apart is not the tag but the layer's concurrency pool
(`databaker.concurrency`), which every run materialising any of its assets holds, however it
was launched: a trigger that arrives during a bake waits in the queue.

The input sensor compares the input's content version (SHA-256 locally, ETag on S3), never its
modification time. Its first tick only records the version: the bake of a drop reads the
input anyway. Each change after that requests one rebuild of the layer.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition as AssetJob,
)

from databaker.layers.layer import Layer
from databaker.partitions import ALL_LETTERS
from databaker.resources.input_locations import InputLocations

__all__ = ["LAYER_TAG", "AssetJob"]
LAYER_TAG = "databaker/layer"
"""The run tag naming the layer a job bakes."""


def layer_tags(layer: Layer) -> dict[str, str]:
    return {LAYER_TAG: layer.name}


def full_job(
    layer: Layer,
    addressbase: Sequence[dg.AssetsDefinition],
    inputs: Sequence[dg.AssetsDefinition],
    own: Sequence[dg.AssetsDefinition],
) -> AssetJob:
    """The whole layer from an AddressBase drop: the AddressBase tables, its input (exported
    first when it comes from EE's database), its own assets."""
    return dg.define_asset_job(
        layer.job_name,
        selection=dg.AssetSelection.assets(*addressbase, *inputs, *own),
        description=f"Bake the {layer.name} layer from an AddressBase drop"
        + (f" and the {layer.input.label}." if layer.input else "."),
        tags=layer_tags(layer),
    )


def rebuild_job(
    layer: Layer, inputs: Sequence[dg.AssetsDefinition], own: Sequence[dg.AssetsDefinition]
) -> AssetJob:
    """The layer rebuilt on the AddressBase already partitioned: from its input when it has
    one, exported first when it comes from EE's database (what the input sensor, EE's change
    events and the nightly schedule run)."""
    if layer.input is None:
        return dg.define_asset_job(
            layer.rebuild_job_name,
            selection=dg.AssetSelection.assets(*own),
            description=f"Rebuild the {layer.name} layer on the AddressBase already partitioned.",
            tags=layer_tags(layer),
        )
    return dg.define_asset_job(
        layer.rebuild_job_name,
        selection=dg.AssetSelection.assets(*inputs, *own),
        description=f"Rebuild the {layer.name} layer from the {layer.input.label}, on the "
        f"AddressBase already partitioned.",
        tags=layer_tags(layer),
    )


@dataclass(frozen=True)
class InputCursor:
    """The input version last seen, and how many changes have been requested."""

    version: str | None = None
    changes: int = 0

    @classmethod
    def parse(cls, text: str | None) -> "InputCursor":
        if not text:
            return cls()
        data = json.loads(text)
        return cls(data["version"], int(data["changes"]))

    def serialize(self) -> str:
        return json.dumps({"version": self.version, "changes": self.changes})


def input_version_tag(layer: Layer) -> str:
    """The run tag holding the input version a rebuild was requested for."""
    assert layer.input is not None
    return f"databaker/{layer.input.option}_version"


def input_changes_sensor(layer: Layer, job: AssetJob, interval_seconds: int) -> dg.SensorDefinition:
    """Rebuilds the layer when its input's content changes."""
    source = layer.input
    assert source is not None
    tag = input_version_tag(layer)

    @dg.sensor(
        name=source.sensor_name,
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Rebuilds the {layer.name} layer when the {source.label} changes.",
    )
    def input_changes(
        context: dg.SensorEvaluationContext, inputs: InputLocations
    ) -> dg.SensorResult:
        cursor = InputCursor.parse(context.cursor)
        version = source.version_of(inputs)
        if cursor.version is None:
            return dg.SensorResult(cursor=InputCursor(version, 0).serialize())
        if version == cursor.version:
            return dg.SensorResult(
                skip_reason=f"the {source.label} is unchanged ({version[:19]}...)"
            )
        changed = InputCursor(version, cursor.changes + 1)
        request = dg.RunRequest(
            run_key=f"{source.option}-change-{changed.changes}",
            tags={**ALL_LETTERS, tag: version},
        )
        return dg.SensorResult(run_requests=[request], cursor=changed.serialize())

    return input_changes


def nightly_schedule(layer: Layer, job: AssetJob) -> dg.ScheduleDefinition | None:
    """Rebuilds the layer every night, whatever changed (None for a layer without one)."""
    if layer.nightly_cron is None:
        return None

    @dg.schedule(
        name=f"nightly_{layer.name}",
        job=job,
        cron_schedule=layer.nightly_cron,
        execution_timezone="Europe/London",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Rebuilds the {layer.name} layer every night, whatever changed.",
    )
    def nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        night = context.scheduled_execution_time.strftime("%Y-%m-%d")
        return dg.RunRequest(run_key=f"nightly-{night}", tags=ALL_LETTERS)

    return nightly
