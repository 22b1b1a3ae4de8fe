"""The data root's lease: one bake at a time on a data root, whichever door it comes through.

Bakes share a data root's tables (the AddressBase tables, the ballots, the joined tables, the
versions and the published layers), so two bakes interleaving their steps would publish a layer
made of both. A bake therefore holds the root's lease from its first step to its last, and so
does a rollback. The lease lives in the store itself, so it binds every door at once: the
command line, the daemon's runs, the UI, a second machine. A second bake waits for it (or
refuses at once), naming the holder and since when.

Each store implements :class:`Lease` with the strongest primitive it has: an OS lock on a local
root (released by the kernel however the holder dies), a conditional write on S3 (expiring
unless renewed, so a killed holder's lease is taken over safely). While the lease is held,
:meth:`Lease.confirm` says whether it is still this holder's; the store calls it before every
write, so a bake that lost its lease (an S3 holder stalled past its expiry) writes nothing more.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

LEASE_PREFIX = "_lease/"
"""Where a store keeps its lease, under the data root; no table or layer lives there."""
NOTICE_SECONDS = 60.0
"""While waiting, how often the holder is named again (and whenever it changes)."""


class LeaseError(Exception):
    """The lease could not be taken or was lost; the message names the data root and holder."""


class LeaseBusy(LeaseError):
    """Another bake holds the data root's lease, and waiting for it ran out (or was not asked)."""


class LeaseLost(LeaseError):
    """The lease expired or was taken over while held: this bake must not write any more."""


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds (or asks for) a lease: shown to whoever waits for it."""

    holder: str
    """What is baking: ``run 1a2b3c4d of current_elections_layer``, ``databaker rollback``."""
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    since: str = ""
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Unique to one holder: tells its lease from any other, even of the same process."""

    def now(self) -> LeaseHolder:
        """This holder, taking the lease now."""
        return replace(self, since=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def describe(self) -> str:
        since = f" since {self.since}" if self.since else ""
        return f"{self.holder} (pid {self.pid} on {self.host}){since}"

    def to_json(self, **extra: object) -> bytes:
        return json.dumps({**asdict(self), **extra}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LeaseHolder | None:
        """The holder a lease names; None if it cannot be read (being written, or damaged)."""
        try:
            fields = json.loads(data)
            return cls(
                holder=str(fields["holder"]),
                host=str(fields.get("host", "?")),
                pid=int(fields.get("pid", 0)),
                since=str(fields.get("since", "")),
                token=str(fields.get("token", "")),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def describe(holder: LeaseHolder | None) -> str:
    return holder.describe() if holder else "another bake"


class Lease(ABC):
    """One store's lease on its data root, asked for by one holder."""

    poll_seconds: float = 0.5
    """How often a waiting holder asks again."""

    def __init__(self, where: str, holder: LeaseHolder) -> None:
        self.where = where
        self.holder = holder

    @abstractmethod
    def try_acquire(self) -> tuple[bool, LeaseHolder | None]:
        """Take the lease if it is free. Returns whether it was taken, and the other holder:
        the one holding it when not taken, or the expired one it was taken over from."""

    @abstractmethod
    def release(self) -> None:
        """Give the lease back; a lease already lost is left to its new holder. Never raises:
        the bake is done by then, and a lease not given back is freed anyway (by the kernel,
        or by expiring)."""

    @abstractmethod
    def confirm(self) -> None:
        """Raise :class:`LeaseLost` unless the lease is certainly still this holder's."""

    @contextmanager
    def held(
        self, wait_seconds: float, notify: Callable[[str], None] | None = None
    ) -> Iterator[LeaseHolder]:
        """Hold the lease for the block, waiting up to ``wait_seconds`` for it; raise
        :class:`LeaseBusy` naming the holder when it stays taken."""
        deadline = time.monotonic() + wait_seconds
        named: tuple[LeaseHolder | None, float] | None = None
        while True:
            self.holder = self.holder.now()
            acquired, other = self.try_acquire()
            if acquired:
                break
            now = time.monotonic()
            if now >= deadline:
                waited = f" (waited {wait_seconds:g} s)" if wait_seconds else ""
                raise LeaseBusy(
                    f"another bake holds the data root {self.where}: {describe(other)}; "
                    f"one bake at a time per data root{waited}"
                )
            if notify and (named is None or named[0] != other or now - named[1] > NOTICE_SECONDS):
                notify(f"waiting for the lease on {self.where}, held by {describe(other)}")
                named = (other, now)
            time.sleep(min(self.poll_seconds, max(deadline - now, 0.01)))
        if other is not None and notify:
            notify(f"took over the lease on {self.where} from {describe(other)}: it had expired")
        try:
            yield self.holder
        finally:
            self.release()
