"""The ballots sensor and the nightly rebuild of the current-elections layer.

The sensor compares the export's content version (SHA-256 locally, ETag on S3), never its
modification time. Its first tick only records the version: the bake of a drop reads the
export anyway. Each change after that requests one rebuild; the run queue holds it while
another bake of the layer runs.
"""

import json
from dataclasses import dataclass

import dagster as dg

from databaker.jobs import current_elections_from_ballots
from databaker.partitions import ALL_LETTERS
from databaker.resources.input_locations import InputLocations

BALLOTS_TAG = "databaker/ballots_version"


@dataclass(frozen=True)
class BallotsCursor:
    version: str | None = None
    changes: int = 0

    @classmethod
    def parse(cls, text: str | None) -> "BallotsCursor":
        if not text:
            return cls()
        data = json.loads(text)
        return cls(data["version"], int(data["changes"]))

    def serialize(self) -> str:
        return json.dumps({"version": self.version, "changes": self.changes})


def build_ballots_export_sensor(interval_seconds: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="ballots_export_changes",
        job=current_elections_from_ballots,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Rebuilds the current-elections layer when the ballots export changes.",
    )
    def ballots_export_changes(
        context: dg.SensorEvaluationContext, inputs: InputLocations
    ) -> dg.SensorResult:
        cursor = BallotsCursor.parse(context.cursor)
        version = inputs.ballots_version()
        if cursor.version is None:
            return dg.SensorResult(cursor=BallotsCursor(version, 0).serialize())
        if version == cursor.version:
            return dg.SensorResult(
                skip_reason=f"the ballots export is unchanged ({version[:19]}...)"
            )
        changed = BallotsCursor(version, cursor.changes + 1)
        request = dg.RunRequest(
            run_key=f"ballots-change-{changed.changes}",
            tags={**ALL_LETTERS, BALLOTS_TAG: version},
        )
        return dg.SensorResult(run_requests=[request], cursor=changed.serialize())

    return ballots_export_changes


@dg.schedule(
    name="nightly_current_elections",
    job=current_elections_from_ballots,
    cron_schedule="0 1 * * *",
    execution_timezone="Europe/London",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Rebuilds the current-elections layer every night, whatever changed.",
)
def nightly_current_elections(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    night = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"nightly-{night}", tags=ALL_LETTERS)
