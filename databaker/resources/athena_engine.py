"""The production query engine: Amazon Athena, driven through boto3.

Each statement of a ``<name>.athena.sql`` file is one Athena query execution, started only
after the one before it succeeded. Parameters are checked against the whole file and rendered
into every statement before the first one starts, so a bad value never leaves a query half run.
A query this engine stops waiting for (timeout, interruption, an AWS error while polling) is
stopped in Athena too, so nothing keeps scanning, and billing, after the run has given up.

Each query's id, its states and the bytes it scanned (what Athena bills) are logged through
Dagster's logger: inside a step they are in the run's event log and in ``databaker bake``'s
output, so a slow or costly query can be found in the Athena console by its id.
"""

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from time import monotonic, sleep
from typing import Any

import dagster as dg
import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from databaker.resources.athena_sql import placeholders, render, statements
from databaker.resources.aws import aws_reason, aws_session
from databaker.resources.query_engine import (
    ParamValue,
    QueryEngine,
    QueryError,
    SqlQuery,
    TableRef,
    checked_params,
)

log = dg.get_dagster_logger("athena")

_FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_PAGE_SIZE = 1000  # the most GetQueryResults returns per call


class AthenaQueryEngine(QueryEngine):
    """Runs ``<name>.athena.sql`` files on Amazon Athena, one query execution per statement.

    Credentials are deliberately not configuration: boto3 finds them through the standard AWS
    chain (environment, profile, container or instance role), so they never pass through
    Dagster's run config, logs, metadata or error messages.

    The last statement's rows come back through GetQueryResults, 1000 rows a call: fine for
    summaries and samples, slow for millions of rows, which a query should write with UNLOAD
    or CREATE TABLE AS instead.
    """

    database: str = Field(description="Glue database the queries run in.")
    workgroup: str = Field(default="primary", description="Athena workgroup to run queries in.")
    output_location: str | None = Field(
        default=None,
        description="s3:// URL for query results; may be omitted when the workgroup sets one.",
    )
    catalog: str = Field(default="AwsDataCatalog", description="Data catalog of the database.")
    region_name: str | None = Field(
        default=None,
        description=(
            "AWS region; by default the standard AWS chain (AWS_DEFAULT_REGION, the profile), "
            "then AWS_REGION."
        ),
    )
    endpoint_url: str | None = Field(
        default=None,
        description=(
            "Athena endpoint; by default boto3's own resolution, which honours "
            "AWS_ENDPOINT_URL_ATHENA and AWS_ENDPOINT_URL."
        ),
    )
    poll_interval_seconds: float = Field(
        default=1.0, gt=0, description="Seconds between two status checks of a running query."
    )
    timeout_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="Longest wait for one statement to finish before it is cancelled.",
    )

    @property
    def dialect(self) -> str:
        return "athena"

    @property
    def shares_table_names(self) -> bool:
        return True

    def run_sql(self, query: SqlQuery, params: Mapping[str, ParamValue] | None = None) -> pa.Table:
        sql_file = query.path(self.dialect)
        rendered = self._rendered_statements(query, params or {})
        if not rendered:
            return pa.table({})
        client = self._client(str(sql_file))
        result = pa.table({})
        for number, (where, sql) in enumerate(rendered, start=1):
            execution = self._execute(client, sql, where)
            if number == len(rendered):
                result = _table(*_results(client, execution, where), where)
        return result

    def _rendered_statements(
        self, query: SqlQuery, params: Mapping[str, ParamValue]
    ) -> list[tuple[str, str]]:
        """``(where, sql)`` for each statement to run: first the declarations of the tables the
        query reads (each makes its Glue table exist and point at the table's location), then
        the query's own statements."""
        tables: dict[str, TableRef] = {}
        own = self._rendered(query, params, tables)
        declarations = [
            statement
            for table in tables.values()
            for statement in self._rendered(table.declaration, {"location": table.location}, {})
        ]
        return declarations + own

    def _rendered(
        self, query: SqlQuery, params: Mapping[str, ParamValue], tables: dict[str, TableRef]
    ) -> list[tuple[str, str]]:
        """``query`` rendered with ``params``; the tables among them are added to ``tables``."""
        sql_file = query.path(self.dialect)
        text = query.text(self.dialect)
        try:
            parts = statements(text)
        except QueryError as error:
            raise QueryError(f"{sql_file}: {error}") from error
        expected = set().union(*(placeholders(part) for part in parts))
        values = checked_params(sql_file, expected, params)
        tables.update({v.name: v for v in values.values() if isinstance(v, TableRef)})
        rendered = []
        for number, part in enumerate(parts, start=1):
            where = f"{sql_file} (statement {number})"
            try:
                rendered.append((where, render(part, values)))
            except QueryError as error:
                raise QueryError(f"{where}: {error}") from error
        return rendered

    def _client(self, where: str) -> Any:
        """A client for one run, on the standard AWS chain."""
        with _aws_errors(f"{where}: cannot create an Athena client"):
            session = aws_session(self.region_name)
            return session.client("athena", endpoint_url=self.endpoint_url)

    def _execute(self, client: Any, sql: str, where: str) -> dict[str, Any]:
        """Start one statement and wait for it; return its QueryExecution if it succeeded."""
        request: dict[str, Any] = {
            "QueryString": sql,
            "QueryExecutionContext": {"Database": self.database, "Catalog": self.catalog},
            "WorkGroup": self.workgroup,
        }
        if self.output_location is not None:
            request["ResultConfiguration"] = {"OutputLocation": self.output_location}
        with _aws_errors(f"{where}: StartQueryExecution failed"):
            query_id = client.start_query_execution(**request)["QueryExecutionId"]
        log.info("%s: started Athena query %s", where, query_id)
        where = f"{where}: Athena query {query_id}"
        execution = self._wait(client, query_id, where)
        status = execution["Status"]
        if status["State"] != "SUCCEEDED":
            raise QueryError(f"{where} {status['State']}: {_reason(status)}")
        return execution

    def _wait(self, client: Any, query_id: str, where: str) -> dict[str, Any]:
        """Poll until the query reaches a final state, or stop it and raise.

        Whatever ends the wait early (the timeout, an AWS error, KeyboardInterrupt, Dagster
        terminating the run) stops the query in Athena first.
        """
        deadline = monotonic() + self.timeout_seconds
        state = None
        try:
            while True:
                with _aws_errors(f"{where}: GetQueryExecution failed"):
                    response = client.get_query_execution(QueryExecutionId=query_id)
                execution = response["QueryExecution"]
                if execution["Status"]["State"] != state:
                    state = execution["Status"]["State"]
                    log.info("%s is %s%s", where, state, _scanned(execution, state))
                if state in _FINAL_STATES or monotonic() >= deadline:
                    break
                sleep(min(self.poll_interval_seconds, max(deadline - monotonic(), 0.0)))
        except BaseException:
            _stop_quietly(client, query_id)
            raise
        if state not in _FINAL_STATES:
            outcome = _stop_after_timeout(client, query_id)
            raise QueryError(
                f"{where} timed out after {self.timeout_seconds:g} s in state {state} and {outcome}"
            )
        return execution


def _scanned(execution: Mapping[str, Any], state: str) -> str:
    """What a query that ended scanned, as Athena counts it for billing; nothing before then."""
    scanned = execution.get("Statistics", {}).get("DataScannedInBytes")
    if state not in _FINAL_STATES or scanned is None:
        return ""
    return f", {scanned:,} bytes scanned"


def _reason(status: Mapping[str, Any]) -> str:
    """Athena's own words for why a query ended, without repeating the same sentence twice."""
    reasons = [status.get("StateChangeReason"), status.get("AthenaError", {}).get("ErrorMessage")]
    unique = list(dict.fromkeys(reason for reason in reasons if reason))
    return "; ".join(unique) or "Athena gave no reason"


def _stop_quietly(client: Any, query_id: str) -> None:
    """Best effort: the error that ended the wait matters more than a failure to stop."""
    try:
        client.stop_query_execution(QueryExecutionId=query_id)
        log.info("stopped Athena query %s", query_id)
    except Exception:
        log.warning("could not stop Athena query %s; it may still be running", query_id)


def _stop_after_timeout(client: Any, query_id: str) -> str:
    try:
        client.stop_query_execution(QueryExecutionId=query_id)
    except (ClientError, BotoCoreError) as error:
        return f"could not be cancelled ({aws_reason(error)})"
    log.info("stopped Athena query %s after its timeout", query_id)
    return "was cancelled"


@contextmanager
def _aws_errors(what: str) -> Iterator[None]:
    """Turn boto3's errors into QueryErrors that say what failed and AWS's reason."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise QueryError(f"{what}: {aws_reason(error)}") from error


def _results(
    client: Any, execution: Mapping[str, Any], where: str
) -> tuple[list[dict[str, Any]], list[list[str | None]]]:
    """The statement's columns and every page of its rows, without the SELECT header row."""
    query_id = execution["QueryExecutionId"]
    columns: list[dict[str, Any]] | None = None
    rows: list[dict[str, Any]] = []
    pages = client.get_paginator("get_query_results").paginate(
        QueryExecutionId=query_id, PaginationConfig={"PageSize": _PAGE_SIZE}
    )
    with _aws_errors(f"{where}: Athena query {query_id}: GetQueryResults failed"):
        for page in pages:
            result_set = page.get("ResultSet", {})
            if columns is None:
                columns = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
            rows.extend(result_set.get("Rows", []))
    columns = columns or []
    values = [_values(row, len(columns)) for row in rows]
    names = [column["Name"] for column in columns]
    if execution.get("StatementType") == "DML" and values and values[0] == names:
        values = values[1:]
    return columns, values


def _values(row: Mapping[str, Any], width: int) -> list[str | None]:
    """A row's text values; a datum without ``VarCharValue`` is NULL."""
    data = row.get("Data", [])
    return [data[i].get("VarCharValue") if i < len(data) else None for i in range(width)]


def _table(
    columns: Sequence[Mapping[str, Any]], rows: Sequence[Sequence[str | None]], where: str
) -> pa.Table:
    if not columns:
        return pa.table({})
    arrays = [_column(column, [row[i] for row in rows], where) for i, column in enumerate(columns)]
    return pa.Table.from_arrays(arrays, names=[column["Name"] for column in columns])


def _boolean(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"{text!r} is not a boolean")
    return text == "true"


_Converter = tuple[Callable[[str], Any], pa.DataType]
_TEXT: _Converter = (str, pa.string())
_INTEGER: _Converter = (int, pa.int64())
_DOUBLE: _Converter = (float, pa.float64())
_CONVERTERS: dict[str, _Converter] = {
    **dict.fromkeys(["varchar", "char", "string", "date", "time", "timestamp"], _TEXT),
    **dict.fromkeys(["tinyint", "smallint", "integer", "int", "bigint"], _INTEGER),
    **dict.fromkeys(["double", "float", "real", "decimal"], _DOUBLE),
    "boolean": (_boolean, pa.bool_()),
}
_AMBIGUOUS = frozenset({"array", "map", "row", "struct"})


def _column(column: Mapping[str, Any], values: Sequence[str | None], where: str) -> pa.Array:
    """Athena sends every value as text; ``ColumnInfo.Type`` says how to read it back.

    ``json`` values are parsed and left to pyarrow, so a query selecting ``CAST(x AS JSON)``
    gives callers lists and dicts, as DuckDB's list and struct columns do. (``json_format``
    would not: it returns varchar, which stays a string.)
    """
    name, athena_type = column["Name"], column.get("Type", "")
    base = re.split(r"[\s(<]", athena_type.strip().lower(), maxsplit=1)[0]
    if base in _AMBIGUOUS:
        raise QueryError(
            f"{where}: column {name!r} is an Athena {athena_type}, which Athena returns as "
            f"ambiguous text; select CAST({name} AS JSON) instead"
        )
    if base != "json" and base not in _CONVERTERS:
        raise QueryError(
            f"{where}: column {name!r} has Athena type {athena_type!r}, which this engine does "
            "not read; cast it to varchar, bigint, double or boolean"
        )
    try:
        if base == "json":
            return pa.array([None if value is None else json.loads(value) for value in values])
        parse, arrow_type = _CONVERTERS[base]
        return pa.array(
            [None if value is None else parse(value) for value in values], type=arrow_type
        )
    except (ValueError, TypeError, pa.ArrowException) as error:
        raise QueryError(f"{where}: column {name!r} ({athena_type}): {error}") from error
