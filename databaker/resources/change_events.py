"""The SQS queue EE's change events arrive on (the target of the EventBridge rule).

Each message's body is the EventBridge event as JSON; SQS stamps it with ``SentTimestamp``, the
time it reached the queue (in milliseconds). The queue may be FIFO, where a message received and
not yet deleted or released hides the later messages of its group, or standard.

The client comes from :func:`databaker.resources.aws.sqs_client` (the standard AWS chain;
``AWS_ENDPOINT_URL_SQS`` points it elsewhere). The region is the one in an AWS queue URL
(``https://sqs.eu-west-2.amazonaws.com/...``), else the environment's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from databaker.resources.aws import sqs_client

_BATCH = 10
"""The most messages SQS receives, deletes or releases in one call."""
_REGION_IN_URL = re.compile(r"^https://sqs[.-]([a-z0-9-]+)\.amazonaws\.com(\.cn)?/")


@dataclass(frozen=True)
class QueuedMessage:
    """A message received from the queue: what the sensor decides on, and its receipt."""

    message_id: str
    body: str
    sent_ms: int
    receipt_handle: str = ""


@dataclass(frozen=True)
class Failure:
    """A message SQS would not delete or release, and AWS's reason."""

    message_id: str
    reason: str


class ChangeEventQueue:
    """Receive, delete and release (make visible again) the messages of one queue."""

    def __init__(
        self,
        url: str,
        *,
        wait_seconds: int = 1,
        visibility_seconds: int = 120,
        client: Any = None,
    ) -> None:
        """``wait_seconds`` is the long poll of each receive: a short poll (0) asks a sample of
        SQS's servers and may miss messages of a standard queue, a long one asks them all.
        ``visibility_seconds`` must cover a tick: the messages received stay hidden from other
        receives that long unless released."""
        region = _REGION_IN_URL.match(url)
        self.url = url
        self.wait_seconds = wait_seconds
        self.visibility_seconds = visibility_seconds
        self.client = client or sqs_client(region.group(1) if region else None)

    def receive(self) -> list[QueuedMessage]:
        """Up to ten visible messages, hidden for ``visibility_seconds`` from now."""
        response = self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=_BATCH,
            WaitTimeSeconds=self.wait_seconds,
            VisibilityTimeout=self.visibility_seconds,
            MessageSystemAttributeNames=["SentTimestamp"],
        )
        return [
            QueuedMessage(
                message_id=message["MessageId"],
                body=message.get("Body", ""),
                sent_ms=int(message["Attributes"]["SentTimestamp"]),
                receipt_handle=message["ReceiptHandle"],
            )
            for message in response.get("Messages", [])
        ]

    def delete(self, messages: Sequence[QueuedMessage]) -> list[Failure]:
        """Delete ``messages`` for good; the ones SQS refused (e.g. an expired receipt) come
        back later and are decided on again."""
        return self._batched(self.client.delete_message_batch, messages, {})

    def release(self, messages: Sequence[QueuedMessage]) -> list[Failure]:
        """Make ``messages`` visible again at once (the queue keeps them pending); the ones SQS
        refused come back when their visibility timeout ends."""
        return self._batched(
            self.client.change_message_visibility_batch, messages, {"VisibilityTimeout": 0}
        )

    def _batched(
        self, call: Any, messages: Sequence[QueuedMessage], extra: dict[str, Any]
    ) -> list[Failure]:
        failures = []
        for batch in _chunks(messages):
            entries = [
                {"Id": str(n), "ReceiptHandle": message.receipt_handle, **extra}
                for n, message in enumerate(batch)
            ]
            response = call(QueueUrl=self.url, Entries=entries)
            failures += [
                Failure(batch[int(failed["Id"])].message_id, _reason(failed))
                for failed in response.get("Failed", [])
            ]
        return failures


def _chunks(messages: Sequence[QueuedMessage]) -> Iterator[Sequence[QueuedMessage]]:
    for start in range(0, len(messages), _BATCH):
        yield messages[start : start + _BATCH]


def _reason(failed: dict[str, Any]) -> str:
    return f"{failed.get('Code', 'UnknownError')}: {failed.get('Message', '')}"
