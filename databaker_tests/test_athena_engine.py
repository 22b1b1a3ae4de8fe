"""The Athena engine's client flow, against a real AWS emulator (moto) on 127.0.0.1.

Athena cannot run here, so the SQL is never executed: the emulator records the statements the
engine starts and answers them with results queued by each test, as Athena would send them.
"""

import logging
import math
import traceback
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest

from databaker.resources import athena_engine
from databaker.resources.athena_engine import AthenaQueryEngine
from databaker.resources.query_engine import QueryError, SqlQuery
from databaker_tests.athena_emulator import (
    REGION,
    SECRET_ACCESS_KEY,
    athena_emulator_fixture,  # noqa: F401
    free_port,
    moto_server_fixture,  # noqa: F401
    no_result,
    result_set,
)


def athena_query(folder: Path, name: str, sql: str) -> SqlQuery:
    (folder / f"{name}.athena.sql").write_text(sql)
    return SqlQuery(folder, name)


def engine(**config: Any) -> AthenaQueryEngine:
    """An engine that polls fast; the timeout only keeps a broken test from hanging."""
    return AthenaQueryEngine(
        **{"database": "elections", "poll_interval_seconds": 0.01, "timeout_seconds": 10, **config}
    )


def reported(error: BaseException) -> str:
    """The error's message, after checking that its full report never holds the secret key."""
    assert SECRET_ACCESS_KEY not in "".join(traceback.format_exception(error))
    return str(error)


def test_runs_each_statement_in_order_with_parameters_rendered_as_literals(
    tmp_path, athena_emulator
):
    athena_emulator.client().create_work_group(Name="bakery", Configuration={})
    athena_emulator.step_queries()
    athena_emulator.queue_results(no_result(), result_set([("n", "bigint")], [["2"]]))
    query = athena_query(
        tmp_path,
        "stage_then_count",
        "-- Stage one election's ballots, then count them.\n"
        "CREATE TABLE staged AS SELECT * FROM ballots WHERE election_id = $election;\n"
        "SELECT count(*) AS n FROM staged WHERE seats >= $seats AND ward IN (SELECT * FROM "
        "UNNEST($wards));\n",
    )
    athena = engine(workgroup="bakery", output_location="s3://bakery-results/athena/")

    table = athena.run(query, {"election": "local.o'neill.2026", "seats": 2, "wards": ["a"]})

    assert table.to_pylist() == [{"n": 2}]
    started = athena_emulator.executions()
    assert [execution["Query"] for execution in started] == [
        "CREATE TABLE staged AS SELECT * FROM ballots WHERE election_id = 'local.o''neill.2026'",
        "SELECT count(*) AS n FROM staged WHERE seats >= 2 AND ward IN (SELECT * FROM "
        "UNNEST(ARRAY['a']))",
    ]
    for execution in started:
        assert execution["Status"]["State"] == "SUCCEEDED"
        assert execution["QueryExecutionContext"] == {
            "Database": "elections",
            "Catalog": "AwsDataCatalog",
        }
        assert execution["WorkGroup"] == "bakery"
        assert execution["ResultConfiguration"]["OutputLocation"].startswith(
            "s3://bakery-results/athena/"
        )


def test_without_an_output_location_the_workgroup_decides_where_results_go(
    tmp_path, athena_emulator
):
    engine().run(athena_query(tmp_path, "one", "SELECT 1 AS one"))

    [execution] = athena_emulator.executions()
    assert execution["WorkGroup"] == "primary"
    assert not execution.get("ResultConfiguration")


# name, Athena type, the text Athena sends for two rows, the Arrow type and values returned
TYPED_COLUMNS = [
    ("ward", "varchar", ["Abbey", None], pa.string(), ["Abbey", None]),
    ("seats", "integer", ["3", "1"], pa.int64(), [3, 1]),
    ("electorate", "bigint", ["9000000000", None], pa.int64(), [9_000_000_000, None]),
    ("turnout", "double", ["0.5", "-Infinity"], pa.float64(), [0.5, -math.inf]),
    ("share", "decimal", ["12.25", "0"], pa.float64(), [12.25, 0.0]),
    ("contested", "boolean", ["true", "false"], pa.bool_(), [True, False]),
    ("polling_day", "date", ["2026-05-07", None], pa.string(), ["2026-05-07", None]),
    (
        "counted",
        "timestamp",
        ["2026-05-08 02:15:00.000", None],
        pa.string(),
        ["2026-05-08 02:15:00.000", None],
    ),
    ("candidates", "json", ['["Ada","Bo"]', "[]"], pa.list_(pa.string()), [["Ada", "Bo"], []]),
    (
        "centre",
        "json",
        ['{"lon":-0.1,"lat":51.5}', None],
        pa.struct([("lon", pa.float64()), ("lat", pa.float64())]),
        [{"lon": -0.1, "lat": 51.5}, None],
    ),
]


def test_values_are_typed_from_athenas_column_types_and_the_header_row_is_skipped(
    tmp_path, athena_emulator
):
    columns = [(name, athena_type) for name, athena_type, *_ in TYPED_COLUMNS]
    rows = zip(*(text for _, _, text, *_ in TYPED_COLUMNS), strict=True)
    athena_emulator.queue_results(result_set(columns, rows))

    table = engine().run(athena_query(tmp_path, "wards", "SELECT * FROM wards"))

    assert table.schema == pa.schema([(name, type_) for name, _, _, type_, _ in TYPED_COLUMNS])
    assert table.to_pydict() == {name: values for name, *_, values in TYPED_COLUMNS}


def test_a_statement_without_a_header_row_keeps_all_its_rows(tmp_path, athena_emulator):
    """DDL output such as SHOW TABLES has no header row: its first row is data."""
    athena_emulator.queue_results(
        result_set([("tab_name", "string")], [["tab_name"], ["ballots"]], header=False)
    )

    table = engine().run(athena_query(tmp_path, "tables", "SHOW TABLES IN elections"))

    assert table.to_pylist() == [{"tab_name": "tab_name"}, {"tab_name": "ballots"}]


def test_a_last_statement_without_columns_returns_an_empty_table(tmp_path, athena_emulator):
    athena_emulator.queue_results(no_result())
    query = athena_query(tmp_path, "unload", "UNLOAD (SELECT 1) TO 's3://b/out/' WITH ()")

    assert engine().run(query) == pa.table({})


def test_a_large_result_comes_back_complete_and_in_order_across_pages(tmp_path, athena_emulator):
    athena_emulator.queue_results(result_set([("n", "integer")], ([str(n)] for n in range(2500))))

    table = engine().run(athena_query(tmp_path, "many", "SELECT n FROM numbers ORDER BY n"))

    assert table.column("n").to_pylist() == list(range(2500))


def test_a_failed_statement_reports_athenas_reason_and_later_statements_never_start(
    tmp_path, athena_emulator
):
    reason = "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.elections.nope' does not exist"
    athena_emulator.fail_next_query(reason)
    query = athena_query(tmp_path, "broken", "SELECT * FROM nope;\nSELECT 2;")

    with pytest.raises(QueryError) as raised:
        engine().run(query)

    [execution] = athena_emulator.executions()
    assert execution["Status"]["State"] == "FAILED"
    message = reported(raised.value)
    assert "broken.athena.sql (statement 1)" in message
    assert f"Athena query {execution['QueryExecutionId']} FAILED: {reason}" in message
    assert message.count(reason) == 1  # StateChangeReason and AthenaError say the same


def test_a_query_cancelled_by_someone_else_is_an_error(tmp_path, athena_emulator, monkeypatch):
    athena_emulator.step_queries()
    athena = athena_emulator.client()

    def someone_cancels(seconds: float) -> None:
        [query_id] = athena.list_query_executions()["QueryExecutionIds"]
        athena.stop_query_execution(QueryExecutionId=query_id)

    monkeypatch.setattr(athena_engine, "sleep", someone_cancels)

    with pytest.raises(QueryError) as raised:
        engine().run(athena_query(tmp_path, "long", "SELECT * FROM everything"))

    [execution] = athena_emulator.executions()
    assert f"Athena query {execution['QueryExecutionId']} CANCELLED" in reported(raised.value)


def test_a_query_still_running_at_the_timeout_is_cancelled_and_reported(tmp_path, athena_emulator):
    athena_emulator.hold_queries()

    with pytest.raises(QueryError) as raised:
        engine(timeout_seconds=0.05).run(athena_query(tmp_path, "slow", "SELECT * FROM slow"))

    [execution] = athena_emulator.executions()
    assert execution["Status"]["State"] == "CANCELLED"
    assert (
        f"Athena query {execution['QueryExecutionId']} timed out after 0.05 s in state QUEUED "
        "and was cancelled"
    ) in reported(raised.value)


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, dg.DagsterExecutionInterruptedError])
def test_an_interrupted_wait_stops_the_query_and_lets_the_interruption_through(
    tmp_path, athena_emulator, monkeypatch, interruption
):
    athena_emulator.hold_queries()

    def interrupt(seconds: float) -> None:
        raise interruption()

    monkeypatch.setattr(athena_engine, "sleep", interrupt)

    with pytest.raises(interruption):
        engine().run(athena_query(tmp_path, "slow", "SELECT * FROM slow"))

    [execution] = athena_emulator.executions()
    assert execution["Status"]["State"] == "CANCELLED"


@pytest.mark.parametrize(
    ("params", "refusal"),
    [
        ({}, r"missing: \['seats'\]"),
        ({"seats": 1, "sets": 2}, r"not used by the query: \['sets'\]"),
        ({"seats": float("nan")}, r"statement 2\): parameter \$seats: nan"),
    ],
)
def test_parameters_are_refused_before_any_statement_starts(
    tmp_path, athena_emulator, params, refusal
):
    query = athena_query(tmp_path, "needs_seats", "SELECT 1;\nSELECT * FROM t WHERE n = $seats;")

    with pytest.raises(QueryError, match=refusal) as raised:
        engine().run(query, params)

    assert "needs_seats.athena.sql" in reported(raised.value)
    assert athena_emulator.executions() == []


def test_aws_errors_become_query_errors_with_the_aws_code_and_message(tmp_path, athena_emulator):
    query = athena_query(tmp_path, "lost", "SELECT 1")

    with pytest.raises(QueryError) as raised:
        engine(workgroup="no-such-workgroup").run(query)

    message = reported(raised.value)
    assert "lost.athena.sql (statement 1): StartQueryExecution failed" in message
    assert "InvalidRequestException: WorkGroup does not exist" in message


@pytest.mark.parametrize("athena_type", ["array(varchar)", "map(varchar, integer)", "row"])
def test_arrays_maps_and_rows_are_refused_in_favour_of_json(tmp_path, athena_emulator, athena_type):
    athena_emulator.queue_results(result_set([("wards", athena_type)], [["[a, b]"]]))

    with pytest.raises(QueryError) as raised:
        engine().run(athena_query(tmp_path, "nested", "SELECT wards FROM t"))

    assert "select CAST(wards AS JSON) instead" in reported(raised.value)


def test_the_endpoint_url_field_overrides_the_environment(tmp_path, athena_emulator, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")

    engine(endpoint_url=athena_emulator.url).run(athena_query(tmp_path, "one", "SELECT 1"))

    assert len(athena_emulator.executions()) == 1


def test_the_region_falls_back_to_aws_region(tmp_path, athena_emulator, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", REGION)

    engine().run(athena_query(tmp_path, "one", "SELECT 1"))

    assert len(athena_emulator.executions()) == 1


def test_without_any_region_the_error_names_the_file(tmp_path, athena_emulator, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")

    with pytest.raises(QueryError) as raised:
        engine().run(athena_query(tmp_path, "nowhere", "SELECT 1"))

    message = reported(raised.value)
    assert "nowhere.athena.sql: cannot create an Athena client" in message
    assert "region" in message


def test_logs_name_each_query_and_its_states_but_never_the_credentials(
    tmp_path, athena_emulator, caplog
):
    athena_emulator.step_queries()
    caplog.set_level(logging.DEBUG, logger=athena_engine.log.name)

    engine().run(athena_query(tmp_path, "logged", "SELECT 1"))

    [execution] = athena_emulator.executions()
    log = caplog.text
    assert f"started Athena query {execution['QueryExecutionId']}" in log
    assert "RUNNING" in log
    assert "SUCCEEDED" in log
    assert SECRET_ACCESS_KEY not in log


def test_a_steps_queries_are_in_its_runs_event_log_with_their_ids_states_and_bytes_scanned(
    tmp_path, athena_emulator
):
    athena_emulator.step_queries()
    athena_emulator.scan(123_456_789)
    query = athena_query(tmp_path, "counted", "SELECT 1 AS one")

    @dg.asset
    def counted(athena: AthenaQueryEngine) -> None:
        athena.run(query)

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([counted], resources={"athena": engine()}, instance=instance)
        logged = [
            entry.user_message
            for entry in instance.all_logs(result.run_id)
            if not entry.is_dagster_event and entry.step_key == "counted"
        ]

    [execution] = athena_emulator.executions()
    query_id = execution["QueryExecutionId"]
    where = f"{tmp_path / 'counted.athena.sql'} (statement 1)"
    assert logged == [
        f"{where}: started Athena query {query_id}",
        f"{where}: Athena query {query_id} is RUNNING",
        f"{where}: Athena query {query_id} is SUCCEEDED, 123,456,789 bytes scanned",
    ]
