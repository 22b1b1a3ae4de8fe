"""Peer method: the whole job as one DuckDB spatial script, as a DuckDB user would write it.

Native ``read_csv`` of the drop and the ballots, the rows the bake accepts, ``ST_Contains`` in
a ``LEFT JOIN`` (DuckDB plans it as a spatial join), ``list`` grouped per address, and one
``COPY ... PARTITION_BY (outcode)``. That writes ``<out>/outcode=<OUTCODE>/data_0.parquet``
rather than ``<OUTCODE>.parquet``; the harness reads both layouts.

What it does not do that the bake does: line numbers and reports of rejected rows, election
ID validation, the checks, staging. Run: ``python -m benchmarks.peers.duckdb_spatial --help``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb

from benchmarks.ballot_rules import define_ballot_areas
from benchmarks.drop_rules import define_valid_addresses

# The addresses the bake accepts and the ballot areas it joins with come from the rules modules
# (benchmarks/drop_rules.py, benchmarks/ballot_rules.py).
SQL = r"""
CREATE TEMP TABLE addresses AS
SELECT DISTINCT uprn, address, postcode, lon, lat FROM valid_addresses;

COPY (
    SELECT
        a.uprn,
        a.address,
        a.postcode,
        coalesce(
            list_sort(list_distinct(list(b.election_id) FILTER (WHERE b.election_id IS NOT NULL))),
            []
        )::VARCHAR[] AS ballot_ids,
        split_part(a.postcode, ' ', 1) AS outcode
    FROM addresses AS a
    LEFT JOIN ballots AS b ON ST_Contains(b.geom, ST_Point(a.lon, a.lat))
    GROUP BY a.uprn, a.address, a.postcode
    ORDER BY a.postcode, a.uprn
) TO $out (FORMAT parquet, PARTITION_BY (outcode), COMPRESSION zstd);
"""


def spatial_extension() -> Path:
    """The extension binary of the ``duckdb-extension-spatial`` wheel for this DuckDB.

    Looked up here rather than imported from the bake, so this script loads nothing of Dagster
    and its memory is DuckDB's own.
    """
    import duckdb_extension_spatial

    root = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    return root / f"v{duckdb.__version__}" / "spatial.duckdb_extension"


def run_script(
    argv: list[str] | None,
    description: str,
    sql: str,
    define: Callable[[duckdb.DuckDBPyConnection, list[str], str], None] | None = None,
) -> int:
    """A DuckDB peer's command: parse its arguments, run ``sql`` (after ``define``, given the
    drop's files and the export) with ``$drop``, ``$ballots`` and ``$out`` bound where it uses
    them, and print the JSON line the harness reads. The script must leave the tables
    ``addresses`` and ``ballots``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--addressbase", type=Path, required=True, help="drop folder")
    parser.add_argument("--ballots", type=Path, required=True, help="ballots export CSV")
    parser.add_argument("--out", type=Path, required=True, help="folder for the outcode files")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    drop = sorted(str(p) for p in args.addressbase.rglob("*") if p.name.endswith((".csv", ".gz")))
    shutil.rmtree(args.out, ignore_errors=True)
    # In memory, DuckDB spills to ./.tmp by default: keep that beside the output instead.
    spill = args.out.with_name(f".{args.out.name}-spill")
    config = {
        "threads": args.threads,
        "temp_directory": str(spill),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    values = {"drop": drop, "ballots": str(args.ballots), "out": str(args.out)}
    with duckdb.connect(config=config) as conn:
        conn.execute("LOAD '" + str(spatial_extension()).replace("'", "''") + "'")
        if define is not None:
            define(conn, drop, str(args.ballots))
        for statement in duckdb.extract_statements(sql):
            conn.execute(statement, {name: values[name] for name in statement.named_parameters})
        addresses, polygons = conn.execute(
            "SELECT (SELECT count(*) FROM addresses), (SELECT count(*) FROM ballots)"
        ).fetchone()
    shutil.rmtree(spill, ignore_errors=True)
    print(json.dumps({"addresses": addresses, "polygons": polygons}))
    return 0


def _define_rules(conn: duckdb.DuckDBPyConnection, drop: list[str], ballots: str) -> None:
    define_valid_addresses(conn, drop)
    define_ballot_areas(conn, ballots)


def main(argv: list[str] | None = None) -> int:
    return run_script(argv, __doc__.split("\n\n")[0], SQL, _define_rules)


if __name__ == "__main__":
    raise SystemExit(main())
