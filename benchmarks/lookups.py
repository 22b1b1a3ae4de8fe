"""Timing the postcode question, one lookup at a time, on the baked layer and on PostGIS.

Every lookup answers the whole question, "every address of this postcode with its ballot IDs",
down to Python values: the reader's ``Address`` tuples, PostGIS's fetched rows. One client asks
one question at a time, so lookups per second is the inverse of the mean latency and both
engines are measured the same way.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import pyarrow.parquet as pq

from benchmarks.postgis import QUERY
from databaker.layer_reader import LayerReader

Answer = tuple[tuple[int, tuple[str, ...]], ...]
"""A postcode's answer as compared between engines: (UPRN, ballot IDs) in UPRN order."""


@dataclass(frozen=True)
class Latencies:
    """One case's lookups: every latency, and the wall time of each round's loop."""

    engine: str
    case: str
    seconds: np.ndarray
    round_wall_seconds: tuple[float, ...]

    @property
    def lookups(self) -> int:
        return len(self.seconds)

    @property
    def per_second(self) -> float:
        return self.lookups / sum(self.round_wall_seconds)

    @property
    def round_per_second(self) -> list[float]:
        per_round = self.lookups / len(self.round_wall_seconds)
        return [per_round / wall for wall in self.round_wall_seconds]

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.seconds, q)) * 1000

    @classmethod
    def pooled(cls, rounds: Sequence[Latencies]) -> Latencies:
        """The rounds of one case as one: percentiles over every lookup of every round."""
        first = rounds[0]
        seconds = np.concatenate([r.seconds for r in rounds])
        walls = tuple(wall for r in rounds for wall in r.round_wall_seconds)
        return cls(first.engine, first.case, seconds, walls)


def cold_postcodes(layer: Path, size: int, rng: random.Random) -> list[str]:
    """One postcode drawn at random in each of up to ``size`` outcodes, themselves drawn at
    random among the layer's files with addresses (an empty file answers "no elections here"
    without a question worth timing): each lookup reads a file no other lookup has read."""
    files = sorted(p for p in layer.glob("*.parquet") if pq.ParquetFile(p).metadata.num_rows)
    chosen = rng.sample(files, min(size, len(files)))
    return [rng.choice(_postcodes(path)) for path in chosen]


def outcode_file(postcode: str) -> str:
    """The name of the outcode file holding ``postcode`` (canonical, with its space)."""
    return f"{postcode.split(' ')[0]}.parquet"


def _postcodes(path: Path) -> list[str]:
    return sorted(set(pq.read_table(path, columns=["postcode"])["postcode"].to_pylist()))


def time_lookups(
    engine: str,
    case: str,
    postcodes: Sequence[str],
    lookup: Callable[[str], Answer],
    keep_answers: bool = False,
) -> tuple[Latencies, dict[str, Answer]]:
    """Each postcode's lookup, timed one by one; the latencies, and the answers if kept.

    Whatever the harness holds (the sample, answers kept earlier) is moved out of the garbage
    collector's reach first (``gc.freeze``), so that collecting the harness's objects is not
    charged to the engine; answers are kept only where they are compared, for the same reason.
    """
    seconds = np.empty(len(postcodes))
    answers: dict[str, Answer] = {}
    clock = time.perf_counter
    gc.collect()
    gc.freeze()
    try:
        started = clock()
        for i, postcode in enumerate(postcodes):
            before = clock()
            answer = lookup(postcode)
            seconds[i] = clock() - before
            if keep_answers:
                answers[postcode] = answer
        wall = clock() - started
    finally:
        gc.unfreeze()
    return Latencies(engine, case, seconds, (wall,)), answers


def reader_lookup(reader: LayerReader) -> Callable[[str], Answer]:
    def lookup(postcode: str) -> Answer:
        found = reader.addresses(postcode)
        return tuple((address.uprn, address.ballot_ids) for address in found.addresses)

    return lookup


def postgis_lookup(conn: psycopg.Connection) -> Callable[[str], Answer]:
    """One prepared query per postcode over one connection, as a lookup service would hold."""
    cursor = conn.cursor()

    def lookup(postcode: str) -> Answer:
        rows = cursor.execute(QUERY, (postcode,), prepare=True).fetchall()
        return tuple((uprn, tuple(ids)) for uprn, _address, _postcode, ids in rows)

    return lookup


def disagreements(ours: dict[str, Answer], theirs: dict[str, Answer]) -> list[str]:
    """The postcodes whose answers differ between the two engines."""
    return sorted(p for p in ours.keys() | theirs.keys() if ours.get(p) != theirs.get(p))
