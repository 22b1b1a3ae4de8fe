"""PostGIS, the live alternative to baking: a cluster on 127.0.0.1 holding the addresses and
ballot areas the bake used, answering "every address of this postcode with its ballots" with one
query per postcode, as a lookup service without a baked layer would.

The cluster is created under ``<cache>/postgis/<inputs key>/`` from Debian's PostgreSQL and
PostGIS (``apt-get install postgresql-15-postgis-3``) and loaded once; a later run reuses it
when its marker says it holds the same inputs. Run as root, the server runs as ``nobody``
(PostgreSQL refuses root). It is tuned as a lookup service would be: shared buffers large
enough for the warm set, JIT off (it only slows small queries down), the addresses stored in
postcode order with a B-tree on the postcode, and the areas with a GiST index.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import psycopg

from benchmarks.ballot_rules import define_ballot_areas
from benchmarks.drop_rules import define_valid_addresses
from benchmarks.inputs import Inputs
from benchmarks.peers.duckdb_spatial import spatial_extension

USER = "bench"
DATABASE = "postgres"
LOADED = "benchmark-loaded.json"
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "shared_buffers": "4GB",
    "effective_cache_size": "12GB",
    "jit": "off",
    "max_wal_size": "8GB",
    "wal_level": "minimal",
    "max_wal_senders": "0",
}

QUERY = """
SELECT a.uprn, a.address, a.postcode,
       coalesce(
           array_agg(DISTINCT b.election_id ORDER BY b.election_id)
               FILTER (WHERE b.election_id IS NOT NULL),
           '{}'
       ) AS ballot_ids
FROM addresses AS a
LEFT JOIN ballot_areas AS b ON ST_Contains(b.geom, a.geom)
WHERE a.postcode = %s
GROUP BY a.uprn, a.address, a.postcode
ORDER BY a.uprn
"""
"""The postcode question: each address once, with the sorted, distinct IDs of the ballots whose
area contains it (a point on an edge is in none, as in the bake)."""

_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS postgis;
DROP TABLE IF EXISTS addresses, ballot_areas;
CREATE TABLE addresses (uprn bigint NOT NULL, address text NOT NULL, postcode text NOT NULL,
                        geom geometry(Point) NOT NULL);
CREATE TABLE ballot_areas (election_id text NOT NULL, geom geometry NOT NULL);
"""
_INDEXES = """
CREATE INDEX addresses_postcode ON addresses (postcode);
CREATE INDEX ballot_areas_geom ON ballot_areas USING gist (geom);
"""
_EXPORT_ADDRESSES = """
COPY (
    SELECT DISTINCT uprn::BIGINT AS uprn, address, postcode, ST_AsHEXWKB(ST_Point(lon, lat))
    FROM valid_addresses ORDER BY postcode, uprn
) TO $path (FORMAT csv, HEADER false)
"""
_EXPORT_AREAS = """
COPY (SELECT election_id, ST_AsHEXWKB(geom) FROM ballots WHERE NOT ST_IsEmpty(geom))
TO $path (FORMAT csv, HEADER false)
"""


class PostgisMissing(RuntimeError):
    """PostgreSQL or its PostGIS extension is not installed."""


@dataclass(frozen=True)
class Installation:
    bin: Path

    @classmethod
    def find(cls, given: Path | None) -> Installation:
        """The PostgreSQL binaries in ``given`` or Debian's newest, with PostGIS beside them."""
        candidates = [given] if given else [Path(p) for p in sorted(glob.glob(_DEBIAN_BIN))[::-1]]
        for folder in candidates:
            if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
                found = cls(folder)
                if found.has_postgis():
                    return found
        raise PostgisMissing(
            "PostgreSQL with PostGIS not found"
            + (f" in {given}" if given else f" under {_DEBIAN_BIN}")
            + ": on Debian, apt-get install postgresql-15-postgis-3 (or pass --no-postgis)"
        )

    def has_postgis(self) -> bool:
        share = subprocess.run(
            [str(self.bin / "pg_config"), "--sharedir"], capture_output=True, text=True
        ).stdout.strip()
        return bool(share) and (Path(share) / "extension" / "postgis.control").is_file()


_DEBIAN_BIN = "/usr/lib/postgresql/*/bin"


@dataclass(frozen=True)
class Load:
    """What the cluster holds, and how long loading it took."""

    addresses: int
    areas: int
    seconds: dict[str, float]
    table_bytes: int
    index_bytes: int


@dataclass(frozen=True)
class Cluster:
    installation: Installation
    folder: Path

    def __post_init__(self) -> None:
        # The server's programs run in the folder, so every path handed to them is absolute.
        object.__setattr__(self, "folder", self.folder.resolve())

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def load_marker(self, inputs: Inputs) -> Load | None:
        """The load recorded in the cluster, if it holds ``inputs``."""
        try:
            marker = json.loads((self.folder / LOADED).read_text())
        except (OSError, ValueError):
            return None
        if marker.get("inputs") != inputs.spec.key:
            return None
        return Load(**marker["load"])

    @contextmanager
    def running(self, settings: Mapping[str, str] | None = None) -> Iterator[Server]:
        """The cluster's server, started on a free loopback port (created first if need be),
        with ``settings`` in place of the lookup service's where given (a test server's small
        memory, say)."""
        if not (self.data / "PG_VERSION").is_file():
            self._create()
        elif self._is_running():
            # Left behind by a run that was killed: its port and settings are not ours.
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        port = _free_port()
        loopback = {"port": str(port), "unix_socket_directories": ""}
        chosen = {**SERVER_SETTINGS, **(settings or {}), **loopback}
        options = " ".join(f"-c {name}={value}" for name, value in chosen.items())
        log = self.folder / "server.log"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-o", options, "start")
        try:
            yield Server(port)
        finally:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def evict_from_page_cache(self) -> None:
        """Drop the cluster's files from the operating system's page cache."""
        evict_from_page_cache(p for p in self.data.rglob("*") if p.is_file())

    def _create(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self._give_to_server_user(self.folder)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", USER, "-E", "UTF8",
                  "--no-locale")  # fmt: skip

    def _is_running(self) -> bool:
        command = [*_as_server_user(), str(self.installation.bin / "pg_ctl"), "-D",
                   str(self.data), "status"]  # fmt: skip
        return subprocess.run(command, capture_output=True, cwd=self.folder).returncode == 0

    def _run(self, program: str, *args: str) -> None:
        command = [*_as_server_user(), str(self.installation.bin / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if done.returncode != 0:
            hint = (
                f"\n(the server runs as nobody, which must be able to reach {self.folder})"
                if os.geteuid() == 0
                else ""
            )
            raise RuntimeError(f"{program} failed ({done.returncode}):\n{done.stderr}{hint}")

    @staticmethod
    def _give_to_server_user(folder: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(folder, "nobody", "nogroup")


@dataclass(frozen=True)
class Server:
    port: int

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=USER, dbname=DATABASE, autocommit=True
        )

    def load(self, inputs: Inputs, cluster: Cluster) -> Load:
        """Load ``inputs`` (the addresses and areas the bake accepts) and index them; the load
        is recorded in the cluster so a later run reuses it."""
        (cluster.folder / LOADED).unlink(missing_ok=True)
        seconds: dict[str, float] = {}
        with tempfile.TemporaryDirectory(dir=cluster.folder.parent) as scratch:
            addresses_csv, areas_csv = Path(scratch, "addresses.csv"), Path(scratch, "areas.csv")
            started = time.perf_counter()
            _export_with_duckdb(inputs, addresses_csv, areas_csv)
            seconds["prepare (DuckDB)"] = time.perf_counter() - started
            with self.connect() as conn:
                conn.execute(_SCHEMA)
                for table, path in (("addresses", addresses_csv), ("ballot_areas", areas_csv)):
                    started = time.perf_counter()
                    _copy_in(conn, table, path)
                    seconds[f"copy {table}"] = time.perf_counter() - started
                started = time.perf_counter()
                conn.execute(_INDEXES)
                seconds["index"] = time.perf_counter() - started
                started = time.perf_counter()
                conn.execute("VACUUM ANALYZE addresses")
                conn.execute("VACUUM ANALYZE ballot_areas")
                conn.execute("CHECKPOINT")
                seconds["vacuum, analyze"] = time.perf_counter() - started
                load = Load(
                    addresses=_scalar(conn, "SELECT count(*) FROM addresses"),
                    areas=_scalar(conn, "SELECT count(*) FROM ballot_areas"),
                    seconds={k: round(v, 1) for k, v in seconds.items()},
                    table_bytes=_scalar(
                        conn, "SELECT pg_table_size('addresses') + pg_table_size('ballot_areas')"
                    ),
                    index_bytes=_scalar(
                        conn,
                        "SELECT pg_indexes_size('addresses') + pg_indexes_size('ballot_areas')",
                    ),
                )
        marker = {"inputs": inputs.spec.key, "load": asdict(load)}
        (cluster.folder / LOADED).write_text(json.dumps(marker, indent=1))
        return load

    def versions(self) -> str:
        with self.connect() as conn:
            row = conn.execute("SELECT current_setting('server_version'), postgis_lib_version()")
            server, postgis = row.fetchone() or ("?", "?")
        return f"PostgreSQL {server}, PostGIS {postgis}"


def evict_from_page_cache(paths: Iterable[Path]) -> None:
    """Ask the kernel to drop ``paths`` from its page cache (``POSIX_FADV_DONTNEED``), so the
    next read comes from the disk; written pages are flushed first, as only clean ones go."""
    os.sync()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _export_with_duckdb(inputs: Inputs, addresses_csv: Path, areas_csv: Path) -> None:
    """The valid, distinct addresses (in postcode order) and the repaired ballot areas, as CSV
    with hex WKB geometries: exact coordinates, which PostGIS reads directly."""
    files = [str(p) for p in inputs.drop_files]
    with duckdb.connect(config={"autoinstall_known_extensions": False}) as conn:
        conn.execute("LOAD '" + str(spatial_extension()).replace("'", "''") + "'")
        define_valid_addresses(conn, files)
        define_ballot_areas(conn, str(inputs.ballots))
        conn.execute(_EXPORT_ADDRESSES, {"path": str(addresses_csv)})
        conn.execute(_EXPORT_AREAS, {"path": str(areas_csv)})


def _copy_in(conn: psycopg.Connection, table: str, path: Path) -> None:
    with (
        conn.cursor() as cursor,
        path.open("rb") as source,
        cursor.copy(f"COPY {table} FROM STDIN (FORMAT csv)") as copy,
    ):
        while block := source.read(1 << 20):
            copy.write(block)


def _scalar(conn: psycopg.Connection, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def _as_server_user() -> list[str]:
    return ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
