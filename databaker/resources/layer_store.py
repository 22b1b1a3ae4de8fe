"""The layer-store seam: objects under a root, addressed by relative keys.

Keys are POSIX-style relative paths (``current_elections_parquet/SW1A.parquet``); a prefix is a
key ending in ``/``. The local store and the S3 store are siblings with these same methods, so
assets and sensors never know which one they are talking to.

A run that uses the store holds the data root's lease (:mod:`databaker.resources.lease`) from
its first step to its last: Dagster sets the store up once per run (every job runs its steps in
one process), and :meth:`LayerStore.yield_for_execution` takes the lease then, waiting for any
other bake of the root, and gives it back when the run ends. Every write is fenced by it.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

import dagster as dg
import pyarrow as pa
from pydantic import Field, PrivateAttr

from databaker.resources.lease import Lease, LeaseHolder

STAGING = "_staging/"
"""Work in progress of the runs, one prefix each: only the lease's holder is running, so on
taking the lease whatever is there was left by a bake that died."""
LEASE_WAIT_SECONDS = 6 * 3600.0

T = TypeVar("T")
_worker = threading.local()
"""``busy`` in the threads of :meth:`LayerStore.for_each`."""


class LayerStoreError(Exception):
    """A store operation was refused or failed; the message names the key."""


@dataclass(frozen=True)
class Replacement:
    """What replacing the objects under a prefix did."""

    written: tuple[str, ...]
    deleted: tuple[str, ...]


def describes(key: str) -> bool:
    """Whether the object at ``key`` describes the other objects of its folder rather than
    holding data: its name starts with ``_`` (a partition's record, a marker)."""
    return key.rpartition("/")[2].startswith("_")


def check_key(key: str, *, prefix: bool = False) -> str:
    """Refuse keys that could escape the store's root or that are ambiguous."""
    body = key[:-1] if prefix and key.endswith("/") else key
    parts = body.split("/")
    if (
        not body
        or key.startswith("/")
        or "\\" in key
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise LayerStoreError(f"invalid store key {key!r}: use a relative path like 'a/b.parquet'")
    return key


def as_prefix(key: str) -> str:
    """``key`` with exactly one trailing slash, checked."""
    return check_key(key.rstrip("/") + "/", prefix=True)


class LayerStore(dg.ConfigurableResource, ABC):
    """Lists, reads, writes and deletes the objects that make up the layers."""

    lease_wait_seconds: float = Field(
        default=LEASE_WAIT_SECONDS,
        ge=0,
        description="How long a run waits for another bake of this data root to end before "
        "failing (0: fail at once).",
    )

    _lease: Lease | None = PrivateAttr(default=None)

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[LayerStore]:
        """For a run: hold the data root's lease while the run lasts, and first clear the
        staging area of bakes that died. Sensors and schedules, which only read, take none."""
        run = context.run
        if run is None:
            yield self
            return
        holder = LeaseHolder(f"run {run.run_id[:8]} of {run.job_name}")
        with self.leased(holder, notify=context.log.info):
            abandoned = self.delete_prefix(STAGING)
            if abandoned:
                context.log.info(f"removed {len(abandoned)} staged object(s) of bakes that died")
            yield self

    @contextmanager
    def leased(
        self, holder: LeaseHolder, notify: Callable[[str], None] | None = None
    ) -> Iterator[LeaseHolder]:
        """Hold the data root's lease for the block (see :mod:`databaker.resources.lease`)."""
        lease = self.new_lease(holder)
        with lease.held(self.lease_wait_seconds, notify) as held:
            self._lease = lease
            try:
                yield held
            finally:
                self._lease = None

    def confirm_lease(self) -> None:
        """Raise unless this store's lease, if it holds one, is still its own."""
        if self._lease is not None:
            self._lease.confirm()

    @abstractmethod
    def new_lease(self, holder: LeaseHolder) -> Lease:
        """This data root's lease, asked for by ``holder``."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """Where a query engine finds ``key`` (an absolute path, or ``s3://...``).

        A prefix (a key ending in ``/``) gives a folder location that also ends in ``/``.
        """

    @abstractmethod
    def uri_for_writing(self, key: str) -> str:
        """Like :meth:`uri`, for an engine about to write ``key`` (a file, or a folder prefix)."""

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Every object key under ``prefix``, sorted; empty if there is none."""

    @abstractmethod
    def list_folders(self, prefix: str) -> list[str]:
        """The names of the folders right under ``prefix`` (the next part of the keys under it
        that go deeper), sorted: one listing of names, however many objects they hold."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether the object is there."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """The object's content; ``LayerStoreError`` if it does not exist."""

    @abstractmethod
    def open_input(self, key: str) -> pa.NativeFile:
        """A seekable reader of the object, so parquet footers are read without the whole file."""

    def open_output(self, key: str) -> pa.NativeFile:
        """A stream writing the object piece by piece, for tables too large to hold in memory.

        Only for staging areas: until the stream is closed the object may be absent or partial.
        """
        self.confirm_lease()
        return self._open_output(key)

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write the whole object at once: readers see the old content or the new, never half."""
        self.confirm_lease()
        self._write_bytes(key, data)

    def delete(self, keys: Iterable[str]) -> None:
        """Delete the objects; keys that do not exist are ignored."""
        self.confirm_lease()
        self._delete(keys)

    def move(self, source: str, target: str) -> None:
        """Move one object, replacing ``target`` in one step."""
        self.confirm_lease()
        self._move(source, target)

    def copy(self, source: str, target: str) -> None:
        """Copy one object to ``target`` without reading it through this process."""
        self.confirm_lease()
        self._copy(source, target)

    def copy_all(
        self, pairs: Sequence[tuple[str, str]], copied: Callable[[], None] | None = None
    ) -> None:
        """Copy each ``(source, target)`` as :meth:`copy` does, :meth:`in_flight` at a time,
        calling ``copied`` after each. On a failure no further copy starts; the error is raised
        once those under way have ended, so ``copied`` has counted every copy made."""

        def copy(pair: tuple[str, str]) -> None:
            self.copy(*pair)

        self.for_each(copy, pairs, copied)

    def move_all(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Move each ``(source, target)`` as :meth:`move` does, :meth:`in_flight` at a time."""

        def move(pair: tuple[str, str]) -> None:
            self.move(*pair)

        self.for_each(move, pairs)

    @contextmanager
    def writes(self) -> Iterator[Callable[[str, bytes], None]]:
        """A ``write(key, data)`` for many objects, each written whole as by
        :meth:`write_bytes`, :meth:`in_flight` at a time while the caller goes on (from one
        thread or several). Every write has ended when the block ends; the first failure is
        raised then, or by a later ``write``, and no write starts after it."""
        if self.in_flight() <= 1:
            yield self.write_bytes
            return
        failures: list[BaseException] = []
        slots = threading.BoundedSemaphore(2 * self.in_flight())

        def write_one(key: str, data: bytes) -> None:
            try:
                if not failures:
                    self.write_bytes(key, data)
            except BaseException as error:
                failures.append(error)
            finally:
                slots.release()

        with ThreadPoolExecutor(self.in_flight()) as pool:

            def write(key: str, data: bytes) -> None:
                if failures:
                    raise failures[0]
                slots.acquire()
                pool.submit(write_one, key, data)

            try:
                yield write
            except BaseException as error:
                failures.append(error)
                raise
        if failures:
            raise failures[0]

    def read_all(self, keys: Sequence[str]) -> Iterator[bytes]:
        """Each object's content, in the order of ``keys``, read :meth:`in_flight` at a time
        ahead of the caller."""
        if self.in_flight() <= 1:
            yield from (self.read_bytes(key) for key in keys)
            return
        remaining = iter(keys)
        with ThreadPoolExecutor(self.in_flight()) as pool:
            first = islice(remaining, 2 * self.in_flight())
            ahead = deque(pool.submit(self.read_bytes, key) for key in first)
            while ahead:
                data = ahead.popleft().result()
                ahead.extend(pool.submit(self.read_bytes, key) for key in islice(remaining, 1))
                yield data

    def in_flight(self) -> int:
        """How many requests this store keeps going at once in :meth:`copy_all`,
        :meth:`move_all`, :meth:`writes` and :meth:`read_all`: 1 where a request does not wait
        on a network."""
        return 1

    def for_each(
        self,
        action: Callable[[T], None],
        items: Sequence[T],
        done: Callable[[], None] | None = None,
    ) -> None:
        """``action`` on every item, :meth:`in_flight` at a time; ``done`` after each that
        succeeded. The first failure cancels what has not started and is raised once the
        actions under way have ended. Called from an action, it works through its items in
        that action's thread."""
        if self.in_flight() <= 1 or len(items) <= 1 or getattr(_worker, "busy", False):
            for item in items:
                action(item)
                if done is not None:
                    done()
            return

        def work(item: T) -> None:
            _worker.busy = True
            action(item)

        failure: BaseException | None = None
        with ThreadPoolExecutor(self.in_flight()) as pool:
            futures = [pool.submit(work, item) for item in items]
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                problem = future.exception()
                if problem is None:
                    if done is not None:
                        done()
                elif failure is None:
                    failure = problem
                    for waiting in futures:
                        waiting.cancel()
        if failure is not None:
            raise failure

    @abstractmethod
    def _open_output(self, key: str) -> pa.NativeFile: ...

    @abstractmethod
    def _write_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def _delete(self, keys: Iterable[str]) -> None: ...

    @abstractmethod
    def _move(self, source: str, target: str) -> None: ...

    @abstractmethod
    def _copy(self, source: str, target: str) -> None: ...

    def delete_prefix(self, prefix: str) -> list[str]:
        """Delete everything under ``prefix``; return what was deleted."""
        keys = self.list_keys(as_prefix(prefix))
        self.delete(keys)
        return keys

    def replace_prefix(self, source: str, target: str, *, copy: bool = False) -> Replacement:
        """Make the objects under ``target`` exactly those staged under ``source``.

        New objects are moved in first, one atomic move each, and only then are the target's
        objects that were not replaced deleted; ``source`` is left empty (with ``copy``, they
        are copied, and ``source`` is left as it was). Objects that describe the others
        (:func:`describes`: a letter's record, an export's ``_SUCCESS``) are the exception: the
        target's are deleted before anything moves and the staged ones move in last. A
        replacement cut short therefore leaves objects with no description, which readers take
        as nothing known, never one that describes objects not there.
        """
        source, target = as_prefix(source), as_prefix(target)
        staged = self.list_keys(source)
        existing = self.list_keys(target)
        pairs = [(key, target + key[len(source) :]) for key in staged]
        written = {moved for _, moved in pairs}
        bring = self.copy_all if copy else self.move_all
        self.delete([key for key in existing if describes(key)])
        bring([pair for pair in pairs if not describes(pair[1])])
        stale = [key for key in existing if key not in written]
        self.delete([key for key in stale if not describes(key)])
        bring([pair for pair in pairs if describes(pair[1])])
        return Replacement(written=tuple(moved for _, moved in pairs), deleted=tuple(stale))
