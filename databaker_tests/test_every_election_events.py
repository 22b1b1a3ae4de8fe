"""EE's change events: the debounce as a decision on crafted messages, then the sensor itself on
a real SQS (moto in server mode on loopback), FIFO and standard queues, ticked as the daemon
ticks it: its cursor kept between ticks, the runs it requests created in the instance after
the tick returns."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
import dagster as dg
import pytest
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

from databaker.automation.every_election_events import (
    EVENTS_TAG,
    SENSOR_NAME,
    EventsCursor,
    EventTarget,
    build_every_election_events_sensor,
    decide,
)
from databaker.resources.change_events import ChangeEventQueue, QueuedMessage
from databaker_tests.athena_emulator import moto_server_fixture

__all__ = ["moto_server_fixture"]

ELECTIONS = "elections_set_changed"
REVIEWS = "boundary_change_set_changed"
REGION = "eu-west-2"


@dg.asset
def current_elections() -> None:
    """Stands in for the layer."""


@dg.asset
def current_boundary_reviews() -> None:
    """Stands in for the layer."""


ELECTIONS_JOB = dg.define_asset_job("current_elections_from_ballots", [current_elections])
REVIEWS_JOB = dg.define_asset_job(
    "current_boundary_reviews_from_reviews", [current_boundary_reviews]
)
TARGETS = (
    EventTarget("current_elections", (ELECTIONS,), ELECTIONS_JOB, {"letters": "A-Z"}),
    EventTarget("current_boundary_reviews", (REVIEWS,), REVIEWS_JOB),
)
JOBS = dg.Definitions(
    assets=[current_elections, current_boundary_reviews], jobs=[ELECTIONS_JOB, REVIEWS_JOB]
)


def event_body(kind: str = ELECTIONS) -> str:
    """An EventBridge event as EE's ``send_event`` makes it and the rule puts it on the queue."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": kind,
            "source": "everyelection-production-10.0.0.1",
            "account": "123456789012",
            "time": "2027-04-01T10:00:00Z",
            "region": REGION,
            "resources": [],
            "detail": {},
        }
    )


# The decision, on crafted messages and a clock the test sets.

QUIET = 300.0


def message(
    name: str, sent: float, kind: str = ELECTIONS, body: str | None = None
) -> QueuedMessage:
    return QueuedMessage(name, event_body(kind) if body is None else body, round(sent * 1000))


def decision_at(
    now: float,
    messages: list[QueuedMessage],
    cursor: EventsCursor | None = None,
    runs: set[str] | frozenset[str] = frozenset(),
    quiet: float = QUIET,
) -> Any:
    return decide(
        messages,
        cursor or EventsCursor(),
        now,
        targets=TARGETS,
        quiet_seconds=quiet,
        run_exists=runs.__contains__,
    )


def keys(decision: Any) -> list[str]:
    return [request.run_key for request in decision.requests]


def deleted(decision: Any) -> list[str]:
    return [message.message_id for message, _ in decision.deletions]


BURST = [message("m1", 1000), message("m2", 1030), message("m3", 1060)]


def test_a_burst_waits_for_the_quiet_period_then_asks_for_one_run() -> None:
    early = decision_at(1100, BURST)
    assert early.requests == []
    assert early.waiting == ["3 events for current_elections, quiet for 40 s of 300"]
    assert deleted(early) == []

    settled = decision_at(1360, BURST, early.cursor)
    [request] = settled.requests
    assert request.run_key == "every-election-current_elections-m3"
    assert request.job_name == "current_elections_from_ballots"
    assert request.tags == {
        "letters": "A-Z",
        EVENTS_TAG: "3",
        "databaker/every_election_newest_event": "1970-01-01T00:17:40.000+00:00",
    }
    assert deleted(settled) == []
    assert [m.message_id for m in settled.kept] == ["m1", "m2", "m3"]


def test_the_messages_go_only_once_the_run_they_asked_for_exists() -> None:
    asked = decision_at(1360, BURST)
    not_yet = decision_at(1400, BURST, asked.cursor)
    assert keys(not_yet) == keys(asked)
    assert deleted(not_yet) == []

    created = decision_at(1400, BURST, not_yet.cursor, runs=set(keys(asked)))
    assert created.requests == []
    assert deleted(created) == ["m1", "m2", "m3"]
    assert decision_at(1500, [], created.cursor, runs=set(keys(asked))).requests == []


def test_an_event_during_the_bake_leads_to_exactly_one_more_run() -> None:
    asked = decision_at(1360, BURST)
    runs = set(keys(asked))
    during = [*BURST, message("m4", 1365)]
    waiting = decision_at(1370, during, asked.cursor, runs)
    assert waiting.requests == []
    assert deleted(waiting) == ["m1", "m2", "m3"]
    assert waiting.waiting == ["1 event for current_elections, quiet for 5 s of 300"]

    again = decision_at(1700, [message("m4", 1365)], waiting.cursor, runs)
    assert keys(again) == ["every-election-current_elections-m4"]
    runs |= set(keys(again))
    done = decision_at(1710, [message("m4", 1365)], again.cursor, runs)
    assert (done.requests, deleted(done)) == ([], ["m4"])


def test_an_event_hidden_behind_a_fifo_group_is_covered_if_sent_before_the_request() -> None:
    visible = [message(f"m{n}", 1000 + n) for n in range(1, 11)]
    asked = decision_at(1400, visible)
    hidden_before = message("m11", 1398)
    after = message("m12", 1400.5)
    later = decision_at(1410, [hidden_before, after], asked.cursor, set(keys(asked)))
    assert deleted(later) == ["m11"]
    assert [m.message_id for m in later.kept] == ["m12"]


def test_each_layer_concerned_gets_one_run() -> None:
    both = [*BURST, message("r1", 1010, REVIEWS), message("r2", 1020, REVIEWS)]
    decision = decision_at(1400, both)
    assert [(r.job_name, r.run_key, r.tags[EVENTS_TAG]) for r in decision.requests] == [
        ("current_elections_from_ballots", "every-election-current_elections-m3", "3"),
        (
            "current_boundary_reviews_from_reviews",
            "every-election-current_boundary_reviews-r2",
            "2",
        ),
    ]


def test_a_lost_cursor_and_the_same_messages_give_the_same_run_key() -> None:
    asked = decision_at(1360, BURST)
    assert keys(decision_at(1500, BURST)) == keys(asked)

    after_the_run = decision_at(1500, BURST, runs=set(keys(asked)))
    assert after_the_run.requests == []
    assert deleted(after_the_run) == ["m1", "m2", "m3"]


def test_messages_that_are_not_ee_events_go_with_their_reason() -> None:
    bad = [
        message("not-json", 1000, body="{oops"),
        message("a-list", 1000, body="[1, 2]"),
        message("no-type", 1000, body='{"detail": {}}'),
        message("unknown", 1000, kind="organisation_changed"),
    ]
    decision = decision_at(1001, [*bad, message("good", 1000)])
    reasons = {message.message_id: reason for message, reason in decision.deletions}
    assert reasons == {
        "not-json": "not an EE event: its body is not JSON "
        "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        "a-list": "not an EE event: its body is not an EventBridge event: no detail-type",
        "no-type": "not an EE event: its body is not an EventBridge event: no detail-type",
        "unknown": "not an EE event a layer listens for: detail-type 'organisation_changed'",
    }
    assert [m.message_id for m in decision.kept] == ["good"]


def test_no_quiet_period_asks_at_first_sight_even_with_the_clocks_apart() -> None:
    ahead_of_us = decision_at(999, [message("m1", 1000)], quiet=0)
    assert keys(ahead_of_us) == ["every-election-current_elections-m1"]


def test_the_cursor_survives_a_round_trip() -> None:
    cursor = decision_at(1500, [*BURST, message("r1", 1000, REVIEWS)]).cursor
    assert EventsCursor.parse(cursor.serialize()) == cursor
    assert len(cursor.serialize()) < 400


# The sensor on SQS.


@dataclass
class Queue:
    """A queue on the emulator, fed as EventBridge feeds it."""

    client: Any
    url: str
    fifo: bool

    def send(self, *kinds: str) -> None:
        for start in range(0, len(kinds), 10):
            entries = []
            for n, kind in enumerate(kinds[start : start + 10]):
                entry = {"Id": str(n), "MessageBody": event_body(kind)}
                entries.append({**entry, "MessageGroupId": kind} if self.fifo else entry)
            response = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            assert not response.get("Failed"), response["Failed"]

    def send_body(self, body: str) -> None:
        group = {"MessageGroupId": ELECTIONS} if self.fifo else {}
        self.client.send_message(QueueUrl=self.url, MessageBody=body, **group)

    def messages(self) -> int:
        """Every message still on the queue, visible or not."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(count) for count in attributes.values())

    def visible(self) -> int:
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])


@pytest.fixture
def sqs(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A client on the emulator; the sensor reaches it through the standard variables."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEMULATOREXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return boto3.client("sqs", endpoint_url=moto_server, region_name=REGION)


def new_queue(sqs: Any, fifo: bool) -> Queue:
    name = f"CurrentElectionsEventQueue-{uuid.uuid4().hex[:8]}" + (".fifo" if fifo else "")
    attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
    return Queue(sqs, sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"], fifo)


@pytest.fixture
def fifo_queue(sqs: Any) -> Queue:
    return new_queue(sqs, fifo=True)


@pytest.fixture
def standard_queue(sqs: Any) -> Queue:
    return new_queue(sqs, fifo=False)


@dataclass
class Daemon:
    """Ticks the sensor as Dagster's daemon does, runs created only when the test says."""

    sensor: dg.SensorDefinition
    instance: dg.DagsterInstance = field(default_factory=dg.DagsterInstance.ephemeral)
    cursor: str | None = None
    logged: list[str] = field(default_factory=list)

    def tick(self) -> Any:
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor)
        handler = _Recorder(self.logged)
        context.log.addHandler(handler)
        try:
            result = self.sensor.evaluate_tick(context)
        finally:
            context.log.removeHandler(handler)
        self.cursor = result.cursor
        return result

    def submit(self, result: Any) -> None:
        """Create the runs a tick requested, skipping the run keys already used."""
        for request in result.run_requests:
            if request.run_key not in self.run_keys():
                self.instance.create_run_for_job(
                    JOBS.resolve_job_def(request.job_name),
                    tags={
                        **request.tags,
                        RUN_KEY_TAG: request.run_key,
                        SENSOR_NAME_TAG: SENSOR_NAME,
                    },
                )

    def run_keys(self) -> list[str]:
        return [run.tags[RUN_KEY_TAG] for run in self.instance.get_runs()]


class _Recorder(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def daemon_on(queue: Queue, quiet: float) -> Daemon:
    return Daemon(
        build_every_election_events_sensor(
            queue.url, quiet, interval_seconds=30, targets=TARGETS, receive_wait_seconds=0
        )
    )


SENSOR_QUIET = 3.0


def wait_for_quiet() -> None:
    time.sleep(SENSOR_QUIET + 0.2)


def test_a_burst_on_a_fifo_queue_starts_one_run_after_the_quiet_period(fifo_queue) -> None:
    daemon = daemon_on(fifo_queue, SENSOR_QUIET)
    fifo_queue.send(ELECTIONS, ELECTIONS, ELECTIONS)
    early = daemon.tick()
    assert early.run_requests == []
    assert re.fullmatch(
        r"3 events for current_elections, quiet for [0-2] s of 3", early.skip_message
    )
    assert fifo_queue.visible() == 3

    wait_for_quiet()
    settled = daemon.tick()
    [request] = settled.run_requests
    assert request.job_name == "current_elections_from_ballots"
    assert request.tags[EVENTS_TAG] == "3"
    assert fifo_queue.visible() == 3, "deleted before the run was requested"

    assert [r.run_key for r in daemon.tick().run_requests] == [request.run_key]
    assert fifo_queue.visible() == 3, "deleted before the run was requested"

    daemon.submit(settled)
    after = daemon.tick()
    assert after.run_requests == []
    assert fifo_queue.messages() == 0
    assert daemon.run_keys() == [request.run_key]


def test_events_during_a_bake_lead_to_exactly_one_more_run(fifo_queue) -> None:
    daemon = daemon_on(fifo_queue, quiet=0)
    fifo_queue.send(ELECTIONS)
    first = daemon.tick()
    daemon.submit(first)
    fifo_queue.send(ELECTIONS, ELECTIONS)
    during = daemon.tick()
    [second] = during.run_requests
    assert second.run_key != first.run_requests[0].run_key
    assert second.tags[EVENTS_TAG] == "2"
    daemon.submit(during)

    assert daemon.tick().run_requests == []
    assert daemon.tick().run_requests == []
    assert fifo_queue.messages() == 0
    assert len(daemon.run_keys()) == 2


def test_both_event_types_start_one_run_per_layer(standard_queue) -> None:
    daemon = daemon_on(standard_queue, quiet=0)
    standard_queue.send(ELECTIONS, REVIEWS, ELECTIONS)
    result = daemon.tick()
    assert sorted((r.job_name, r.tags[EVENTS_TAG]) for r in result.run_requests) == [
        ("current_boundary_reviews_from_reviews", "1"),
        ("current_elections_from_ballots", "2"),
    ]
    daemon.submit(result)
    assert daemon.tick().run_requests == []
    assert standard_queue.messages() == 0


def test_a_fifo_group_of_more_than_ten_events_is_one_run(fifo_queue) -> None:
    daemon = daemon_on(fifo_queue, SENSOR_QUIET)
    fifo_queue.send(*[ELECTIONS] * 25)
    assert daemon.tick().run_requests == []
    wait_for_quiet()
    settled = daemon.tick()
    assert len(settled.run_requests) == 1
    daemon.submit(settled)

    assert daemon.tick().run_requests == []
    assert fifo_queue.messages() == 0
    assert len(daemon.run_keys()) == 1


def test_a_lost_cursor_and_redelivered_messages_give_no_second_run(standard_queue) -> None:
    daemon = daemon_on(standard_queue, quiet=0)
    standard_queue.send(ELECTIONS, ELECTIONS)
    first = daemon.tick()
    daemon.submit(first)
    daemon.cursor = None

    redelivered = daemon.tick()
    assert {r.run_key for r in redelivered.run_requests} <= {first.run_requests[0].run_key}
    daemon.submit(redelivered)
    assert daemon.tick().run_requests == []
    assert standard_queue.messages() == 0
    assert daemon.run_keys() == [first.run_requests[0].run_key]


def test_a_message_that_is_not_an_ee_event_is_logged_and_deleted(standard_queue) -> None:
    daemon = daemon_on(standard_queue, quiet=0)
    standard_queue.send_body("{oops")
    standard_queue.send(ELECTIONS, "organisation_changed")
    result = daemon.tick()
    assert [r.tags[EVENTS_TAG] for r in result.run_requests] == ["1"]
    assert standard_queue.messages() == 1, "only the EE event waits for its run"
    warnings = [line for line in daemon.logged if line.startswith("deleting message")]
    assert len(warnings) == 2
    assert any("its body is not JSON" in line for line in warnings)
    assert any("detail-type 'organisation_changed'" in line for line in warnings)
    assert any("3 messages seen" in line for line in daemon.logged)


def test_the_sensor_runs_by_default_and_targets_each_layer_s_job() -> None:
    sensor = build_every_election_events_sensor(
        "https://sqs.eu-west-2.amazonaws.com/1/q", 300, 30, TARGETS
    )
    assert sensor.name == SENSOR_NAME
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sorted(job.name for job in sensor.jobs) == [
        "current_boundary_reviews_from_reviews",
        "current_elections_from_ballots",
    ]


def test_the_queue_s_region_is_the_one_in_its_aws_url() -> None:
    queue = ChangeEventQueue("https://sqs.eu-west-1.amazonaws.com/123456789012/Events.fifo")
    assert queue.client.meta.region_name == "eu-west-1"
