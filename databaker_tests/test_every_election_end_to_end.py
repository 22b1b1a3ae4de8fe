"""Fresh within minutes, on the real daemon: a change in EveryElection's database (EE) and its
change event on the queue lead, after the quiet period, to one export and one bake that
publishes the change; an event during that bake leads to exactly one more.

One ``dg dev`` runs for the module on 127.0.0.1, its ballots in EE's database (PostgreSQL with
PostGIS on 127.0.0.1, read as the read-only role, its password in ``PGPASSWORD`` and nowhere
else) and its events on a FIFO queue of an AWS emulator on loopback (moto in server mode), as
EE's EventBridge rule fills it. Its drops folder is empty: the layer was baked once from a
shell with the same ``DAGSTER_HOME`` before the daemon started, as an operator bootstraps a
deployment, so every run the daemon makes here comes from the events.
"""

from __future__ import annotations

import datetime
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pyarrow.parquet as pq
import pytest

from databaker.automation.every_election_events import SENSOR_NAME
from databaker.bake import bake
from databaker.definitions import Settings
from databaker.sources import SAMPLE_ADDRESSBASE, SAMPLE_BALLOTS
from databaker_tests.athena_emulator import moto_server_fixture
from databaker_tests.dagster_server import ROOT, dagster_dev
from databaker_tests.deployment_client import FINISHED, DeploymentClient, Run
from databaker_tests.every_election_db import (
    BAKER_PASSWORD,
    EveryElectionDb,
    EveryElectionServer,
    every_election_server_fixture,
    fresh_database,
)

pytestmark = pytest.mark.slow_module

__all__ = ["every_election_server_fixture", "moto_server_fixture"]

QUIET_SECONDS = 3
SENSOR_INTERVAL_SECONDS = 2
REGION = "eu-west-2"
JOB = "current_elections_from_ballots"
FROM_EVENTS = {"dagster/sensor_name": SENSOR_NAME}
LAYER = "current_elections_parquet"
EXPORT = "ballots_export"
ELECTIONS_CHANGED = "elections_set_changed"
BY_ELECTIONS = {
    # A by-election announced in a ward that already has a ballot: the same area, a new ID.
    "local.linley.bridgate.by.2027-03-04": "E05006478",
    "local.linley.hartwell-park.by.2027-03-04": "E05006481",
}
SAME_AREA = {
    "local.linley.bridgate.by.2027-03-04": "local.linley.bridgate.2027-05-06",
    "local.linley.hartwell-park.by.2027-03-04": "local.linley.hartwell-park.2027-05-06",
}


@dataclass(frozen=True)
class EventBaker(DeploymentClient):
    """The deployment, EE's database it reads and the queue its events arrive on."""

    every_election: EveryElectionDb
    queue: Any
    queue_url: str
    data_root: Path

    def announce(self, election_id: str) -> None:
        """A by-election is added in EE, then EE sends its event, as EE's ``send_event`` does
        once the change is saved."""
        self.every_election.add_ballot_in_division(
            election_id, BY_ELECTIONS[election_id], datetime.date(2027, 3, 4)
        )
        self.queue.send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(
                {
                    "version": "0",
                    "id": str(uuid.uuid4()),
                    "detail-type": ELECTIONS_CHANGED,
                    "source": "everyelection-test-127.0.0.1",
                    "time": datetime.datetime.now(datetime.UTC).isoformat(),
                    "detail": {"election_id": election_id},
                }
            ),
            MessageGroupId=ELECTIONS_CHANGED,
        )

    def messages_left(self) -> int:
        attributes = self.queue.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(count) for count in attributes.values())

    def addresses_with(self, ballot: str) -> set[str]:
        """The UPRNs whose ballots include ``ballot`` in the published layer."""
        found: set[str] = set()
        for path in (self.data_root / LAYER).glob("*.parquet"):
            table = pq.read_table(path)
            if table.num_columns:
                for uprn, ballots in zip(
                    table["uprn"].to_pylist(), table["ballot_ids"].to_pylist(), strict=True
                ):
                    if ballot in ballots:
                        found.add(uprn)
        return found

    def exports_by_run(self) -> list[str]:
        """The run of each materialisation of the ballots export, newest first."""
        data = self.deployment.graphql(EXPORTS, path=[EXPORT])["assetOrError"]
        return [event["runId"] for event in data["assetMaterializations"]]


EXPORTS = """
query Exports($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(limit: 20) { runId } }
  }
}
"""


@pytest.fixture(scope="module")
def every_election_module(
    every_election_server: EveryElectionServer,
) -> Iterator[EveryElectionDb]:
    """A database of the module's own, holding the sample's ballots (polling in 30 days)."""
    with fresh_database(every_election_server) as database:
        database.load_ballots_export(SAMPLE_BALLOTS, datetime.date.today() + datetime.timedelta(30))
        yield database


@pytest.fixture(scope="module")
def event_baker(
    tmp_path_factory: pytest.TempPathFactory,
    every_election_module: EveryElectionDb,
    moto_server: str,
) -> Iterator[EventBaker]:
    base = tmp_path_factory.mktemp("ee-daemon")
    home = base / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    drops = base / "drops"
    drops.mkdir()
    data_root = base / "data"
    ballots = every_election_module.server.url(every_election_module.name, password=None)
    aws = {
        "AWS_ENDPOINT_URL_SQS": moto_server,
        "AWS_ACCESS_KEY_ID": "AKIAEMULATOREXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "emulator-secret",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    queue = boto3.client(
        "sqs",
        endpoint_url=moto_server,
        region_name=REGION,
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
    )
    queue_url = queue.create_queue(
        QueueName="CurrentElectionsEventQueue.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    settings = Settings(data_root=str(data_root), addressbase_drops=str(drops), ballots=ballots)
    with pytest.MonkeyPatch.context() as patch, dg.DagsterInstance.from_config(str(home)) as inst:
        patch.setenv("PGPASSWORD", BAKER_PASSWORD)
        bake(addressbase=str(SAMPLE_ADDRESSBASE), settings=settings, instance=inst)
    environment = {
        **aws,
        "PGPASSWORD": BAKER_PASSWORD,
        "DATABAKER_DATA_ROOT": str(data_root),
        "DATABAKER_ADDRESSBASE_DROPS": str(drops),
        "DATABAKER_BALLOTS": ballots,
        "DATABAKER_EE_EVENTS_QUEUE": queue_url,
        "DATABAKER_EE_EVENTS_QUIET_SECONDS": str(QUIET_SECONDS),
        "DATABAKER_SENSOR_INTERVAL_SECONDS": str(SENSOR_INTERVAL_SECONDS),
    }
    with dagster_dev(home, environment, base / "dagster-dev.log") as deployment:
        yield EventBaker(deployment, every_election_module, queue, queue_url, data_root)


def test_an_event_bakes_the_change_once_and_one_during_the_bake_bakes_once_more(
    event_baker: EventBaker,
) -> None:
    first, second = BY_ELECTIONS
    assert not event_baker.addresses_with(first)
    exports_before = event_baker.exports_by_run()

    event_baker.announce(first)
    sent = time.time()
    (run,) = event_baker.deployment.wait_for(
        "the run the first event asks for", lambda: event_baker.runs(**FROM_EVENTS) or None, 120
    )
    assert run.start is None or run.start - sent >= QUIET_SECONDS - 1, "the quiet period"
    event_baker.wait_for_status(run.run_id, {"STARTED", *FINISHED})
    event_baker.announce(second)
    assert event_baker.status_of(run.run_id) == "STARTED", "the second event came during the bake"
    first_run = event_baker.wait_for_status(run.run_id, FINISHED)
    event_baker.assert_succeeded(first_run)
    assert event_baker.addresses_with(first) == event_baker.addresses_with(SAME_AREA[first])
    assert event_baker.addresses_with(first), "the by-election's ward holds addresses"

    runs = event_baker.wait_for_finished_runs(2, **FROM_EVENTS)
    second_run = next(r for r in runs if r.run_id != first_run.run_id)
    event_baker.assert_succeeded(second_run)
    assert second_run.job_name == first_run.job_name == JOB
    assert second_run.start is not None and first_run.end is not None
    assert second_run.start >= first_run.end, "the second bake waited for the first"
    for ballot in BY_ELECTIONS:
        assert event_baker.addresses_with(ballot) == event_baker.addresses_with(SAME_AREA[ballot])

    # Each run exported once; the events are gone, and no third run comes of them.
    exports = event_baker.exports_by_run()
    assert exports[: -len(exports_before) or None] == [second_run.run_id, first_run.run_id]
    after = time.time()
    event_baker.wait_for_ticks(SENSOR_NAME, 3, after=after)
    assert event_baker.messages_left() == 0
    assert len(event_baker.runs(**FROM_EVENTS)) == 2


def test_the_database_password_is_in_no_log_or_metadata(event_baker: EventBaker) -> None:
    runs: list[Run] = event_baker.runs(**FROM_EVENTS)
    assert runs, "the events test ran first"
    shown = "\n".join(m for run in runs for m in event_baker.messages_of(run.run_id))
    shown += event_baker.deployment.log.read_text(errors="replace")
    shown += json.dumps(event_baker.latest_materialization(EXPORT).metadata)
    assert "postgresql://baker@127.0.0.1" in shown
    assert BAKER_PASSWORD not in shown
