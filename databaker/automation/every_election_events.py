"""EE's change events: one rebuild of each layer they concern, once a burst of them has settled.

EveryElection (EE) sends an EventBridge event when its data changes (``elections_set_changed``
for ballots, ``boundary_change_set_changed`` for boundary reviews and divisionsets, which
concern the boundary-reviews and the organisations layers); a rule puts each on an SQS queue,
FIFO or standard. Each layer names its events (``DatabaseExport.events``). Each tick of the
sensor:

1. counts a run it asked for earlier as *requested* once a run with that run key exists in the
   instance (Dagster submits a sensor's run requests after the tick returns). The run covers
   every event of its layer sent up to the newest one it was asked for, and every event sent
   before it was asked for (less a second for clock skew): it reads EE's database after that.
2. receives every visible message, ten at a time, hidden for the tick, deleting at once the ones
   already covered and the ones that are not an EE event a target listens for (bad JSON, no or
   an unknown ``detail-type``; each logged with its reason). Deleting as it goes matters on a
   FIFO queue, where a message received and not deleted hides the later ones of its group.
3. decides per layer: the events not yet covered are a burst; once its newest event (by SQS's
   ``SentTimestamp``) is ``quiet_seconds`` old, one run is requested, keyed by the layer and
   that newest message's id, so a lost cursor and redelivered messages give the same key.
   A layer whose last request is not yet a run asks again with the same key (Dagster drops
   the duplicate) and starts no new burst until it is.
4. makes the messages it keeps visible again: the queue, not the cursor, holds pending events.

So every event leads to a run requested after it was sent (at least once), and an event that
arrives during a bake leads to one more run, which the layer's concurrency pool queues behind
the bake. A FIFO group with more than ten events waiting shows its first ten only: the quiet
period then counts from the tenth, and the run asked for still covers the hidden ones sent
before it. The cursor holds, per layer, two timestamps and the last run key asked for.

A waiting message is received once a tick: a dead-letter redrive on the queue needs a
``maxReceiveCount`` well above ``quiet_seconds / interval_seconds``, or events waiting out the
quiet period move to the dead-letter queue unbaked.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

from databaker.layers.automation import AssetJob
from databaker.resources.change_events import ChangeEventQueue, QueuedMessage

SENSOR_NAME = "every_election_events"
EVENTS_TAG = "databaker/every_election_events"
"""The run tag holding how many of EE's events a run was requested for."""
NEWEST_EVENT_TAG = "databaker/every_election_newest_event"
"""The run tag holding when the newest of those events reached the queue (UTC, ISO 8601)."""
CLOCK_SKEW_MS = 1000
"""How far SQS's clock and the sensor's may disagree; events sent that close before a request
are not counted as covered by it (at worst one more run)."""
MAX_MESSAGES_PER_TICK = 2000
"""Messages received in one tick at most (200 receives); the rest wait for the next."""


@dataclass(frozen=True)
class EventTarget:
    """A layer, the event types that concern it, the job that rebuilds it and its run tags."""

    layer: str
    events: tuple[str, ...]
    job: AssetJob
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Requested:
    """A run asked for and not yet seen in the instance."""

    run_key: str
    newest_ms: int
    at_ms: int
    events: int


@dataclass(frozen=True)
class LayerCursor:
    """Every event of the layer sent up to ``covered_ms`` is covered by a run that exists."""

    covered_ms: int = 0
    requested: Requested | None = None


@dataclass(frozen=True)
class EventsCursor:
    layers: Mapping[str, LayerCursor] = field(default_factory=dict)

    def of(self, layer: str) -> LayerCursor:
        return self.layers.get(layer, LayerCursor())

    @classmethod
    def parse(cls, text: str | None) -> EventsCursor:
        if not text:
            return cls()
        layers = {}
        for layer, state in json.loads(text).items():
            asked = state.get("requested")
            layers[layer] = LayerCursor(
                int(state["covered_ms"]), Requested(**asked) if asked else None
            )
        return cls(layers)

    def serialize(self) -> str:
        return json.dumps(
            {
                layer: {
                    "covered_ms": state.covered_ms,
                    "requested": state.requested and vars(state.requested),
                }
                for layer, state in sorted(self.layers.items())
            }
        )


class NotAnEvent(ValueError):
    """A message that is not an EventBridge event with a ``detail-type``."""


def detail_type(message: QueuedMessage) -> str:
    try:
        event = json.loads(message.body)
    except ValueError as error:
        raise NotAnEvent(f"its body is not JSON ({error})") from None
    kind = event.get("detail-type") if isinstance(event, dict) else None
    if not isinstance(kind, str):
        raise NotAnEvent("its body is not an EventBridge event: no detail-type")
    return kind


def run_key(layer: str, newest: QueuedMessage) -> str:
    return f"every-election-{layer}-{newest.message_id}"


def confirm(cursor: EventsCursor, run_exists: Callable[[str], bool]) -> EventsCursor:
    """The cursor with each request whose run now exists counted as covering its events."""
    layers = dict(cursor.layers)
    for layer, state in cursor.layers.items():
        asked = state.requested
        if asked is not None and run_exists(asked.run_key):
            covered = max(state.covered_ms, asked.newest_ms, asked.at_ms - CLOCK_SKEW_MS)
            layers[layer] = LayerCursor(covered)
    return EventsCursor(layers)


def why_delete(
    message: QueuedMessage, cursor: EventsCursor, targets: Sequence[EventTarget]
) -> str | None:
    """Why ``message`` can go (not an event a target listens for, or covered by runs that
    exist for every layer it concerns), or None to keep it."""
    try:
        kind = detail_type(message)
    except NotAnEvent as error:
        return f"not an EE event: {error}"
    layers = [target.layer for target in targets if kind in target.events]
    if not layers:
        return f"not an EE event a layer listens for: detail-type {kind!r}"
    if all(message.sent_ms <= cursor.of(layer).covered_ms for layer in layers):
        return "covered by a run already requested"
    return None


def sort_out(
    messages: Iterable[QueuedMessage], cursor: EventsCursor, targets: Sequence[EventTarget]
) -> tuple[list[QueuedMessage], list[tuple[QueuedMessage, str]]]:
    """The messages to keep, and those that can go with why (:func:`why_delete`)."""
    kept, deletions = [], []
    for message in messages:
        reason = why_delete(message, cursor, targets)
        if reason is None:
            kept.append(message)
        else:
            deletions.append((message, reason))
    return kept, deletions


@dataclass(frozen=True)
class Decision:
    """What a tick does: the runs to request, the messages to delete (and why), the messages
    to make visible again, the new cursor, and per layer what it waits for."""

    requests: list[dg.RunRequest]
    deletions: list[tuple[QueuedMessage, str]]
    kept: list[QueuedMessage]
    cursor: EventsCursor
    waiting: list[str]


def decide(
    messages: Iterable[QueuedMessage],
    cursor: EventsCursor,
    now: float,
    *,
    targets: Sequence[EventTarget],
    quiet_seconds: float,
    run_exists: Callable[[str], bool],
) -> Decision:
    """The debounce, on the messages in the queue, at ``now`` (seconds since the epoch).

    Pure but for ``run_exists`` (whether a run with this key exists in the instance): the
    same messages, cursor and clock give the same decision, so a tick that fails is simply
    decided again. A message is among the deletions only if it is not an event a target
    listens for, or if runs that exist cover it for every layer it concerns."""
    unique = {message.message_id: message for message in messages}.values()
    layers = {target.layer: cursor.of(target.layer) for target in targets}
    cursor = confirm(EventsCursor(layers), run_exists)
    layers = dict(cursor.layers)
    events = [(m, detail_type(m)) for m in unique if why_delete(m, cursor, targets) is None]
    requests, waiting = [], []
    for target in targets:
        state = layers[target.layer]
        pending = [
            m for m, kind in events if kind in target.events and m.sent_ms > state.covered_ms
        ]
        asked = state.requested
        if asked is not None:
            requests.append(_request(target, asked))
            later = sum(message.sent_ms > asked.newest_ms for message in pending)
            waiting.append(
                f"waiting for run {asked.run_key} to be created"
                + (f" ({later} later {target.layer} events wait for it)" if later else "")
            )
            continue
        if not pending:
            continue
        newest = max(pending, key=lambda message: (message.sent_ms, message.message_id))
        quiet_for = max(0.0, now - newest.sent_ms / 1000)
        if quiet_seconds > 0 and quiet_for < quiet_seconds:
            waiting.append(
                f"{_events(len(pending))} for {target.layer}, "
                f"quiet for {quiet_for:.0f} s of {quiet_seconds:g}"
            )
            continue
        key = run_key(target.layer, newest)
        if run_exists(key):  # asked for before the cursor was lost: nothing new to ask
            layers[target.layer] = LayerCursor(max(state.covered_ms, newest.sent_ms))
            continue
        asked = Requested(key, newest.sent_ms, round(now * 1000), len(pending))
        layers[target.layer] = replace(state, requested=asked)
        requests.append(_request(target, asked))
    cursor = EventsCursor(layers)
    kept, deletions = sort_out(unique, cursor, targets)
    return Decision(requests, deletions, kept, cursor, waiting)


def _request(target: EventTarget, asked: Requested) -> dg.RunRequest:
    newest = datetime.fromtimestamp(asked.newest_ms / 1000, UTC)
    return dg.RunRequest(
        run_key=asked.run_key,
        job_name=target.job.name,
        tags={
            **target.tags,
            EVENTS_TAG: str(asked.events),
            NEWEST_EVENT_TAG: newest.isoformat(timespec="milliseconds"),
        },
    )


def _events(count: int) -> str:
    return f"{count} event" + ("" if count == 1 else "s")


def _validated(targets: Sequence[EventTarget]) -> list[EventTarget]:
    layers = [target.layer for target in targets]
    if not targets or len(set(layers)) != len(layers):
        raise ValueError(f"EE event targets need one entry per layer, got layers {layers}")
    for target in targets:
        if not target.events:
            raise ValueError(f"the EE event target for {target.layer} lists no event type")
    return list(targets)


def build_every_election_events_sensor(
    queue_url: str,
    quiet_seconds: float,
    interval_seconds: int,
    targets: Sequence[EventTarget],
    *,
    receive_wait_seconds: int = 1,
) -> dg.SensorDefinition:
    """The sensor on ``queue_url``; ``receive_wait_seconds`` is each receive's long poll."""
    targets = _validated(targets)
    jobs = list({target.job.name: target.job for target in targets}.values())

    @dg.sensor(
        name=SENSOR_NAME,
        jobs=jobs,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Rebuilds each layer EE's change events concern, {quiet_seconds:g} s after "
        "a burst of them; deletes messages that are not EE events, logging each.",
    )
    def every_election_events(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        """Reads EE's change events from the queue; see the module's docstring for the
        contract (at-least-once, one run per burst and layer, bad messages logged and deleted).
        """
        queue = ChangeEventQueue(queue_url, wait_seconds=receive_wait_seconds)

        @cache
        def run_exists(key: str) -> bool:
            filters = dg.RunsFilter(tags={RUN_KEY_TAG: key, SENSOR_NAME_TAG: SENSOR_NAME})
            return bool(context.instance.get_run_ids(filters=filters, limit=1))

        cursor = confirm(EventsCursor.parse(context.cursor), run_exists)
        held: list[QueuedMessage] = []
        try:
            dropped = _drain(queue, cursor, targets, held, context.log)
            decision = decide(
                held,
                cursor,
                time.time(),
                targets=targets,
                quiet_seconds=quiet_seconds,
                run_exists=run_exists,
            )
        except BaseException:
            with suppress(Exception):  # else they reappear when their visibility ends
                queue.release(held)
            raise
        _log_deletions(context.log, decision.deletions)
        failures = queue.delete([message for message, _ in decision.deletions])
        failures += queue.release(decision.kept)
        for failure in failures:
            context.log.warning(f"SQS refused message {failure.message_id}: {failure.reason}")
        context.log.info(
            f"{len(held) + dropped} messages seen; {dropped + len(decision.deletions)} deleted; "
            f"{len(decision.kept)} kept on the queue; requested "
            + (", ".join(_described(r) for r in decision.requests) or "nothing")
            + "".join(f"; {note}" for note in decision.waiting)
        )
        result_cursor = decision.cursor.serialize()
        if decision.requests:
            return dg.SensorResult(run_requests=decision.requests, cursor=result_cursor)
        return dg.SensorResult(
            skip_reason="; ".join(decision.waiting) or "no EE events waiting", cursor=result_cursor
        )

    return every_election_events


def _drain(
    queue: ChangeEventQueue,
    cursor: EventsCursor,
    targets: Sequence[EventTarget],
    held: list[QueuedMessage],
    log: logging.Logger,
) -> int:
    """Receive every visible message into ``held``, deleting the ones that can go at once
    (which, on a FIFO queue, lets their group's later messages be received); how many went."""
    dropped = received = 0
    while True:
        if received >= MAX_MESSAGES_PER_TICK:
            log.info(f"{received} messages received: the rest wait for the next tick")
            break
        batch = queue.receive()
        if not batch:
            break
        received += len(batch)
        kept, deletions = sort_out(batch, cursor, targets)
        held.extend(kept)
        _log_deletions(log, deletions)
        for failure in queue.delete([message for message, _ in deletions]):
            log.warning(f"SQS refused to delete {failure.message_id}: {failure.reason}")
        dropped += len(deletions)
    return dropped


def _log_deletions(log: logging.Logger, deletions: list[tuple[QueuedMessage, str]]) -> None:
    covered = 0
    for message, reason in deletions:
        if reason.startswith("not an EE event"):
            log.warning(f"deleting message {message.message_id}: {reason}")
        else:
            covered += 1
    if covered:
        log.info(f"deleting {covered} events covered by runs already requested")


def _described(request: dg.RunRequest) -> str:
    return f"{request.job_name} ({request.run_key}, {request.tags[EVENTS_TAG]} events)"
