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

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa
from pydantic import Field, PrivateAttr

from databaker.resources.lease import Lease, LeaseHolder

STAGING = "_staging/"
"""Work in progress of the runs, one prefix each: only the lease's holder is running, so on
taking the lease whatever is there was left by a bake that died."""
LEASE_WAIT_SECONDS = 6 * 3600.0


class LayerStoreError(Exception):
    """A store operation was refused or failed; the message names the key."""


@dataclass(frozen=True)
class Replacement:
    """What replacing the objects under a prefix did."""

    written: tuple[str, ...]
    deleted: tuple[str, ...]


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

    def replace_prefix(self, source: str, target: str) -> Replacement:
        """Make the objects under ``target`` exactly those staged under ``source``.

        New objects are moved in first, one atomic move each, and only then are the target's
        objects that were not replaced deleted; ``source`` is left empty.
        """
        source, target = as_prefix(source), as_prefix(target)
        staged = self.list_keys(source)
        written = [target + key[len(source) :] for key in staged]
        for old, new in zip(staged, written, strict=True):
            self.move(old, new)
        keep = set(written)
        stale = [key for key in self.list_keys(target) if key not in keep]
        self.delete(stale)
        return Replacement(written=tuple(written), deleted=tuple(stale))
