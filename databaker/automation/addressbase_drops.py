"""The AddressBase drop sensor: bake every layer from each new, complete drop once, never from
an older one after it.

A drop is complete when its folder holds a ``_SUCCESS`` marker or, for producers that write
none, when its listing is the same on two ticks in a row. The cursor remembers the newest drop
launched and the listings of newer drops still being written. Each layer's whole job is
requested for the drop (one run per layer, each under its layer's run-queue tag); run keys name
the drop and the layer, so a drop is baked once per layer even if the cursor were lost.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg

from databaker.layers.automation import AssetJob
from databaker.partitions import ALL_LETTERS
from databaker.resources.input_locations import DropListing, InputLocations

DROP_TAG = "databaker/addressbase_drop"


@dataclass(frozen=True)
class DropsCursor:
    """The newest drop launched, and fingerprints of newer drops not yet complete."""

    launched: str | None = None
    unfinished: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> "DropsCursor":
        if not text:
            return cls()
        data = json.loads(text)
        return cls(data.get("launched"), dict(data.get("unfinished", {})))

    def serialize(self) -> str:
        return json.dumps({"launched": self.launched, "unfinished": self.unfinished})


@dataclass(frozen=True)
class DropDecision:
    drop: DropListing | None
    cursor: DropsCursor
    passed_over: list[str]
    waiting: list[str]


def decide(drops: list[DropListing], cursor: DropsCursor) -> DropDecision:
    """Pick the newest complete drop newer than the last one launched, if there is one."""
    newer = [drop for drop in drops if cursor.launched is None or drop.name > cursor.launched]

    def complete(drop: DropListing) -> bool:
        stable = cursor.unfinished.get(drop.name) == drop.fingerprint
        return drop.csv_files > 0 and (drop.has_marker or stable)

    ready = [drop for drop in newer if complete(drop)]
    chosen = ready[-1] if ready else None
    launched = chosen.name if chosen else cursor.launched
    later = [drop for drop in newer if launched is None or drop.name > launched]
    return DropDecision(
        drop=chosen,
        cursor=DropsCursor(launched, {drop.name: drop.fingerprint for drop in later}),
        passed_over=[drop.name for drop in ready[:-1]],
        waiting=[drop.name for drop in later],
    )


def build_addressbase_drops_sensor(
    interval_seconds: int, jobs: Sequence[AssetJob]
) -> dg.SensorDefinition:
    """The sensor, requesting each of ``jobs`` (every layer's whole job) for a new drop."""

    @dg.sensor(
        name="addressbase_drops",
        jobs=list(jobs),
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Bakes every layer from each new, complete AddressBase drop, once.",
    )
    def addressbase_drops(
        context: dg.SensorEvaluationContext, inputs: InputLocations
    ) -> dg.SensorResult:
        decision = decide(inputs.list_drops(), DropsCursor.parse(context.cursor))
        cursor = decision.cursor.serialize()
        if decision.passed_over:
            context.log.info(f"not baking older drops {decision.passed_over}: a newer one is")
        if decision.drop is None:
            waiting = f"; waiting for {decision.waiting} to complete" if decision.waiting else ""
            return dg.SensorResult(
                skip_reason=f"no new complete drop in {inputs.addressbase_drops}{waiting}",
                cursor=cursor,
            )
        drop = decision.drop
        requests = [
            dg.RunRequest(
                run_key=f"addressbase-drop-{drop.name}-{job.name}",
                job_name=job.name,
                run_config={
                    "ops": {"addressbase_cleaned_raw": {"config": {"source": drop.location}}}
                },
                tags={**ALL_LETTERS, DROP_TAG: drop.name},
            )
            for job in jobs
        ]
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return addressbase_drops
