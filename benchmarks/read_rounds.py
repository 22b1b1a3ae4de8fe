"""One round of the read benchmark on each engine: cold from disk, cold with the files in the
page cache, and warm, in that order.

The benchmark runs several rounds, alternating the engines, and pools each case's lookups: on a
shared machine whose speed drifts from one minute to the next, that spreads the drift over both
engines and every case instead of charging it to whichever ran at a slow moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.lookups import Answer, Latencies, postgis_lookup, reader_lookup, time_lookups
from benchmarks.postgis import Cluster, evict_from_page_cache
from databaker.layer_reader import LayerReader

COLD_FROM_DISK = "cold, from disk"
COLD_PAGE_CACHE = "cold, in page cache"
WARM = "warm"


@dataclass(frozen=True)
class Round:
    latencies: list[Latencies]
    """Cold from disk, cold in the page cache, warm."""
    answers: dict[str, Answer]
    """The answers to the cold postcodes."""


def reader_round(layer: Path, cold: list[str], warm: list[str]) -> Round:
    """The layer reader: a new reader with the layer's files dropped from the page cache, then
    a new reader with them in it, then the warm postcodes on that second reader, which must
    read nothing for them (they are among its last cold ones)."""
    evict_from_page_cache(layer.glob("*.parquet"))
    from_disk, _ = time_lookups("layer reader", COLD_FROM_DISK, cold, reader_lookup(_reader(layer)))
    reader = _reader(layer)
    cached, answers = time_lookups(
        "layer reader", COLD_PAGE_CACHE, cold, reader_lookup(reader), keep_answers=True
    )
    before = reader.stats
    warmed, _ = time_lookups("layer reader", WARM, warm, reader_lookup(reader))
    after = reader.stats
    if (after.footers_read, after.row_groups_read) != (before.footers_read, before.row_groups_read):
        raise RuntimeError(
            f"the warm lookups read the layer ({before} before, {after} after): they are not "
            "all among the postcodes the reader still holds; lower --warm-set"
        )
    return Round([from_disk, cached, warmed], answers)


def postgis_round(cluster: Cluster, cold: list[str], warm: list[str]) -> Round:
    """PostGIS: restarted with its files dropped from the page cache, restarted again (its own
    buffers empty, the files in the page cache), then the warm postcodes asked once untimed
    and once timed."""
    cluster.evict_from_page_cache()
    with cluster.running() as server, server.connect() as conn:
        from_disk, _ = time_lookups("PostGIS", COLD_FROM_DISK, cold, postgis_lookup(conn))
    with cluster.running() as server, server.connect() as conn:
        lookup = postgis_lookup(conn)
        cached, answers = time_lookups("PostGIS", COLD_PAGE_CACHE, cold, lookup, keep_answers=True)
        time_lookups("PostGIS", "priming", warm, lookup)
        warmed, _ = time_lookups("PostGIS", WARM, warm, lookup)
    return Round([from_disk, cached, warmed], answers)


def _reader(layer: Path) -> LayerReader:
    """A reader as a service would hold one: the default memory budget; entries kept for an
    hour so that none expires while the warm lookups run."""
    return LayerReader(str(layer), max_age=3600)
