"""Reading a published layer: the addresses of a postcode with their ballot IDs, one address by
UPRN, and the distinct ballots of a postcode. One outcode file read per question, no geometry.

Usable without Dagster (only pyarrow): a consumer points :class:`LayerReader` at the layer's
location, a local folder or ``s3://bucket/prefix/current_elections_parquet`` (S3 credentials
and endpoint from the standard AWS environment).

Recently read outcode tables are cached, least recently used first out, within a memory budget
and for at most ``max_age`` seconds (so that a long-lived reader sees a new publish); each is
indexed by postcode once (rows are sorted by postcode), so a warm lookup is a dictionary lookup
and a slice. That an outcode is missing is not cached: it may be published next.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

POSTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}")
"""A UK postcode without its space: outward code (area, district), inward code (3)."""
OUTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?")
COLUMNS = ["uprn", "address", "postcode", "ballot_ids"]
EMPTY = pa.table(
    {
        "uprn": pa.array([], pa.int64()),
        "address": pa.array([], pa.string()),
        "postcode": pa.array([], pa.string()),
        "ballot_ids": pa.array([], pa.list_(pa.string())),
    }
)
"""An empty outcode file: no address of the outcode has a ballot."""
CACHE_BYTES = 256 << 20
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


@dataclass(frozen=True)
class Address:
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


class LayerReader:
    """Answers lookups from the layer at ``location``; safe to share between threads."""

    def __init__(
        self, location: str, *, cache_bytes: int = CACHE_BYTES, max_age: float = MAX_AGE
    ) -> None:
        self.location = location
        self._filesystem, path = pafs.FileSystem.from_uri(_as_uri(location))
        self._path = path.rstrip("/")
        self._cache: OrderedDict[str, _Outcode] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._max_age = max_age
        self._cached_bytes = 0
        self._lock = threading.Lock()

    @property
    def cached_outcodes(self) -> tuple[str, ...]:
        """The outcodes whose tables are cached, least recently used first."""
        with self._lock:
            return tuple(self._cache)

    def addresses(self, postcode: str) -> PostcodeLookup:
        """Every address of ``postcode`` with its ballot IDs, in UPRN order."""
        canonical = normalise_postcode(postcode)
        outcode = self._outcode(canonical.split(" ")[0])
        if outcode is None:
            return PostcodeLookup(canonical, Found.UNKNOWN_OUTCODE)
        if outcode.table.num_rows == 0:
            return PostcodeLookup(canonical, Found.NO_ELECTIONS)
        rows = outcode.rows.get(canonical)
        if rows is None:
            return PostcodeLookup(canonical, Found.UNKNOWN_POSTCODE)
        return PostcodeLookup(canonical, Found.ADDRESSES, _addresses(outcode.table, *rows))

    def ballots(self, postcode: str) -> tuple[str, ...]:
        """The distinct ballot IDs of ``postcode``'s addresses; empty where there are none."""
        return self.addresses(postcode).ballot_ids

    def address(
        self, uprn: int, *, postcode: str | None = None, outcode: str | None = None
    ) -> Address | None:
        """The address ``uprn`` in ``outcode`` (or the outcode of ``postcode``); ``None`` if the
        outcode has no such address, or no ballot at all."""
        if (postcode is None) == (outcode is None):
            raise ValueError("give the outcode or the postcode of the address, not both")
        code = normalise_postcode(postcode).split(" ")[0] if postcode else outcode.upper()
        found = self._outcode(code)
        if found is None or found.table.num_rows == 0:
            return None
        matches = np.flatnonzero(found.uprns == uprn)
        if len(matches) == 0:
            return None
        return _addresses(found.table, int(matches[0]), int(matches[0]) + 1)[0]

    def _outcode(self, outcode: str) -> _Outcode | None:
        with self._lock:
            cached = self._cache.get(outcode)
            if cached is not None and time.monotonic() - cached.read_at <= self._max_age:
                self._cache.move_to_end(outcode)
                return cached
        loaded = self._read(outcode)
        if loaded is None:
            return None
        with self._lock:
            stale = self._cache.pop(outcode, None)
            self._cached_bytes -= stale.nbytes if stale else 0
            self._cache[outcode] = loaded
            self._cached_bytes += loaded.nbytes
            while self._cached_bytes > self._cache_bytes and len(self._cache) > 1:
                _, evicted = self._cache.popitem(last=False)
                self._cached_bytes -= evicted.nbytes
        return loaded

    def _read(self, outcode: str) -> _Outcode | None:
        """The outcode's table and index; ``None`` when the layer has no file for it (a layer
        holds a file, perhaps empty, for every outcode with an address)."""
        if not OUTCODE.fullmatch(outcode):
            return None
        try:
            with self._filesystem.open_input_file(f"{self._path}/{outcode}.parquet") as source:
                parquet = pq.ParquetFile(source)
                if not parquet.schema_arrow.names:
                    return _Outcode.of(EMPTY)
                return _Outcode.of(parquet.read(columns=COLUMNS))
        except FileNotFoundError:
            return None


@dataclass(frozen=True)
class _Outcode:
    table: pa.Table
    rows: dict[str, tuple[int, int]]
    """Each postcode's rows, ``start`` to ``end``: the file is sorted by postcode."""
    uprns: np.ndarray
    read_at: float

    @property
    def nbytes(self) -> int:
        return self.table.nbytes + self.uprns.nbytes

    @classmethod
    def of(cls, table: pa.Table) -> _Outcode:
        table = table.combine_chunks()
        postcodes = table["postcode"].combine_chunks().cast(pa.string())
        n = len(postcodes)
        changes = pc.not_equal(postcodes.slice(1), postcodes.slice(0, max(n - 1, 0)))
        starts = np.flatnonzero(np.r_[n > 0, changes.to_numpy(zero_copy_only=False)])
        ends = np.r_[starts[1:], n] if len(starts) else starts
        names = postcodes.take(pa.array(starts, pa.int64())).to_pylist()
        rows = dict(zip(names, zip(starts.tolist(), ends.tolist(), strict=True), strict=True))
        uprns = table["uprn"].cast(pa.int64()).to_numpy()
        return cls(table, rows, uprns, time.monotonic())


def _addresses(table: pa.Table, start: int, end: int) -> tuple[Address, ...]:
    """Rows ``start`` to ``end`` as addresses, by UPRN as a number (the layer stores UPRNs as
    text, sorted as text)."""
    part = table.slice(start, end - start).to_pydict()
    found = (
        Address(int(uprn), address, postcode, tuple(ids))
        for uprn, address, postcode, ids in zip(
            part["uprn"], part["address"], part["postcode"], part["ballot_ids"], strict=True
        )
    )
    return tuple(sorted(found, key=lambda address: address.uprn))


def _as_uri(location: str) -> str:
    """A local folder as a ``file://`` URI, an ``s3://`` location as it is."""
    if "://" in location:
        return location
    return Path(location).resolve().as_uri()
