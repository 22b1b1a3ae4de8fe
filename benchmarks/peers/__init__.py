"""The peer methods: standalone scripts doing the bake's end-to-end job another way.

Each peer is run as ``python -m <module> --addressbase DIR --ballots CSV --out DIR`` in a
process of its own and prints one JSON line ``{"addresses": N, "polygons": M, ...}`` last.
This module only names them; it imports nothing heavy, because every peer process imports it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Peer:
    name: str
    module: str
    label: str
    """How the method is named in the report."""


PEERS = {
    peer.name: peer
    for peer in (
        Peer("duckdb", "benchmarks.peers.duckdb_spatial", "DuckDB spatial (one SQL script)"),
        Peer(
            "duckdb_bare",
            "benchmarks.peers.duckdb_bare",
            "DuckDB spatial, bare (no rules, no checks)",
        ),
        Peer("geopandas", "benchmarks.peers.geopandas_sjoin", "GeoPandas sjoin"),
    )
}
