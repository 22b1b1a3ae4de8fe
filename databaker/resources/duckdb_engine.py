"""The embedded query engine: DuckDB with its spatial extension, no server needed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import duckdb_extension_spatial
import pyarrow as pa
from dagster_duckdb import DuckDBResource
from pydantic import Field

from databaker.resources.query_engine import (
    ParamValue,
    QueryEngine,
    QueryError,
    SqlQuery,
    checked_params,
)

# Extensions come from their PyPI wheels; DuckDB must never fetch one at run time.
_OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


@cache
def spatial_extension_path() -> Path:
    """The spatial extension binary shipped by the ``duckdb-extension-spatial`` wheel."""
    root = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    candidates = sorted(root.glob(f"v{duckdb.__version__}/spatial.duckdb_extension"))
    if not candidates:
        raise QueryError(
            f"the spatial extension for DuckDB {duckdb.__version__} is not installed under {root}; "
            "install duckdb-extension-spatial at the same version as duckdb"
        )
    return candidates[0]


class DuckDBQueryEngine(QueryEngine):
    """Runs ``<name>.duckdb.sql`` files on an embedded DuckDB, one fresh connection per query.

    A fresh connection keeps queries independent of each other, as they are on a distributed
    engine: temporary tables never leak from one query into the next.
    """

    database: str = Field(
        default=":memory:", description="DuckDB database file; in memory by default."
    )
    connection_config: dict[str, Any] = Field(
        default_factory=dict,
        description="DuckDB settings such as threads, memory_limit and temp_directory.",
    )

    @property
    def dialect(self) -> str:
        return "duckdb"

    def run(self, query: SqlQuery, params: Mapping[str, ParamValue] | None = None) -> pa.Table:
        sql_file = query.path(self.dialect)
        statements = duckdb.extract_statements(query.text(self.dialect))
        expected = set().union(*(s.named_parameters for s in statements)) if statements else set()
        values = checked_params(sql_file, expected, params or {})
        result = pa.table({})
        with self.connection() as conn:
            for number, statement in enumerate(statements, start=1):
                bound = {name: values[name] for name in statement.named_parameters}
                try:
                    cursor = conn.execute(statement, bound)
                    if number == len(statements):
                        result = cursor.to_arrow_table()
                except duckdb.Error as error:
                    raise QueryError(f"{sql_file} (statement {number}): {error}") from error
        return result

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection with the spatial extension loaded and extension downloads disabled."""
        resource = DuckDBResource(
            database=self.database, connection_config={**_OFFLINE, **self.connection_config}
        )
        with resource.get_connection() as conn:
            conn.execute(_load_statement(spatial_extension_path()))
            yield conn


def _load_statement(extension: Path) -> str:
    """``LOAD`` takes no bound parameters; the path is ours, quoted as a SQL string literal."""
    literal = str(extension).replace("'", "''")
    return f"LOAD '{literal}'"
