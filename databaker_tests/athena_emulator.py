"""A real AWS emulator on loopback for the Athena engine's client flow: moto in server mode.

The engine reaches it over HTTP exactly as it reaches AWS (boto3, signed requests, Athena's
JSON protocol), so the tests exercise the real client flow; only the SQL is never executed:
moto answers each query with the results a test queued for it.

Everything goes through moto's public HTTP APIs where they exist: queued results
(``/moto-api/static/athena/query-results``), state progression
(``/moto-api/state-manager/set-transition``) and ``/moto-api/reset``. moto 5.2.5 lacks three
things real Athena has and the engine relies on, so this module adds exactly those to the
in-process server, for the duration of one test (and one thing it leaves at zero):

* paging of GetQueryResults: at most ``MaxResults`` rows a call (1000 by default and at most,
  as in Athena) and a ``NextToken`` for the rest; moto returns every row at once;
* a FAILED state: moto's executions only ever succeed or are cancelled;
  :meth:`AthenaEmulator.fail_next_query` makes the next started execution end FAILED;
* the failure's ``StateChangeReason`` and ``AthenaError`` in GetQueryExecution's ``Status``;
* the bytes a query scanned, in its ``Statistics``: :meth:`AthenaEmulator.scan` sets them.

A test module imports both fixtures to use ``athena_emulator``:
``from databaker_tests.athena_emulator import athena_emulator_fixture, moto_server_fixture``.
"""

import json
import os
import socket
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto.athena.models import AthenaBackend
from moto.athena.responses import AthenaResponse
from moto.server import ThreadedMotoServer

REGION = "eu-west-2"
ACCESS_KEY_ID = "AKIAEMULATOREXAMPLE"
# Distinctive, so a test can prove that it never appears in an error message or a log line.
SECRET_ACCESS_KEY = "emulator-secret-9f2c41d7-never-print-me"

_EXECUTION_MODEL = "athena::execution"
_PAGE_LIMIT = 1000
# A user error (ErrorCategory 2) of the generic user type (ErrorType 1000), as Athena reports
# a query that names a missing table or column.
_USER_ERROR = {"ErrorCategory": 2, "ErrorType": 1000, "Retryable": False}
_AWS_SETTINGS_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_ENDPOINT_URL_ATHENA",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)


@dataclass
class AthenaEmulator:
    """Controls for the emulator, plus a boto3 client to look at what the engine did."""

    url: str
    _pending_failures: list[tuple[str, str]] = field(default_factory=list)
    _statistics: dict[str, int] = field(default_factory=dict)

    def client(self) -> Any:
        return boto3.client("athena", endpoint_url=self.url, region_name=REGION)

    def queue_results(self, *results: dict[str, Any]) -> None:
        """Results for the next statements to start, one each, in order.

        moto hands a queued result to each execution as it starts, so a test queues one for
        every statement of a file, not only the last (see :func:`no_result`).
        """
        self._moto_api("static/athena/query-results", {"region": REGION, "results": results})

    def hold_queries(self) -> None:
        """Keep every query QUEUED until someone stops it."""
        self._set_progression({"progression": "manual", "times": 10**9})

    def step_queries(self) -> None:
        """Move a query one state on at each GetQueryExecution: RUNNING, then its final state."""
        self._set_progression({"progression": "manual", "times": 1})

    def fail_next_query(self, reason: str, *, containing: str = "") -> None:
        """The next execution to start (whose SQL holds ``containing``) runs, then ends FAILED
        with ``reason`` (an extension)."""
        self._pending_failures.append((reason, containing))

    def scan(self, scanned_bytes: int) -> None:
        """Every execution reports ``scanned_bytes`` as its ``DataScannedInBytes`` (an
        extension: moto reports 0)."""
        self._statistics["DataScannedInBytes"] = scanned_bytes

    def executions(self) -> list[dict[str, Any]]:
        """Every execution started, as GetQueryExecution describes it.

        moto lists executions in the order they started. Describing one counts as a poll for
        :meth:`step_queries`.
        """
        athena = self.client()
        ids = athena.list_query_executions()["QueryExecutionIds"]
        return [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]

    def _set_progression(self, transition: dict[str, Any]) -> None:
        self._moto_api(
            "state-manager/set-transition",
            {"model_name": _EXECUTION_MODEL, "transition": transition},
        )

    def _moto_api(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.url}/moto-api/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def result_set(
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[str | None]],
    *,
    header: bool = True,
) -> dict[str, Any]:
    """A query result as Athena sends it: ``(name, type)`` columns and every value as text.

    ``None`` is a NULL (a datum without ``VarCharValue``). For a SELECT, Athena repeats the
    column names as the first row, hence ``header``.
    """
    names = [name for name, _ in columns]
    text_rows = [names] if header else []
    text_rows += [list(row) for row in rows]
    return {
        "rows": [
            {"Data": [{} if value is None else {"VarCharValue": value} for value in row]}
            for row in text_rows
        ],
        "column_info": [
            {
                "CatalogName": "hive",
                "SchemaName": "",
                "TableName": "",
                "Name": name,
                "Label": name,
                "Type": athena_type,
                "Precision": 0,
                "Scale": 0,
                "Nullable": "UNKNOWN",
                "CaseSensitive": athena_type == "varchar",
            }
            for name, athena_type in columns
        ],
    }


def no_result() -> dict[str, Any]:
    """The result of a statement that returns nothing, such as DDL."""
    return {"rows": [], "column_info": []}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module", name="moto_server")
def moto_server_fixture() -> Iterator[str]:
    """moto in server mode on a free loopback port, for the tests of one module."""
    with running_moto_server() as url:
        yield url


@contextmanager
def running_moto_server() -> Iterator[str]:
    """moto in server mode on a free loopback port until the block ends; its URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(name="athena_emulator")
def athena_emulator_fixture(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AthenaEmulator]:
    """A fresh emulator, with test credentials and every AWS client pointed at it."""
    for name in _AWS_SETTINGS_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    emulator = AthenaEmulator(moto_server)
    _add_missing_athena_behaviour(monkeypatch, emulator._pending_failures, emulator._statistics)
    emulator._moto_api("reset", {})
    try:
        yield emulator
    finally:
        emulator._moto_api("state-manager/unset-transition", {"model_name": _EXECUTION_MODEL})
        emulator._moto_api("reset", {})


def _add_missing_athena_behaviour(
    monkeypatch: pytest.MonkeyPatch, failures: list[tuple[str, str]], statistics: dict[str, int]
) -> None:
    """Patch moto's Athena, served from this process, with the behaviours it lacks."""
    start = AthenaBackend.start_query_execution
    describe = AthenaResponse.get_query_execution

    def start_query_execution(backend: AthenaBackend, *args: Any, **kwargs: Any) -> str:
        query_id = start(backend, *args, **kwargs)
        execution = backend.executions[query_id]
        failure = next((f for f in failures if f[1] in execution.query), None)
        if failure is not None:
            failures.remove(failure)
            # The same lifecycle as moto's own, ending FAILED instead of SUCCEEDED.
            execution._transitions = [("QUEUED", "RUNNING"), ("RUNNING", "FAILED")]
            execution.failure_reason = failure[0]
        return query_id

    def get_query_execution(response: AthenaResponse) -> str:
        body = json.loads(describe(response))
        query_id = body["QueryExecution"]["QueryExecutionId"]
        reason = getattr(response.athena_backend.executions[query_id], "failure_reason", None)
        status = body["QueryExecution"]["Status"]
        if reason is not None and status["State"] == "FAILED":
            status["StateChangeReason"] = reason
            status["AthenaError"] = {**_USER_ERROR, "ErrorMessage": reason}
        body["QueryExecution"]["Statistics"].update(statistics)
        return json.dumps(body)

    monkeypatch.setattr(AthenaBackend, "start_query_execution", start_query_execution)
    monkeypatch.setattr(AthenaResponse, "get_query_execution", get_query_execution)
    monkeypatch.setattr(AthenaResponse, "get_query_results", _paged_query_results)


def _paged_query_results(response: AthenaResponse) -> str | tuple[str, dict[str, int]]:
    """GetQueryResults as Athena pages it; the token is the offset of the next row."""
    query_id = response._get_param("QueryExecutionId")
    limit = response._get_param("MaxResults") or _PAGE_LIMIT
    if not 1 <= limit <= _PAGE_LIMIT:
        return response.error(f"MaxResults must be between 1 and {_PAGE_LIMIT}", 400)
    offset = int(response._get_param("NextToken") or 0)
    body = response.athena_backend.get_query_results(query_id).to_dict()
    rows = body["ResultSet"]["Rows"]
    body["ResultSet"]["Rows"] = rows[offset : offset + limit]
    if offset + limit < len(rows):
        body["NextToken"] = str(offset + limit)
    return json.dumps(body)
