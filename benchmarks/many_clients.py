"""Several clients at once, each asking one question at a time: the layer reader shared by
threads (one reader, as a threaded service holds one), readers in processes of their own
(sharing the layer's files through the page cache), and PostGIS with a connection per client.

Each run of clients times two phases, every client starting each phase together (a barrier):
the cold postcodes, shared out among the clients, on new readers or a restarted server; then,
once every client has asked the warm set untimed, the warm postcodes shared out the same way.
Throughput is every client's lookups over the phase's wall time, from the barrier to the last
client's end; percentiles are over every lookup of every client.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.lookups import Answer, Latencies, postgis_lookup, reader_lookup
from benchmarks.postgis import Cluster, Server
from benchmarks.read_rounds import COLD_PAGE_CACHE, WARM
from databaker.layer_reader import LayerReader

THREADS = 8
PROCESSES = 4


@dataclass(frozen=True)
class _Share:
    """One client's part of the work."""

    cold: list[str]
    prime: list[str]
    warm: list[str]


@dataclass(frozen=True)
class _Timed:
    """One client's phases: latencies, and when it started and ended each (``perf_counter``,
    the same clock in every process of this machine)."""

    cold: np.ndarray
    cold_span: tuple[float, float]
    warm: np.ndarray
    warm_span: tuple[float, float]


def reader_clients(
    layer: Path, cold: list[str], warm: list[str], *, threads: int = 0, processes: int = 0
) -> list[Latencies]:
    """The reader, from ``threads`` threads sharing one reader or ``processes`` processes with
    a reader each; the files in the page cache, as the single client's second cold case."""
    if threads:
        reader = LayerReader(str(layer), max_age=3600)
        return _threads(f"layer reader, {threads} threads", threads, cold, warm, reader)
    return _processes(f"layer reader, {processes} processes", processes, cold, warm, layer)


def postgis_clients(
    cluster: Cluster, cold: list[str], warm: list[str], *, threads: int = 0, processes: int = 0
) -> list[Latencies]:
    """PostGIS, restarted (its buffers empty, its files in the page cache), from ``threads``
    threads or ``processes`` processes, each client with a connection of its own."""
    with cluster.running() as server:
        if threads:
            return _threads(
                f"PostGIS, {threads} connections from threads", threads, cold, warm, server
            )
        return _processes(
            f"PostGIS, {processes} connections from processes", processes, cold, warm, server
        )


def _threads(
    engine: str, clients: int, cold: list[str], warm: list[str], target: LayerReader | Server
) -> list[Latencies]:
    shares = _shares(clients, cold, warm)
    start = threading.Barrier(clients)
    with ThreadPoolExecutor(max_workers=clients) as pool:
        timed = list(pool.map(lambda share: _client(target, share, start), shares))
    return _pooled(engine, timed)


def _processes(
    engine: str, clients: int, cold: list[str], warm: list[str], target: Path | Server
) -> list[Latencies]:
    context = multiprocessing.get_context("spawn")
    shares = _shares(clients, cold, warm)
    with context.Manager() as manager:
        start = manager.Barrier(clients)
        with context.Pool(clients) as pool:
            timed = pool.starmap(_client, [(target, share, start) for share in shares])
            # Workers told to end, and waited for: leaving the block would terminate them by
            # SIGTERM, which a process started with SIGTERM ignored (as some launchers do)
            # never acts on, and the join after it would wait for ever.
            pool.close()
            pool.join()
    return _pooled(engine, timed)


def _client(target: LayerReader | Path | Server, share: _Share, start) -> _Timed:
    """One client: its own lookup on ``target`` (a reader to share, a layer folder to open a
    reader of its own on, or a PostGIS server to connect to), the cold share, the warm set
    untimed, then the warm share."""
    connection = None
    if isinstance(target, Server):
        connection = target.connect()
        lookup = postgis_lookup(connection)
    elif isinstance(target, Path):
        lookup = reader_lookup(LayerReader(str(target), max_age=3600))
    else:
        lookup = reader_lookup(target)
    try:
        start.wait()
        cold, cold_span = _timed(lookup, share.cold)
        for postcode in share.prime:
            lookup(postcode)
        start.wait()
        warm, warm_span = _timed(lookup, share.warm)
    finally:
        if connection is not None:
            connection.close()
    return _Timed(cold, cold_span, warm, warm_span)


def _timed(lookup: Callable[[str], Answer], postcodes: list[str]) -> tuple[np.ndarray, tuple]:
    seconds = np.empty(len(postcodes))
    clock = time.perf_counter
    started = clock()
    for i, postcode in enumerate(postcodes):
        before = clock()
        lookup(postcode)
        seconds[i] = clock() - before
    return seconds, (started, clock())


def _shares(clients: int, cold: list[str], warm: list[str]) -> list[_Share]:
    """Every ``clients``-th postcode to each client; each primes the whole warm set."""
    prime = sorted(set(warm))
    return [_Share(cold[i::clients], prime, warm[i::clients]) for i in range(clients)]


def _pooled(engine: str, timed: list[_Timed]) -> list[Latencies]:
    phases = []
    for case, seconds, spans in (
        (COLD_PAGE_CACHE, [t.cold for t in timed], [t.cold_span for t in timed]),
        (WARM, [t.warm for t in timed], [t.warm_span for t in timed]),
    ):
        wall = max(end for _, end in spans) - min(begin for begin, _ in spans)
        phases.append(Latencies(engine, case, np.concatenate(seconds), (wall,)))
    return phases
