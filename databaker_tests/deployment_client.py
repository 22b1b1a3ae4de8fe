"""Reading and driving a running deployment (:mod:`databaker_tests.dagster_server`) through its
GraphQL API, as the UI does: runs, their events and errors, materialisations, sensor ticks, and
launches from the launchpad or the Materialize button."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from databaker_tests.dagster_server import REPOSITORY, DagsterDeployment

WAIT_SECONDS = 300
"""The bound on every wait for the deployment; a bake of the sample takes well under a minute."""
ASSET_JOB = "__ASSET_JOB"
"""The job the UI launches an asset selection as."""
UNREACHABLE = "Unable to reach the user code server"
"""How Dagster's sensor daemon words a tick that failed before the sensor ran."""
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
TICK_FINISHED = {"SUCCESS", "SKIPPED", "FAILURE"}

RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs {
      results { runId status jobName startTime endTime tags { key value } }
    }
    ... on Error { message }
  }
}
"""

RUN_ERRORS = """
query RunErrors($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run {
      eventConnection(limit: 5000) {
        events { __typename ... on ErrorEvent { error { message } } }
      }
    }
  }
}
"""

LATEST_MATERIALIZATION = """
query Latest($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset {
      assetMaterializations(limit: 1) {
        runId
        timestamp
        metadataEntries { label ... on TextMetadataEntry { text } }
      }
    }
  }
}
"""

SENSOR = """
query Sensor($selector: SensorSelector!, $after: Float) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor {
      sensorState {
        typeSpecificData { ... on SensorData { lastCursor } }
        ticks(afterTimestamp: $after, limit: 100) {
          timestamp status skipReason runKeys runIds error { message }
        }
      }
    }
    ... on Error { message }
  }
}
"""

RUN_MESSAGES = """
query RunMessages($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run {
      eventConnection(limit: 5000) {
        events { __typename ... on MessageEvent { message timestamp stepKey } }
      }
    }
  }
}
"""

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""


@dataclass(frozen=True)
class Run:
    run_id: str
    status: str
    job_name: str
    start: float | None
    end: float | None
    tags: dict[str, str]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Run:
        return cls(
            run_id=data["runId"],
            status=data["status"],
            job_name=data["jobName"],
            start=data["startTime"],
            end=data["endTime"],
            tags={tag["key"]: tag["value"] for tag in data["tags"]},
        )


@dataclass(frozen=True)
class Materialization:
    run_id: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class DeploymentClient:
    """A running deployment, read and driven through its webserver's GraphQL API."""

    deployment: DagsterDeployment

    def runs(self, **tags: str) -> list[Run]:
        """Every run carrying all the given tags, newest first."""
        data = self.deployment.graphql(
            RUNS, filter={"tags": [{"key": key, "value": value} for key, value in tags.items()]}
        )["runsOrError"]
        assert data["__typename"] == "Runs", data
        return [Run.parse(run) for run in data["results"]]

    def wait_for_finished_runs(self, count: int, **tags: str) -> list[Run]:
        """Wait until ``count`` runs with these tags exist and have all finished; return them."""

        def finished() -> list[Run] | None:
            runs = self.runs(**tags)
            done = len(runs) >= count and all(run.status in FINISHED for run in runs)
            return runs if done else None

        return self.deployment.wait_for(
            f"{count} finished run(s) tagged {tags}", finished, WAIT_SECONDS
        )

    def messages_of(self, run_id: str) -> list[str]:
        """Every message the run logged, in order: what the UI shows in its log."""
        return [event.get("message") or "" for event in self.events_of(run_id)]

    def events_of(self, run_id: str) -> list[dict[str, Any]]:
        data = self.deployment.graphql(RUN_MESSAGES, runId=run_id)["runOrError"]
        return data["eventConnection"]["events"]

    def steps_span(self, run_id: str) -> tuple[float, float]:
        """From the run's first step event to its last, in seconds since the epoch (leaving out
        the events that plan its materialisations, logged when the run is created)."""
        stamps = [
            int(event["timestamp"]) / 1000
            for event in self.events_of(run_id)
            if event.get("stepKey") and not event["__typename"].endswith("PlannedEvent")
        ]
        return min(stamps), max(stamps)

    def wait_for_status(self, run_id: str, statuses: set[str]) -> Run:
        def reached() -> Run | None:
            (run,) = [r for r in self.runs() if r.run_id == run_id]
            return run if run.status in statuses else None

        return self.deployment.wait_for(f"run {run_id} {statuses}", reached, WAIT_SECONDS)

    def errors_of(self, run: Run) -> str:
        """The error messages of a run's events: what the UI shows for a failed run."""
        data = self.deployment.graphql(RUN_ERRORS, runId=run.run_id)["runOrError"]
        events = data.get("eventConnection", {}).get("events", [])
        messages = dict.fromkeys(e["error"]["message"] for e in events if e.get("error"))
        return "\n".join(messages) or "(none)"

    def assert_succeeded(self, run: Run) -> None:
        assert run.status == "SUCCESS", f"run {run.run_id} {run.status}:\n{self.errors_of(run)}"

    def latest_materialization(self, asset: str) -> Materialization:
        data = self.deployment.graphql(LATEST_MATERIALIZATION, path=[asset])["assetOrError"]
        assert data["__typename"] == "Asset", data
        (event,) = data["assetMaterializations"]
        metadata = {
            entry["label"]: entry["text"] for entry in event["metadataEntries"] if "text" in entry
        }
        return Materialization(run_id=event["runId"], metadata=metadata)

    def sensor_state(self, name: str, after: float | None = None) -> dict[str, Any]:
        selector = {
            "repositoryLocationName": self.deployment.location,
            "repositoryName": REPOSITORY,
            "sensorName": name,
        }
        data = self.deployment.graphql(SENSOR, selector=selector, after=after)["sensorOrError"]
        assert data["__typename"] == "Sensor", data
        return data["sensorState"]

    def wait_for_ticks(self, sensor: str, count: int, after: float) -> list[dict[str, Any]]:
        """Wait until ``sensor`` has evaluated ``count`` ticks since ``after``; all those ticks.

        A tick still being evaluated is left out: its status and outcome are not known yet. So is
        a tick that could not reach the code server (while a restarted deployment loads its code,
        or when the server is slow to answer on a loaded machine): the sensor never ran, and
        Dagster tries again on the next tick with the cursor unchanged. Any other failed tick is
        returned, for the caller's assertions to report.
        """

        def finished() -> list[dict[str, Any]] | None:
            ticks = self.sensor_state(sensor, after=after)["ticks"]
            ticks = [t for t in ticks if t["status"] in TICK_FINISHED and not unreachable(t)]
            return ticks if len(ticks) >= count else None

        return self.deployment.wait_for(
            f"{count} {sensor} ticks after {after}", finished, WAIT_SECONDS
        )

    def launch(self, job: str, tags: dict[str, str]) -> str:
        """Launch a run of ``job`` as the UI's launchpad does; the run id."""
        params = {
            "selector": {
                "repositoryLocationName": self.deployment.location,
                "repositoryName": REPOSITORY,
                "jobName": job,
            },
            "executionMetadata": {
                "tags": [{"key": key, "value": value} for key, value in tags.items()]
            },
        }
        result = self.deployment.graphql(LAUNCH, params=params)["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def launch_assets(self, assets: list[str], tags: dict[str, str]) -> str:
        """Materialise ``assets`` (and their checks) as the UI's "Materialize" button does: a
        run of the implicit asset job with an asset selection, carrying no job's tags."""
        params = {
            "selector": {
                "repositoryLocationName": self.deployment.location,
                "repositoryName": REPOSITORY,
                "jobName": ASSET_JOB,
                "assetSelection": [{"path": [asset]} for asset in assets],
            },
            "mode": "default",
            "runConfigData": {},
            "executionMetadata": {
                "tags": [{"key": key, "value": value} for key, value in tags.items()]
            },
        }
        result = self.deployment.graphql(LAUNCH, params=params)["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def status_of(self, run_id: str) -> str:
        (run,) = [r for r in self.runs() if r.run_id == run_id]
        return run.status


def unreachable(tick: dict[str, Any]) -> bool:
    """Whether the tick failed because the daemon could not reach the code server."""
    message = (tick.get("error") or {}).get("message") or ""
    return tick["status"] == "FAILURE" and UNREACHABLE in message
