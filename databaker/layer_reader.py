"""Reading a published layer: the addresses of a postcode with their ballot IDs, one address by
UPRN, and the distinct ballots of a postcode. One outcode file per question, no geometry.

Usable without Dagster (only pyarrow): a consumer points :class:`LayerReader` at the layer's
location, a local folder or ``s3://bucket/prefix/current_elections_parquet`` (S3 credentials
and endpoint from the standard AWS environment).

An outcode file's rows are sorted by postcode and cut into row groups whose footer statistics
give each group's first and last postcode, so a question decodes the footer and only the group
(or the two groups) holding its postcode; a small file is fetched whole, in one read. Footers
and row groups read recently are cached, least recently used first out, within a memory budget
and for at most ``max_age`` seconds (so that a long-lived reader sees a new publish); each group
is indexed by postcode once, so a warm lookup is a dictionary lookup and a slice. A group is
read only from a file whose footer equals the cached one (row counts, sizes, offsets and
statistics of every column chunk), and another footer drops the outcode's cached groups, so
one answer does not mix two publishes. That an outcode is missing is not cached: it may be
published next.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from itertools import repeat
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

POSTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}")
"""A UK postcode without its space: outward code (area, district), inward code (3)."""
OUTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?")
COLUMNS = ["uprn", "address", "postcode", "ballot_ids"]
CACHE_BYTES = 256 << 20
WHOLE_FILE_BYTES = 4 << 20
"""Files up to this size are read in one go; the largest outcode files are a few hundred KB."""
MAX_AGE = 300.0


class InvalidPostcode(ValueError):
    """The text is not a UK postcode, however written."""


class Found(Enum):
    ADDRESSES = "addresses"
    """The postcode's addresses (each may have no ballots)."""
    NO_ELECTIONS = "no elections"
    """The postcode's outcode is in the layer with no address having a ballot."""
    UNKNOWN_POSTCODE = "no such postcode in this layer"
    UNKNOWN_OUTCODE = "no such outcode in this layer"


class Address(NamedTuple):
    """One address of the layer. A named tuple, as answers are built many thousand times a
    second; ordered by UPRN first, as a postcode's addresses are."""

    uprn: int
    address: str
    postcode: str
    ballot_ids: tuple[str, ...]


@dataclass(frozen=True)
class PostcodeLookup:
    postcode: str
    found: Found
    addresses: tuple[Address, ...] = ()

    @property
    def ballot_ids(self) -> tuple[str, ...]:
        """The distinct ballots of the postcode's addresses, sorted: a "your elections" page."""
        return tuple(sorted({i for address in self.addresses for i in address.ballot_ids}))


def normalise_postcode(text: str) -> str:
    """The postcode as the layer stores it (``SW1A 1AA``), from any common way of writing it
    (``sw1a1aa``, `` SW1A  1AA ``); raise :class:`InvalidPostcode` otherwise."""
    compact = "".join(text.split()).upper()
    if not POSTCODE.fullmatch(compact):
        raise InvalidPostcode(f"{text!r} is not a UK postcode (like SW1A 1AA)")
    return f"{compact[:-3]} {compact[-3:]}"


@dataclass(frozen=True)
class ReaderStats:
    """What a reader has read from the layer since it was made: a service's hit ratio."""

    lookups: int
    footers_read: int
    """Files opened, each for its footer (and the row groups needed then)."""
    row_groups_read: int


class LayerReader:
    """Answers lookups from the layer at ``location``; safe to share between threads."""

    def __init__(
        self, location: str, *, cache_bytes: int = CACHE_BYTES, max_age: float = MAX_AGE
    ) -> None:
        self.location = location
        self._filesystem, path = pafs.FileSystem.from_uri(_as_uri(location))
        self._path = path.rstrip("/")
        self._cache: OrderedDict[tuple[str, int], _Footer | _Group] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._max_age = max_age
        self._cached_bytes = 0
        self._cached_of: dict[str, set[int]] = {}
        """Each outcode's cache entries (footer, row groups), to drop them together."""
        self._counts = {"lookups": 0, "footers_read": 0, "row_groups_read": 0}
        self._lock = threading.Lock()

    @property
    def cached_row_groups(self) -> tuple[tuple[str, int], ...]:
        """The ``(outcode, row group)`` pairs cached, least recently used first."""
        with self._lock:
            return tuple(key for key in self._cache if key[1] != _FOOTER)

    @property
    def stats(self) -> ReaderStats:
        with self._lock:
            return ReaderStats(**self._counts)

    def addresses(self, postcode: str) -> PostcodeLookup:
        """Every address of ``postcode`` with its ballot IDs, in UPRN order."""
        canonical = normalise_postcode(postcode)
        with self._lock:
            self._counts["lookups"] += 1
        found = self._row_groups(canonical[:-4], canonical)
        if found is None:
            return PostcodeLookup(canonical, Found.UNKNOWN_OUTCODE)
        footer, groups = found
        if footer.num_rows == 0:
            return PostcodeLookup(canonical, Found.NO_ELECTIONS)
        if len(groups) == 1:
            addresses = groups[0].addresses(canonical)
        else:
            addresses = tuple(sorted(a for group in groups for a in group.addresses(canonical)))
        if not addresses:
            return PostcodeLookup(canonical, Found.UNKNOWN_POSTCODE)
        return PostcodeLookup(canonical, Found.ADDRESSES, addresses)

    def ballots(self, postcode: str) -> tuple[str, ...]:
        """The distinct ballot IDs of ``postcode``'s addresses; empty where there are none."""
        return self.addresses(postcode).ballot_ids

    def address(
        self, uprn: int, *, postcode: str | None = None, outcode: str | None = None
    ) -> Address | None:
        """The address ``uprn`` in ``outcode`` (or the outcode of ``postcode``); ``None`` if the
        outcode has no such address, or no ballot at all.

        Given a postcode, its row groups are looked in first; otherwise (or if the address has
        another postcode of the outcode now) the file's UPRN and postcode columns are read to
        find the address's postcode.
        """
        if (postcode is None) == (outcode is None):
            raise ValueError("give the outcode or the postcode of the address, not both")
        if postcode is not None:
            postcode = normalise_postcode(postcode)
            found = self._address_in(uprn, postcode)
            if found is not None:
                return found
        actual = self._postcode_of(uprn, outcode.upper() if outcode else postcode[:-4])
        return None if actual is None else self._address_in(uprn, actual)

    def _address_in(self, uprn: int, postcode: str) -> Address | None:
        found = self.addresses(postcode).addresses
        return next((address for address in found if address.uprn == uprn), None)

    def _row_groups(self, outcode: str, postcode: str) -> tuple[_Footer, list[_Group]] | None:
        """The outcode's footer and the row groups that may hold ``postcode``, from the cache
        when all are there, else read; ``None`` when the layer has no file for the outcode."""
        footer = self._cached(outcode, _FOOTER)
        if footer is not None:
            wanted = footer.groups_for(postcode)
            groups = [self._cached(outcode, g) for g in wanted]
            if None not in groups:
                return footer, groups
        return self._read(outcode, postcode, footer)

    def _read(
        self, outcode: str, postcode: str, known: _Footer | None
    ) -> tuple[_Footer, list[_Group]] | None:
        if not OUTCODE.fullmatch(outcode):
            return None
        try:
            with self._filesystem.open_input_file(self._file(outcode)) as source:
                parquet = _open(_whole_if_small(source))
                metadata = parquet.metadata
                footer = known
                if known is None or not metadata.equals(known.metadata):
                    footer = _Footer.of(metadata)
                    self._forget(outcode)
                    self._remember((outcode, _FOOTER), footer)
                groups, read = [], 0
                for g in footer.groups_for(postcode):
                    group = self._cached(outcode, g)
                    if group is None:
                        # A thread pool costs more than it saves on a group this small.
                        table = parquet.read_row_group(g, columns=COLUMNS, use_threads=False)
                        group, read = _Group.of(table), read + 1
                        self._remember((outcode, g), group)
                    groups.append(group)
        except FileNotFoundError:
            self._forget(outcode)
            return None
        with self._lock:
            self._counts["footers_read"] += 1
            self._counts["row_groups_read"] += read
        return footer, groups

    def _postcode_of(self, uprn: int, outcode: str) -> str | None:
        if not OUTCODE.fullmatch(outcode):
            return None
        try:
            with self._filesystem.open_input_file(self._file(outcode)) as source:
                parquet = pq.ParquetFile(source)
                if parquet.metadata.num_rows == 0:
                    return None
                table = parquet.read(columns=["uprn", "postcode"], use_threads=False)
        except FileNotFoundError:
            return None
        rows = np.flatnonzero(pc.equal(table["uprn"].cast(pa.int64()), uprn))
        return table["postcode"][int(rows[0])].as_py() if len(rows) else None

    def _file(self, outcode: str) -> str:
        return f"{self._path}/{outcode}.parquet"

    def _cached(self, outcode: str, group: int) -> Any:
        """The fresh cache entry ``(outcode, group)``, if there is one."""
        with self._lock:
            entry = self._cache.get((outcode, group))
            if entry is None or time.monotonic() - entry.read_at > self._max_age:
                return None
            self._cache.move_to_end((outcode, group))
            return entry

    def _remember(self, key: tuple[str, int], entry: _Footer | _Group) -> None:
        with self._lock:
            self._drop(key)
            self._cache[key] = entry
            self._cached_bytes += entry.nbytes
            self._cached_of.setdefault(key[0], set()).add(key[1])
            while self._cached_bytes > self._cache_bytes and len(self._cache) > 1:
                self._drop(next(iter(self._cache)))

    def _forget(self, outcode: str) -> None:
        """Drop the outcode's footer and row groups: the file changed or went."""
        with self._lock:
            for part in list(self._cached_of.get(outcode, ())):
                self._drop((outcode, part))

    def _drop(self, key: tuple[str, int]) -> None:
        """Drop one cache entry; the lock is held."""
        entry = self._cache.pop(key, None)
        if entry is not None:
            self._cached_bytes -= entry.nbytes
            parts = self._cached_of[key[0]]
            parts.discard(key[1])
            if not parts:
                del self._cached_of[key[0]]


_FOOTER = -1
"""The cache key's second part for an outcode's footer; row groups count from 0."""


@dataclass(frozen=True)
class _Footer:
    """An outcode file's footer, with each row group's first and last postcode."""

    metadata: pq.FileMetaData
    lows: tuple[str | None, ...]
    highs: tuple[str | None, ...]
    read_at: float

    @property
    def num_rows(self) -> int:
        return self.metadata.num_rows

    @property
    def nbytes(self) -> int:
        return self.metadata.serialized_size

    @classmethod
    def of(cls, metadata: pq.FileMetaData) -> _Footer:
        names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
        column = names.index("postcode") if "postcode" in names else None
        lows, highs = [], []
        for g in range(metadata.num_row_groups if metadata.num_rows else 0):
            statistics = None if column is None else metadata.row_group(g).column(column).statistics
            known = (
                statistics is not None
                and statistics.has_min_max
                and isinstance(statistics.min, str)
                and isinstance(statistics.max, str)
            )
            lows.append(statistics.min if known else None)
            highs.append(statistics.max if known else None)
        return cls(metadata, tuple(lows), tuple(highs), time.monotonic())

    def groups_for(self, postcode: str) -> list[int]:
        """The row groups that may hold ``postcode``: those whose range covers it, and any
        group without statistics (a file written by another tool)."""
        return [
            g
            for g, (low, high) in enumerate(zip(self.lows, self.highs, strict=True))
            if low is None or high is None or low <= postcode <= high
        ]


@dataclass(frozen=True)
class _Group:
    """A row group, indexed by postcode when read: all the work a cold read does beyond
    decoding; a lookup converts only its postcode's rows."""

    table: pa.Table
    postcodes: dict[str, int]
    """Each postcode's position in ``starts`` and ``ends``."""
    starts: list[int]
    ends: list[int]
    """Each postcode's rows, ``start`` to ``end``: the file is sorted by postcode. Plain ints in
    two lists rather than a tuple per postcode: the garbage collector tracks tuples, and a
    service holding thousands of cached groups would pay for them in its collections."""
    nbytes: int
    read_at: float

    @classmethod
    def of(cls, table: pa.Table) -> _Group:
        """Index a group read with its postcodes dictionary-encoded (as they are stored): the
        runs of equal postcodes are then found on integer codes."""
        table = table.combine_chunks()
        column = table["postcode"].combine_chunks()
        codes = column.indices.to_numpy(zero_copy_only=False)
        n = len(codes)
        later = np.flatnonzero(codes[1:] != codes[:-1]) + 1
        starts = np.concatenate(([0], later)) if n else later
        ends = np.append(starts[1:], n) if n else later
        names = column.dictionary.take(pa.array(codes[starts])).to_pylist()
        positions = dict(zip(names, range(len(names)), strict=True))
        return cls(table, positions, starts.tolist(), ends.tolist(), table.nbytes, time.monotonic())

    def addresses(self, postcode: str) -> tuple[Address, ...]:
        """The group's rows of ``postcode`` as addresses, by UPRN as a number (the file sorts
        UPRNs as text)."""
        i = self.postcodes.get(postcode)
        if i is None:
            return ()
        start, end = self.starts[i], self.ends[i]
        part = self.table.slice(start, end - start)
        found = map(
            Address,
            map(int, part["uprn"].to_pylist()),
            part["address"].to_pylist(),
            repeat(postcode),
            map(tuple, part["ballot_ids"].to_pylist()),
        )
        return tuple(sorted(found))


def _whole_if_small(source: pa.NativeFile) -> pa.NativeFile:
    """The file in memory if it is small, as outcode files are: one read (one request on S3)
    instead of one for the footer and more for the row groups, which costs more than reading
    the few other groups' bytes."""
    if source.size() <= WHOLE_FILE_BYTES:
        return pa.BufferReader(source.read())
    return source


def _open(source: pa.NativeFile) -> pq.ParquetFile:
    """The outcode file, its postcodes to be read dictionary-encoded as they are stored."""
    try:
        return pq.ParquetFile(source, read_dictionary=["postcode"])
    except KeyError:
        # No postcode column: an empty outcode file, which has no columns at all.
        return pq.ParquetFile(source)


def _as_uri(location: str) -> str:
    """A local folder as a ``file://`` URI, an ``s3://`` location as it is."""
    if "://" in location:
        return location
    return Path(location).resolve().as_uri()
