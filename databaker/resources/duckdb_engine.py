"""The embedded query engine: DuckDB with its spatial extension, no server needed."""

from __future__ import annotations

import atexit
import importlib
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
from dagster_duckdb import DuckDBResource
from pydantic import Field

from databaker.resources.aws import frozen_credentials, is_s3_url, s3_client
from databaker.resources.point_in_area import write_contains_join
from databaker.resources.query_engine import (
    ContainsJoin,
    NativeQuery,
    ParamValue,
    QueryEngine,
    QueryError,
    SqlQuery,
    TableRef,
    checked_params,
)

# Extensions come from their PyPI wheels; DuckDB must never fetch one at run time.
_OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}

_NOTHING_KEPT = {"enable_external_file_cache": False}
"""The database outlives its queries, so it keeps no blocks of the files they read."""

REMOTE_THREADS_PER_THREAD = 4
"""A query that reads or writes ``s3://`` runs on this many times DuckDB's threads. DuckDB 1.x
makes each request on the thread that then waits for it, so a thread a core leaves the cores
idle while requests wait; DuckDB's documentation suggests two to five times the cores for
remote files. Summarising the 17 AddressBase letters of a 1M bake took 0.8 to 0.9 s on eight
threads against 2.5 to 3.3 s on two, at 50 ms a request."""
MOST_REMOTE_THREADS = 16
"""The default's ceiling on a machine of many cores: DuckDB 1.5's S3 reads were reported to
fail resolving the host name on 32 threads and more (duckdb/duckdb-python#403), never on 8."""

MEMORY_LIMIT = "3GB"
"""DuckDB's share of a bake's memory: beyond it, DuckDB spills to its temporary directory.
DuckDB's own default (80% of RAM) would leave nothing for the Python side of a bake."""


@cache
def extension_path(name: str) -> Path:
    """An extension binary shipped by its ``duckdb-extension-<name>`` wheel."""
    package = importlib.import_module(f"duckdb_extension_{name}")
    root = Path(package.__file__).parent / "extensions"
    candidates = sorted(root.glob(f"v{duckdb.__version__}/{name}.duckdb_extension"))
    if not candidates:
        raise QueryError(
            f"the {name} extension for DuckDB {duckdb.__version__} is not installed under {root}; "
            f"install duckdb-extension-{name} at the same version as duckdb"
        )
    return candidates[0]


_databases: dict[tuple[Any, ...], duckdb.DuckDBPyConnection] = {}
_opening = threading.Lock()
_open_databases = ExitStack()
atexit.register(_open_databases.close)


class DuckDBQueryEngine(QueryEngine):
    """Runs ``<name>.duckdb.sql`` files on an embedded DuckDB, one fresh connection per query.

    A fresh connection keeps queries independent of each other, as they are on a distributed
    engine: temporary tables, macros, variables and session settings never leak from one query
    into the next. The connections are made on one database per process and configuration,
    opened once with its extensions loaded: loading spatial costs about 0.2 s, which a bake
    paid on every query when each query opened a database of its own.
    """

    database: str = Field(
        default=":memory:", description="DuckDB database file; in memory by default."
    )
    connection_config: dict[str, Any] = Field(
        default_factory=dict,
        description="DuckDB settings such as threads, memory_limit (default "
        f"{MEMORY_LIMIT}) and temp_directory (default: a folder in the system's temporary "
        "directory).",
    )
    remote_threads: int | None = Field(
        default=None,
        description="DuckDB threads for a query that reads or writes s3:// (default: "
        f"{REMOTE_THREADS_PER_THREAD} times threads, at most {MOST_REMOTE_THREADS}): DuckDB "
        "waits for each request on the thread that makes it, so more threads than cores keep "
        "more requests in flight.",
    )

    @property
    def dialect(self) -> str:
        return "duckdb"

    @property
    def functions_version(self) -> str:
        """DuckDB's ``hash`` may change between releases."""
        return f"duckdb {duckdb.__version__}"

    def run_sql(
        self,
        query: SqlQuery,
        params: Mapping[str, ParamValue] | None = None,
        *,
        streams: Mapping[str, pa.RecordBatchReader] | None = None,
    ) -> pa.Table:
        """Run every statement of ``query`` in order; return the last statement's rows.

        ``streams`` are read by the query as tables of those names, each once, as the caller
        produces its batches (input made in Python, too large to hold in memory).
        """
        sql_file = query.path(self.dialect)
        statements = duckdb.extract_statements(query.text(self.dialect))
        expected = set().union(*(s.named_parameters for s in statements)) if statements else set()
        values = checked_params(sql_file, expected, params or {})
        result = pa.table({})
        with self.connection(s3=_mentions_s3(values.values())) as conn:
            for name, stream in (streams or {}).items():
                conn.register(name, stream)
            for number, statement in enumerate(statements, start=1):
                bound = {name: _bindable(values[name]) for name in statement.named_parameters}
                try:
                    cursor = conn.execute(statement, bound)
                    if number == len(statements):
                        result = cursor.to_arrow_table()
                except duckdb.Error as error:
                    raise QueryError(f"{sql_file} (statement {number}): {error}") from error
        return result

    def run_contains_join(self, join: ContainsJoin, params: Mapping[str, ParamValue]) -> None:
        """The join on whole columns (:mod:`databaker.resources.point_in_area`), not in SQL."""
        expected = {join.points, join.areas, join.letters, "output"}
        values = checked_params(join.sql.path(self.dialect), expected, params)
        write_contains_join(
            points=_bindable(values[join.points]),
            areas=_bindable(values[join.areas]),
            letters=list(values[join.letters]),
            output=str(values["output"]),
            carried=join.carried,
            area_id=join.area_id,
            ids_column=join.ids_column,
            workers=self._threads(),
        )

    def run_native(self, query: NativeQuery, params: Mapping[str, ParamValue]) -> None:
        """The query's Python version, given the parameters its DuckDB SQL takes."""
        sql = query.sql
        statements = duckdb.extract_statements(sql.text(self.dialect))
        expected = set().union(*(s.named_parameters for s in statements)) if statements else set()
        values = checked_params(sql.path(self.dialect), expected, params)
        query.native(
            **{name: _bindable(value) for name, value in values.items()}, workers=self._threads()
        )

    @contextmanager
    def connection(self, *, s3: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A new connection, with spatial loaded, extension downloads disabled, and ``s3://``
        access through httpfs when ``s3`` is set (the secret renewed from the AWS chain)."""
        with self._database(remote=s3) as database:
            with _opening:
                conn = database.cursor()
            try:
                if s3:
                    conn.execute(f"LOAD {_literal(str(extension_path('httpfs')))}")
                    try:
                        conn.execute(_s3_secret_statement())
                    except duckdb.Error as error:
                        raise QueryError(
                            f"could not give DuckDB access to S3: {type(error).__name__}"
                        ) from None
                yield conn
            finally:
                conn.close()

    def _threads(self) -> int:
        """DuckDB's threads as configured (its default: one a core): the workers of the
        queries run in Python, as DuckDB's own would be."""
        return int(self.connection_config.get("threads") or _default_threads())

    def _remote_threads(self) -> int:
        return int(
            self.remote_threads
            or min(REMOTE_THREADS_PER_THREAD * self._threads(), MOST_REMOTE_THREADS)
        )

    @contextmanager
    def _database(self, *, remote: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """The database to connect to, opened through dagster-duckdb's resource with spatial
        loaded, on ``remote_threads`` for queries on S3 (``remote``). In memory (the default)
        it is this process's for this configuration, opened on first use and kept until the
        process exits, one for queries on S3 and one for the others; a database file is opened
        for the query alone, so that other processes may open it between queries, as before
        (with one configuration, which DuckDB requires of a file open twice in a process)."""
        config = {**_OFFLINE, **_NOTHING_KEPT, **_spilling(), **self.connection_config}
        in_memory = self.database == ":memory:"
        if remote and in_memory:
            config["threads"] = self._remote_threads()
        resource = DuckDBResource(database=self.database, connection_config=config)
        if not in_memory:
            with resource.get_connection() as database:
                database.execute(f"LOAD {_literal(str(extension_path('spatial')))}")
                if remote:
                    database.execute(f"SET threads = {self._remote_threads()}")
                yield database
            return
        key = (os.getpid(), repr(sorted(config.items())))
        with _opening:
            if key not in _databases:
                database = _open_databases.enter_context(resource.get_connection())
                database.execute(f"LOAD {_literal(str(extension_path('spatial')))}")
                _databases[key] = database
        yield _databases[key]


@cache
def _default_threads() -> int:
    with duckdb.connect(config=_OFFLINE) as conn:
        (threads,) = conn.execute("SELECT current_setting('threads')").fetchone()
    return int(threads)


def _spilling() -> dict[str, str]:
    """Where and beyond how much memory DuckDB spills, unless configured otherwise."""
    return {
        "memory_limit": MEMORY_LIMIT,
        "temp_directory": str(Path(tempfile.gettempdir()) / "databaker-duckdb"),
    }


def _bindable(value: ParamValue) -> Any:
    """DuckDB reads a table straight from the folder of its files."""
    return value.location if isinstance(value, TableRef) else value


def _mentions_s3(values: Iterable[ParamValue]) -> bool:
    for value in values:
        items = value if isinstance(value, list | tuple) else [_bindable(value)]
        if any(isinstance(item, str) and is_s3_url(item) for item in items):
            return True
    return False


def _s3_secret_statement() -> str:
    """A temporary DuckDB secret holding what the standard AWS chain resolves to.

    Statements that create secrets take no bound parameters, so values are quoted literals; the
    statement is executed and never logged. A non-AWS endpoint (SeaweedFS, MinIO...) is
    addressed by path, over plain HTTP if that is what its URL says.
    """
    client = s3_client()
    credentials = frozen_credentials()
    options: dict[str, str | bool] = {
        "KEY_ID": credentials.access_key,
        "SECRET": credentials.secret_key,
    }
    if credentials.token:
        options["SESSION_TOKEN"] = credentials.token
    if client.meta.region_name:
        options["REGION"] = client.meta.region_name
    endpoint = urlsplit(client.meta.endpoint_url)
    if not (endpoint.hostname or "").endswith(".amazonaws.com"):
        options |= {
            "ENDPOINT": endpoint.netloc,
            "URL_STYLE": "path",
            "USE_SSL": endpoint.scheme == "https",
        }
    settings = ", ".join(
        f"{name} {str(value).lower() if isinstance(value, bool) else _literal(value)}"
        for name, value in options.items()
    )
    return f"CREATE OR REPLACE TEMPORARY SECRET databaker_s3 (TYPE s3, {settings})"


def _literal(text: str) -> str:
    """A SQL string literal, for the statements that take no bound parameters."""
    return "'" + text.replace("'", "''") + "'"
