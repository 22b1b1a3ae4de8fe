"""The layer-store seam: objects under a root, addressed by relative keys.

Keys are POSIX-style relative paths (``current_elections_parquet/SW1A.parquet``); a prefix is a
key ending in ``/``. The local store and the S3 store are siblings with these same methods, so
assets and sensors never know which one they are talking to.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa


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

    @abstractmethod
    def open_output(self, key: str) -> pa.NativeFile:
        """A stream writing the object piece by piece, for tables too large to hold in memory.

        Only for staging areas: until the stream is closed the object may be absent or partial.
        """

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        """Write the whole object at once: readers see the old content or the new, never half."""

    @abstractmethod
    def delete(self, keys: Iterable[str]) -> None:
        """Delete the objects; keys that do not exist are ignored."""

    @abstractmethod
    def move(self, source: str, target: str) -> None:
        """Move one object, replacing ``target`` in one step."""

    @abstractmethod
    def copy(self, source: str, target: str) -> None:
        """Copy one object to ``target`` without reading it through this process."""

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
