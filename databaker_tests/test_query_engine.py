"""The DuckDB engine runs named .sql files with bound, validated parameters, offline."""

import subprocess
import sys
from pathlib import Path

import pytest

from databaker.resources import DuckDBQueryEngine, QueryError, SqlQuery


def query(folder: Path, name: str, sql: str) -> SqlQuery:
    (folder / f"{name}.duckdb.sql").write_text(sql)
    return SqlQuery(folder, name)


def test_runs_every_statement_and_returns_the_last_result(tmp_path, engine):
    q = query(
        tmp_path,
        "two_steps",
        "CREATE TEMP TABLE t AS SELECT unnest($values) AS v;\nSELECT sum(v) AS total FROM t;",
    )
    assert engine.run(q, {"values": [1, 2, 3]}).to_pylist() == [{"total": 6}]


def test_values_are_bound_never_spliced_into_the_sql(tmp_path, engine):
    hostile = "x'); DROP TABLE t; SELECT ('"
    q = query(tmp_path, "echo", "SELECT $text AS text;")
    assert engine.run(q, {"text": hostile}).to_pylist() == [{"text": hostile}]


def test_missing_and_unexpected_parameters_are_refused_before_running(tmp_path, engine):
    q = query(tmp_path, "needs_a", "SELECT $a AS a;")
    with pytest.raises(QueryError, match=r"needs_a\.duckdb\.sql.*missing: \['a'\]"):
        engine.run(q, {})
    with pytest.raises(QueryError, match=r"not used by the query: \['b'\]"):
        engine.run(q, {"a": 1, "b": 2})


def test_only_scalars_and_flat_lists_are_accepted(tmp_path, engine):
    q = query(tmp_path, "needs_a", "SELECT $a AS a;")
    with pytest.raises(QueryError, match=r"\$a must be a string, number, boolean, a flat"):
        engine.run(q, {"a": {"nested": 1}})
    with pytest.raises(QueryError):
        engine.run(q, {"a": [[1]]})


def test_sql_errors_name_the_file_and_the_statement(tmp_path, engine):
    q = query(tmp_path, "broken", "SELECT 1;\nSELECT * FROM no_such_table;")
    with pytest.raises(QueryError, match=r"broken\.duckdb\.sql \(statement 2\).*no_such_table"):
        engine.run(q)


def test_a_query_without_a_version_for_the_dialect_is_an_error(tmp_path, engine):
    with pytest.raises(QueryError, match="has no duckdb version"):
        engine.run(SqlQuery(tmp_path, "absent"))


def test_each_query_gets_a_fresh_connection(tmp_path, engine):
    engine.run(query(tmp_path, "make", "CREATE TEMP TABLE leftover AS SELECT 1 AS x;"))
    with pytest.raises(QueryError, match="leftover"):
        engine.run(query(tmp_path, "use", "SELECT * FROM leftover;"))


def test_what_a_query_sets_for_itself_never_reaches_the_next(tmp_path, engine):
    """The queries share one database per process (spatial is loaded once), never a session."""
    setting = "SELECT current_setting('preserve_insertion_order') AS preserved;"
    assert engine.run(query(tmp_path, "before", setting)).to_pylist() == [{"preserved": True}]
    engine.run(
        query(
            tmp_path,
            "sets",
            "CREATE TEMP MACRO twice(x) AS 2 * x;\nSET VARIABLE answer = 42;\n"
            "SET SESSION preserve_insertion_order = false;\nSELECT twice(getvariable('answer'));",
        )
    )
    with pytest.raises(QueryError, match="twice"):
        engine.run(query(tmp_path, "macro", "SELECT twice(1);"))
    variable = query(tmp_path, "variable", "SELECT getvariable('answer') AS answer;")
    assert engine.run(variable).to_pylist() == [{"answer": None}]
    assert engine.run(query(tmp_path, "after", setting)).to_pylist() == [{"preserved": True}]


def test_spatial_is_loaded_and_extensions_are_never_downloaded(tmp_path, engine):
    q = query(
        tmp_path,
        "spatial",
        "SELECT ST_Contains(ST_GeomFromText('POLYGON((0 0,2 0,2 2,0 2,0 0))'), ST_Point(1, 1))"
        " AS inside, current_setting('autoinstall_known_extensions') AS autoinstall,"
        " current_setting('autoload_known_extensions') AS autoload;",
    )
    assert engine.run(q).to_pylist() == [{"inside": True, "autoinstall": False, "autoload": False}]


def test_connection_settings_pass_through_to_duckdb(tmp_path):
    engine = DuckDBQueryEngine(connection_config={"threads": 1})
    q = query(tmp_path, "threads", "SELECT current_setting('threads') AS threads;")
    assert engine.run(q).to_pylist() == [{"threads": 1}]


THREADS = "SELECT current_setting('threads') AS threads, $place AS place;"


@pytest.mark.parametrize("database", [":memory:", "engine.duckdb"])
def test_a_query_on_s3_runs_on_more_threads_than_one_on_local_files(tmp_path, s3_env, database):
    """DuckDB waits for each request to S3 on the thread that makes it: a query on S3 gets
    four times the threads, at most 16 (or ``remote_threads``), every other query the
    configured ones."""
    where = str(tmp_path / database) if database != ":memory:" else database
    q = query(tmp_path, "threads", THREADS)
    on_s3 = {"place": f"s3://{s3_env.new_bucket()}/layers/"}
    local = {"place": str(tmp_path)}
    engine = DuckDBQueryEngine(database=where, connection_config={"threads": 2})
    assert engine.run(q, on_s3).column("threads").to_pylist() == [8]
    assert engine.run(q, local).column("threads").to_pylist() == [2]
    assert engine.run(q, on_s3).column("threads").to_pylist() == [8]
    chosen = DuckDBQueryEngine(database=where, connection_config={"threads": 2}, remote_threads=3)
    assert chosen.run(q, on_s3).column("threads").to_pylist() == [3]
    assert chosen.run(q, local).column("threads").to_pylist() == [2]
    many_cores = DuckDBQueryEngine(database=where, connection_config={"threads": 12})
    assert many_cores.run(q, on_s3).column("threads").to_pylist() == [16]


def test_a_database_file_is_free_for_other_processes_between_queries(tmp_path):
    """Only the in-memory database is kept open for the process; a file stays DuckDB's usual
    one-process-at-a-time resource, held for a query alone."""
    database = tmp_path / "engine.duckdb"
    engine = DuckDBQueryEngine(database=str(database))
    spatial = query(tmp_path, "spatial", "SELECT ST_AsText(ST_Point(1, 2)) AS point;")
    assert engine.run(spatial).to_pylist() == [{"point": "POINT (1 2)"}]
    other = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(database)!r}).close()"],
        capture_output=True,
        text=True,
    )
    assert other.returncode == 0, other.stderr
    assert engine.run(spatial).to_pylist() == [{"point": "POINT (1 2)"}]


def test_an_include_line_brings_in_the_shared_definitions(tmp_path, engine):
    """Both readings of areas include ``area_rules``: one text of the rules, the same reasons."""
    rules = query(
        tmp_path,
        "rules",
        "-- include area_rules\n"
        "SELECT area_srid($text) AS srid, area_fault($text, area_srid($text), area_wkt($text), "
        "TRY(ST_GeomFromText(area_wkt($text))), [], $pattern) AS fault;",
    )
    found = engine.run(rules, {"text": "srid=27700;POINT(1 2)", "pattern": "POLYGON"})
    assert found.to_pylist() == [
        {"srid": "27700", "fault": "geometry is in SRID 27700, not 4326 (lon/lat)"}
    ]
    missing = query(tmp_path, "missing", "-- include no_such_rules\nSELECT 1;")
    with pytest.raises(QueryError, match=r"no_such_rules\.duckdb\.sql is missing"):
        engine.run(missing)
