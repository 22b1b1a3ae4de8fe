"""Reading a published layer: the addresses of a postcode with their ballot IDs (or whatever
the layer's list column holds), one address by UPRN, and the distinct ballots of a postcode.
One outcode file per question, no geometry.

Usable without Dagster (only pyarrow): a consumer points :class:`LayerReader` at the layer's
location, a local folder or ``s3://bucket/prefix/current_elections_parquet`` (S3 credentials
and endpoint from the standard AWS environment), and names its list column if the layer is
not the current-elections one (``ids_column="boundary_reviews"``).

An outcode file's rows are sorted by postcode and cut into row groups whose footer statistics
give each group's first and last postcode, so a question decodes the footer and only the group
(or the two groups) holding its postcode; a small file is fetched whole, in one read. Footers
and row groups read recently are cached, least recently used first out, within a memory budget
and for at most ``max_age`` seconds (so that a long-lived reader sees a new publish); each group
is indexed by postcode once, so a warm lookup is a dictionary lookup and a slice.

One answer never mixes two publishes. Every read of a file establishes which content it read,
by an identity that two different contents cannot share: the SHA-256 of the bytes of a file
fetched whole (every file the bake writes: the hash the layer's manifest gives the file); the S3
ETag of a larger file read range by range, asked again once the read is done (the ranges are
requests of their own: a file replaced meanwhile is read again); nothing that outlives the read
for a larger local file (read through one open descriptor, it is one content). All that is
cached of an outcode comes from reads of one identity: a read uses cached groups only if the
cached footer has its identity, and a read of another identity drops all that was cached of
the outcode before its own footer and groups are cached. Equal footers prove nothing: a file
republished with one ballot ID changed for another of the same length has a byte-identical
footer. This costs a cold read the hash of the bytes it fetched (0.7 ms a megabyte with the
CPU's SHA instructions: about 20 µs for the 22 KB of an average outcode file at 30 million
addresses, next to 1.3 ms for the read), and a warm lookup nothing.

Errors, which library users may catch (both are :class:`LayerError`):

- :class:`NoLayer`: no layer is published at the location. The layer is where its manifest
  (``_manifest.json``) is, written last by a publish: an outcode file missing where there is no
  manifest is told as no layer (nothing published there yet, a first publish under way, or the
  wrong location), not as no such outcode. An outcode file that is there is read either way.
- :class:`LayerUnreadable`: a file of the layer is there but cannot be read (corrupt, empty, a
  directory, not an outcode file, permission denied, an S3 error); it names the file and the
  reason, on one line. A file is read up to ``ATTEMPTS`` times before it is reported: on S3, a
  file replaced while it is read can read as corrupt once.

That an outcode is missing is not cached: it may be published next.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from itertools import repeat
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyarrow import _parquet as parquet_internals

POSTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}")
"""A UK postcode without its space: outward code (area, district), inward code (3)."""
OUTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?")
ADDRESS_COLUMNS = ["uprn", "address", "postcode"]
IDS_COLUMN = "ballot_ids"
"""The current-elections layer's list column, read unless another is named."""
CACHE_BYTES = 256 << 20
WHOLE_FILE_BYTES = 4 << 20
"""Files up to this size are read in one go; the largest outcode files are a few hundred KB."""
MAX_AGE = 300.0
_T = TypeVar("_T")
MANIFEST = "_manifest.json"
"""Written last by a publish: where it is, a layer is published."""
ATTEMPTS = 3
"""Reads of a file before it is reported unreadable (or changing under the reader)."""


class LayerError(Exception):
    """The layer cannot answer the question: :class:`NoLayer` or :class:`LayerUnreadable`."""


class NoLayer(LayerError):
    """No layer is published at the location: it has no manifest (see the module doc)."""

    def __init__(self, location: str) -> None:
        self.location = location
        super().__init__(
            f"no published layer at {location.rstrip('/')}: there is no {MANIFEST} (nothing "
            "published there yet, or its first publish is under way)"
        )


class LayerUnreadable(LayerError):
    """A file of the layer cannot be read; ``file`` names it and ``reason`` says why."""

    def __init__(self, file: str, reason: str) -> None:
        self.file = file
        self.reason = " ".join(reason.split())
        super().__init__(f"{file}: {self.reason}")


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
    """One address of the layer with its list (``ids``: the ballot IDs of the current-elections
    layer; a dict per element, field by field, for a layer whose list holds records). A named
    tuple, as answers are built many thousand times a second; ordered by UPRN first, as a
    postcode's addresses are."""

    uprn: int
    address: str
    postcode: str
    ids: tuple[Any, ...]

    @property
    def ballot_ids(self) -> tuple[str, ...]:
        """The address's list, by the current-elections layer's name for it."""
        return self.ids


@dataclass(frozen=True)
class PostcodeLookup:
    postcode: str
    found: Found
    addresses: tuple[Address, ...] = ()

    @property
    def ballot_ids(self) -> tuple[str, ...]:
        """The distinct ballots of the postcode's addresses, sorted: a "your elections" page."""
        return tuple(sorted({i for address in self.addresses for i in address.ids}))


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
    """Answers lookups from the layer at ``location``; safe to share between threads.

    Raises :class:`LayerUnreadable` if the location is not one pyarrow can read from.
    """

    def __init__(
        self,
        location: str,
        *,
        ids_column: str = IDS_COLUMN,
        cache_bytes: int = CACHE_BYTES,
        max_age: float = MAX_AGE,
    ) -> None:
        self.location = location
        self._columns = [*ADDRESS_COLUMNS, ids_column]
        try:
            self._filesystem, path = pafs.FileSystem.from_uri(_as_uri(location))
        except (OSError, pa.ArrowException) as problem:
            raise LayerUnreadable(location, str(problem)) from problem
        self._path = path.rstrip("/")
        self._cache: OrderedDict[tuple[str, int], _Footer | _Group] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._max_age = max_age
        self._cached_bytes = 0
        self._cached_of: dict[str, set[int]] = {}
        """Each outcode's cache entries (footer, row groups), to drop them together. All of an
        outcode's cached groups come from reads of the identity of its last cached footer."""
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
        """Every address of ``postcode`` with its ballot IDs, in UPRN order.

        Raises :class:`InvalidPostcode`, :class:`NoLayer` or :class:`LayerUnreadable`.
        """
        canonical = normalise_postcode(postcode)
        outcode = canonical[:-4]
        with self._lock:
            self._counts["lookups"] += 1
            found = self._from_cache(outcode, canonical)
        if found is None:
            found = self._read(outcode, canonical)
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

    def _from_cache(self, outcode: str, postcode: str) -> tuple[_Footer, list[_Group]] | None:
        """The outcode's footer and the row groups that may hold ``postcode`` when all are
        cached and fresh; the lock is held, so that they all come from one read's identity."""
        now = time.monotonic()
        footer = self._fresh((outcode, _FOOTER), now)
        if footer is None:
            return None
        groups = [self._fresh((outcode, g), now) for g in footer.groups_for(postcode)]
        return None if None in groups else (footer, groups)

    def _read(self, outcode: str, postcode: str) -> tuple[_Footer, list[_Group]] | None:
        """Read the outcode's footer and the row groups that may hold ``postcode``, those
        cached from a read of the same identity excepted; ``None`` when the layer has no file
        for the outcode."""
        if not OUTCODE.fullmatch(outcode):
            return None

        def read(opened: _Opened) -> tuple[_Footer, list[_Group], dict[int, _Group]]:
            footer, cached = None, []
            with self._lock:
                current = self._cache.get((outcode, _FOOTER))
                if current is not None and current.identity == opened.identity:
                    footer = replace(current, read_at=time.monotonic())
                    wanted = footer.groups_for(postcode)
                    cached = [self._fresh((outcode, g), footer.read_at) for g in wanted]
            if footer is None:
                footer = _Footer.of(opened.parquet.metadata, opened.identity)
                cached = [None] * len(footer.groups_for(postcode))
            groups, decoded = [], {}
            for g, group in zip(footer.groups_for(postcode), cached, strict=True):
                if group is None:
                    # A thread pool costs more than it saves on a group this small.
                    table = opened.parquet.read_row_group(
                        g, columns=self._columns, use_threads=False
                    )
                    group = decoded[g] = _Group.of(table.rename_columns(_GROUP_COLUMNS))
                groups.append(group)
            return footer, groups, decoded

        try:
            footer, groups, decoded = self._reading(self._file(outcode), read)
        except FileNotFoundError:
            self._forget(outcode)
            self._require_layer()
            return None
        self._install(outcode, footer, decoded)
        with self._lock:
            self._counts["footers_read"] += 1
            self._counts["row_groups_read"] += len(decoded)
        return footer, groups

    def _postcode_of(self, uprn: int, outcode: str) -> str | None:
        if not OUTCODE.fullmatch(outcode):
            return None

        def read(opened: _Opened) -> pa.Table | None:
            if opened.parquet.metadata.num_rows == 0:
                return None
            return opened.parquet.read(columns=["uprn", "postcode"], use_threads=False)

        try:
            table = self._reading(self._file(outcode), read)
        except FileNotFoundError:
            self._require_layer()
            return None
        if table is None:
            return None
        rows = np.flatnonzero(pc.equal(table["uprn"].cast(pa.int64()), uprn))
        return table["postcode"][int(rows[0])].as_py() if len(rows) else None

    def _reading(self, path: str, read: Callable[[_Opened], _T]) -> _T:
        """``read`` the file at ``path``, opened. A read that fails, or of a file replaced
        while it was read range by range, is tried again up to ``ATTEMPTS`` reads in all, then
        reported as :class:`LayerUnreadable`; a missing file raises ``FileNotFoundError``."""
        problem: Exception | None = None
        for _ in range(ATTEMPTS):
            try:
                with self._filesystem.open_input_file(path) as source:
                    opened = _Opened.of(source, self._columns)
                    found = read(opened)
                if opened.etag is None or self._etag_of(path) == opened.etag:
                    return found
                problem = _Changed(f"it changed while being read, {ATTEMPTS} times in a row")
            except FileNotFoundError:
                raise
            except _NotOutcodeFile as wrong:
                raise LayerUnreadable(self._name(path), str(wrong)) from None
            except (OSError, pa.ArrowException) as error:
                problem = error
        raise LayerUnreadable(self._name(path), self._reason(path, problem))

    def _etag_of(self, path: str) -> bytes | None:
        with self._filesystem.open_input_file(path) as source:
            return _etag(source)

    def _require_layer(self) -> None:
        """Raise :class:`NoLayer` unless the location has a manifest."""
        manifest = f"{self._path}/{MANIFEST}"
        try:
            info = self._filesystem.get_file_info(manifest)
        except OSError as problem:
            raise LayerUnreadable(self._name(manifest), str(problem)) from problem
        if info.type != pafs.FileType.File:
            raise NoLayer(self.location)

    def _reason(self, path: str, problem: Exception | None) -> str:
        """Why the file at ``path`` could not be read, in plain words where pyarrow's are not."""
        if isinstance(problem, PermissionError):
            return "permission denied"
        try:
            info = self._filesystem.get_file_info(path)
        except OSError:
            info = None
        if info is not None and info.type == pafs.FileType.Directory:
            return "a directory, not an outcode file"
        if info is not None and info.type == pafs.FileType.File and info.size == 0:
            return "empty (0 bytes), not a parquet file"
        return str(problem)

    def _name(self, path: str) -> str:
        """A path of the layer as its user wrote the location: ``s3://`` for S3."""
        return f"s3://{path}" if self._filesystem.type_name == "s3" else path

    def _file(self, outcode: str) -> str:
        return f"{self._path}/{outcode}.parquet"

    def _fresh(self, key: tuple[str, int], now: float) -> Any:
        """The cache entry ``key`` if it is younger than ``max_age``; the lock is held."""
        entry = self._cache.get(key)
        if entry is None or now - entry.read_at > self._max_age:
            return None
        self._cache.move_to_end(key)
        return entry

    def _install(self, outcode: str, footer: _Footer, groups: dict[int, _Group]) -> None:
        """Cache a read's footer and the groups it decoded. Another identity than the cached
        footer's (or no cached footer) first drops all that is cached of the outcode, so that
        its cached entries always come from reads of one identity; unless the cached footer
        was read after this one (by another thread): then this read is not cached."""
        with self._lock:
            current = self._cache.get((outcode, _FOOTER))
            if current is None or current.identity != footer.identity:
                if current is not None and current.read_at > footer.read_at:
                    return
                for part in list(self._cached_of.get(outcode, ())):
                    self._drop((outcode, part))
            self._remember((outcode, _FOOTER), footer)
            for g, group in groups.items():
                self._remember((outcode, g), group)

    def _remember(self, key: tuple[str, int], entry: _Footer | _Group) -> None:
        """Cache one entry, evicting the least recently used beyond the budget; the lock is
        held."""
        self._drop(key)
        self._cache[key] = entry
        self._cached_bytes += entry.nbytes
        self._cached_of.setdefault(key[0], set()).add(key[1])
        while self._cached_bytes > self._cache_bytes and len(self._cache) > 1:
            self._drop(next(iter(self._cache)))

    def _forget(self, outcode: str) -> None:
        """Drop the outcode's footer and row groups: the file went."""
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


_GROUP_COLUMNS = [*ADDRESS_COLUMNS, "ids"]
"""A row group as cached: the layer's list column read under one name, whatever the layer's."""
_FOOTER = -1
"""The cache key's second part for an outcode's footer; row groups count from 0."""


@dataclass(frozen=True)
class _Footer:
    """An outcode file's footer, with each row group's first and last postcode."""

    metadata: pq.FileMetaData
    lows: tuple[str | None, ...]
    highs: tuple[str | None, ...]
    identity: object
    """Which content of the file it was read from (see :class:`_Opened`)."""
    read_at: float

    @property
    def num_rows(self) -> int:
        return self.metadata.num_rows

    @property
    def nbytes(self) -> int:
        return self.metadata.serialized_size

    @classmethod
    def of(cls, metadata: pq.FileMetaData, identity: object) -> _Footer:
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
        return cls(metadata, tuple(lows), tuple(highs), identity, time.monotonic())

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
            map(tuple, part["ids"].to_pylist()),
        )
        return tuple(sorted(found))


class _Changed(Exception):
    """A file read range by range was replaced while it was read."""


class _NotOutcodeFile(Exception):
    """A parquet file with rows but without the columns of an outcode file."""


@dataclass(frozen=True)
class _Opened:
    """An outcode file opened for reading, and which of its contents is read: ``identity`` is
    equal for two reads only if they read the same bytes.

    A small file (every file the bake writes) is fetched whole, in one read (one request on
    S3), which costs less than a request for the footer and more for the row groups; its
    identity is the SHA-256 of those bytes, the hash the manifest gives the file. A larger file
    is read range by range: on S3 its identity is its ETag, which names one content of the
    object, and as every range is a request of its own, ``etag`` is to be confirmed once the
    read is done. A local file read through one descriptor is one content (a publish renames
    another file over it), but nothing tells whether the next read's is the same: its identity
    is a new object, equal to no other.
    """

    parquet: pq.ParquetFile
    identity: object
    etag: bytes | None

    @classmethod
    def of(cls, source: pa.NativeFile, columns: list[str]) -> _Opened:
        if source.size() <= WHOLE_FILE_BYTES:
            data = source.read_buffer()
            parquet = _parquet(pa.BufferReader(data), columns)
            return cls(parquet, hashlib.sha256(data).digest(), None)
        etag = _etag(source)
        return cls(_parquet(source, columns), object() if etag is None else etag, etag)


def _etag(source: pa.NativeFile) -> bytes | None:
    """The S3 ETag of an opened file (read by pyarrow when it opened it); ``None`` locally."""
    return source.metadata().get("ETag")


def _parquet(source: pa.NativeFile, columns: list[str]) -> pq.ParquetFile:
    """The outcode file, its postcodes to be read dictionary-encoded as they are stored, its
    row groups decoded into :data:`_DECODED`'s memory."""
    try:
        dictionary = ["postcode"]
        parquet = pq.ParquetFile(source, read_dictionary=dictionary)
    except KeyError:
        # No postcode column: an empty outcode file, which has no columns at all.
        dictionary = None
        parquet = pq.ParquetFile(source)
    metadata = parquet.metadata
    if metadata.num_rows:
        # Leaf paths (``ballot_ids.list.element``): cheaper than the Arrow schema.
        names = {metadata.schema.column(i).path.split(".")[0] for i in range(metadata.num_columns)}
        missing = [c for c in columns if c not in names]
        if missing:
            raise _NotOutcodeFile(f"not an outcode file: it has no {', '.join(missing)} column")
    # pyarrow's ParquetFile takes no memory pool: its reader gives way to one that has it,
    # opened on the footer already read (nothing is read twice).
    reader = parquet_internals.ParquetReader(memory_pool=_DECODED)
    reader.open(source, read_dictionary=dictionary, metadata=metadata, pre_buffer=True)
    parquet.reader = reader
    return parquet


def _decoding_pool() -> pa.MemoryPool:
    """jemalloc, or the system's allocator where pyarrow is built without it.

    Not pyarrow's default, mimalloc: while a new reader's cache fills, each lookup decoding
    fresh memory from mimalloc took 10 ms or more about one time in ten (a whole outcode file,
    one row group, decoded into memory never used before), against one in several hundred
    from jemalloc or the system's (docs/benchmarks.md, "The reader's cold tail")."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return pa.system_memory_pool()


_DECODED = _decoding_pool()
"""The memory the reader decodes row groups into, and so what its cache holds."""


def _as_uri(location: str) -> str:
    """A local folder as a ``file://`` URI, an ``s3://`` location as it is."""
    if "://" in location:
        return location
    return Path(location).resolve().as_uri()
