"""A reproducible sample of addresses, the same whatever order or letter the rows come in.

The bake's pictures draw at most ``SAMPLE_SIZE`` addresses. Each UPRN is given a pseudo-random
rank by a fixed hash, and the sample is the UPRNs of lowest rank: a uniform sample that a
rebake of the same addresses draws again, and that can be taken a letter at a time (the lowest
ranks of the whole are among the lowest ranks of its letters) without knowing how many
addresses there are in all. The work is a few whole-column operations per letter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SAMPLE_SIZE = 200_000
"""Addresses drawn in a picture: enough to show every populated square kilometre of a
country's map, few enough to draw in well under a second."""
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
"""Fibonacci hashing: an odd 64-bit multiplier that spreads consecutive UPRNs evenly; this
constant is the sample's seed."""


def uprn_ranks(uprns: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Each UPRN's rank (``uint64``); UPRNs are integers, in text or not."""
    numbers = pc.cast(uprns, pa.int64()).to_numpy().view(np.uint64)
    with np.errstate(over="ignore"):
        hashed = numbers * _MULTIPLIER
    hashed ^= hashed >> np.uint64(29)
    return hashed


def lowest_ranks(ranks: np.ndarray, size: int | None = None) -> np.ndarray:
    """The positions of the ``size`` (by default ``SAMPLE_SIZE``) lowest ranks, all when
    fewer, in order of position."""
    size = SAMPLE_SIZE if size is None else size
    if len(ranks) <= size:
        return np.arange(len(ranks))
    return np.sort(np.argpartition(ranks, size)[:size])


def sampled(table: pa.Table, size: int | None = None) -> pa.Table:
    """The rows of ``table`` whose ``rank`` column is among the ``size`` lowest."""
    return table.take(lowest_ranks(table["rank"].to_numpy(), size))


@dataclass(frozen=True)
class RankSet:
    """UPRNs to pick out of tens of millions by their ranks. Ranking is one-to-one (an odd
    multiplier, then an xor-shift, both invertible), so equal ranks are equal UPRNs. A rank
    above the set's highest is ruled out by one comparison: for a sample (the lowest ranks)
    that leaves a few rows in a hundred. The rest are ruled out by a bitmap of the ranks'
    leading bits, 32 to 64 bits per UPRN and at most 2 MB, which stays in the processor's
    caches where a hash set of a few hundred thousand UPRNs would not (``pc.is_in`` costs
    several times as much); binary search settles the few per cent left."""

    ranks: np.ndarray
    """Sorted, distinct."""
    bitmap: np.ndarray
    shift: np.uint64

    @classmethod
    def of(cls, uprns: pa.Array | pa.ChunkedArray) -> RankSet:
        ranks = np.unique(uprn_ranks(pc.drop_null(uprns)))
        bits = min(max(int(len(ranks) * 32).bit_length(), 10), 24)
        shift = np.uint64(64 - bits)
        flags = np.zeros(1 << bits, np.bool_)
        flags[ranks >> shift] = True
        return cls(ranks, np.packbits(flags, bitorder="little"), shift)

    def find(self, ranks: np.ndarray) -> np.ndarray:
        """The positions of those of ``ranks`` (:func:`uprn_ranks`) in the set, in order."""
        if not len(self.ranks):
            return np.empty(0, np.int64)
        maybe = np.flatnonzero(ranks <= self.ranks[-1])
        slots = ranks[maybe] >> self.shift
        flagged = self.bitmap[slots >> np.uint64(3)] >> (slots & np.uint64(7)).astype(np.uint8)
        maybe = maybe[(flagged & 1).astype(np.bool_)]
        found = np.minimum(np.searchsorted(self.ranks, ranks[maybe]), len(self.ranks) - 1)
        return maybe[self.ranks[found] == ranks[maybe]]
