"""The query-engine seam: run a named SQL query with bound, validated parameters.

Assets never build SQL strings. They name a query that lives in a ``.sql`` file beside the
layer that runs it (``<name>.<dialect>.sql``) and pass values that the engine binds as query
parameters, so a path or a ballot ID can never change the shape of a statement.

A query reads the project's tables through :class:`TableRef` parameters: DuckDB reads the
table's files at its location, Athena reads the Glue table of that name, which the engine
declares (with that location) before the query runs.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow as pa

from databaker.resources.layer_store import LayerStore

Scalar = str | int | float | bool
SHARED_SQL = Path(__file__).resolve().parents[1]
"""Where ``-- include <name>`` finds ``<name>.<dialect>.sql``: the package's own folder."""
INCLUDE = re.compile(r"-- include [a-z_]+")


class QueryError(Exception):
    """A query could not run; the message names the query file and the reason."""


@dataclass(frozen=True)
class SqlQuery:
    """A query known by name; each engine dialect has its own file for it."""

    folder: Path
    name: str

    @classmethod
    def beside(cls, module_file: str, name: str) -> SqlQuery:
        """The query ``name`` stored next to the Python module ``module_file``."""
        return cls(Path(module_file).resolve().parent, name)

    def path(self, dialect: str) -> Path:
        return self.folder / f"{self.name}.{dialect}.sql"

    def text(self, dialect: str) -> str:
        """The query's text, each ``-- include <name>`` line replaced by the statements of
        ``<name>.<dialect>.sql`` in the package's folder: definitions (macros) that several
        queries share."""
        path = self.path(dialect)
        if not path.is_file():
            raise QueryError(f"query {self.name!r} has no {dialect} version: {path} is missing")
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        return "".join(
            SqlQuery(SHARED_SQL, line.split()[2]).text(dialect) + "\n"
            if INCLUDE.fullmatch(line.strip())
            else line
            for line in lines
        )


@dataclass(frozen=True)
class Table:
    """One of the project's tables: its name, its prefix in the layer store, and its
    declaration for engines with a catalog (``<name>_table.<dialect>.sql``, taking
    ``$location``), kept beside the asset that writes the table."""

    name: str
    prefix: str
    declaration: SqlQuery

    @classmethod
    def beside(cls, module_file: str, name: str) -> Table:
        return cls(name, f"{name}/", SqlQuery.beside(module_file, f"{name}_table"))

    def in_store(self, store: LayerStore) -> TableRef:
        """This table as a query parameter, its files where ``store`` keeps them."""
        return TableRef(self.name, store.uri(self.prefix), self.declaration)


@dataclass(frozen=True)
class TableRef:
    """A table parameter: the table's name, the folder of its files, and its declaration."""

    name: str
    location: str
    declaration: SqlQuery


ParamValue = Scalar | Sequence[Scalar] | TableRef


@dataclass(frozen=True)
class ContainsJoin:
    """A point-in-area join: every point with the IDs of the areas that contain it.

    Its SQL (``sql``, one file per dialect) is the definition; an engine with a faster way to
    compute the same rows may run that instead. Both take the same parameters: a points table
    (``longitude``, ``latitude``, ``first_letter`` and the ``carried`` columns), an areas table
    (``area_id`` and ``geometry``), the letters to build, and ``$output``, a folder receiving
    ``first_letter=<L>/`` parquet partitions. Each point of those letters is written once with its
    ``carried`` columns and ``ids_column``: the sorted, distinct ``area_id`` of every area that
    contains it (boundaries excluded, as ``ST_Contains``), empty when none does.
    """

    sql: SqlQuery
    points: str
    areas: str
    letters: str
    carried: tuple[str, ...]
    area_id: str
    ids_column: str


@dataclass(frozen=True)
class NativeQuery:
    """A query whose SQL (``sql``, one file per dialect) is the definition, which the embedded
    engine runs as ``native`` instead: the same rows, computed on whole columns in Python
    where DuckDB would hold too much in memory. ``native`` takes the query's parameters, tables
    as the folders of their files, and writes what the SQL writes (it returns no rows)."""

    sql: SqlQuery
    native: Callable[..., None]


Query = SqlQuery | ContainsJoin | NativeQuery


def checked_params(
    query_file: Path, expected: set[str], params: Mapping[str, ParamValue]
) -> dict[str, ParamValue]:
    """Return ``params`` if they are exactly the parameters the query uses, with plain values.

    A missing parameter, an unexpected one (usually a typo) or a value that is not a scalar or a
    flat list of scalars is refused before anything runs.
    """
    missing = sorted(expected - params.keys())
    unexpected = sorted(params.keys() - expected)
    if missing or unexpected:
        raise QueryError(
            f"{query_file}: parameters do not match the query "
            f"(missing: {missing or 'none'}; not used by the query: {unexpected or 'none'})"
        )
    for name, value in params.items():
        if not _is_plain(value):
            raise QueryError(
                f"{query_file}: parameter ${name} must be a string, number, boolean, a flat "
                f"list of those, or a table, not {type(value).__name__}"
            )
    return dict(params)


def _is_plain(value: object) -> bool:
    if isinstance(value, Scalar | TableRef):
        return True
    if isinstance(value, list | tuple):
        return all(isinstance(item, Scalar) for item in value)
    return False


class QueryEngine(dg.ConfigurableResource, ABC):
    """Runs the project's named queries; the local and production engines are siblings."""

    @property
    @abstractmethod
    def dialect(self) -> str:
        """Which ``<name>.<dialect>.sql`` file this engine runs."""

    @property
    def functions_version(self) -> str:
        """The engine and version whose SQL functions computed a result kept for later runs:
        a checksum of the engine's hashes (:mod:`databaker.layers.letter_summaries`) is
        compared only with checksums of the same functions."""
        return self.dialect

    @property
    def shares_table_names(self) -> bool:
        """Whether a table parameter is declared under its name in a catalog that other runs
        share (Athena's Glue database): giving a project table another location for one query
        would move it for every query meanwhile. The embedded engine reads each table from its
        location."""
        return False

    def run(self, query: Query, params: Mapping[str, ParamValue] | None = None) -> pa.Table:
        """Run ``query``: every statement of a SQL query in order, returning the last
        statement's rows; a point-in-area join the engine's fastest way (no rows returned)."""
        if isinstance(query, ContainsJoin):
            self.run_contains_join(query, params or {})
            return pa.table({})
        if isinstance(query, NativeQuery):
            self.run_native(query, params or {})
            return pa.table({})
        return self.run_sql(query, params)

    @abstractmethod
    def run_sql(self, query: SqlQuery, params: Mapping[str, ParamValue] | None = None) -> pa.Table:
        """Run every statement of ``query`` in order; return the last statement's rows."""

    def run_contains_join(self, join: ContainsJoin, params: Mapping[str, ParamValue]) -> None:
        """Write the join's partitions; engines without a native join run its SQL."""
        self.run_sql(join.sql, params)

    def run_native(self, query: NativeQuery, params: Mapping[str, ParamValue]) -> None:
        """Run a query with a native version; engines that do not run it natively run its SQL."""
        self.run_sql(query.sql, params)
