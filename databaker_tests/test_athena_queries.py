"""The Athena (Trino) SQL: every statement parses, and each query means what its DuckDB twin does.

Athena cannot run here. Two things stand in for it:

- every statement of every ``.athena.sql`` file is rendered with its parameters and parsed by
  sqlglot's Athena dialect, strictly, so a syntax error cannot reach production;
- each query's rows are computed by transpiling it to DuckDB and running it on crafted tables,
  then compared with what the DuckDB engine's own version of the query returns on the same
  tables: the two engines are held to the same contract.
"""

import json
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import shapely
import sqlglot
from sqlglot import exp

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE, ADDRESSBASE_RAW_TABLE
from databaker.assets.addressbase.assets import PARTITIONED_QUERY, REPEATED_LETTERS_QUERY
from databaker.assets.addressbase.checks import DUPLICATES_QUERY
from databaker.assets.boundary_reviews import BOUNDARY_REVIEW_DIVISIONS_TABLE
from databaker.assets.current_ballots import CURRENT_BALLOTS_TABLE
from databaker.assets.current_boundary_reviews.join import (
    ADDRESSES_IN_DIVISIONS,
    DIVISIONS_JOIN,
    REVIEWS_QUERY,
)
from databaker.assets.current_boundary_reviews.join import JOINED_TABLE as REVIEWS_JOINED_TABLE
from databaker.assets.current_elections.join import JOIN_QUERY, JOINED_TABLE
from databaker.assets.current_organisations.join import JOINED_TABLE as ORGANISATIONS_JOINED
from databaker.assets.organisations import ORGANISATION_AREAS_TABLE
from databaker.layers.joined import UPRN_DIFFERENCES_QUERY
from databaker.layers.letter_summaries import ADDRESSBASE_QUERY, JOINED_QUERY
from databaker.resources import DuckDBQueryEngine, LocalLayerStore, SqlQuery, TableRef
from databaker.resources.athena_sql import placeholders, render, statements
from databaker_tests.athena_statements import PACKAGE, athena_files, file_statements, unload_parts
from databaker_tests.boundary_reviews_tables import (
    ADDRESSES,
    PIECES,
    write_addresses,
    write_divisions,
)

TABLES = {
    table.name: table
    for table in (
        ADDRESSBASE_RAW_TABLE,
        ADDRESSBASE_PARTITIONED_TABLE,
        CURRENT_BALLOTS_TABLE,
        BOUNDARY_REVIEW_DIVISIONS_TABLE,
        ORGANISATION_AREAS_TABLE,
        ORGANISATIONS_JOINED,
        ADDRESSES_IN_DIVISIONS,
        REVIEWS_JOINED_TABLE,
    )
} | {"joined": JOINED_TABLE}
SAMPLE_VALUES = {
    "letters": ["A", "L", "S"],
    "output": "s3://layers/production/_staging/run-1/current_ballots_joined_to_address_base/",
    "location": "s3://layers/production/addressbase_partitioned/",
    "sample_size": 10,
}
# Queries that read an input line by line: the embedded reader runs them in every configuration.
READER_ONLY = {
    "addressbase_cleaned_raw",
    "current_ballots_fields",
    "current_ballots_parsed",
    "current_ballots",
    "boundary_review_divisions",
    "organisation_areas_fields",
    "organisation_areas",
    # Macros the two readings of areas include (`-- include area_rules`), not a query.
    "area_rules",
}
# Athena functions used by the queries that sqlglot does not know as Trino functions, each
# checked against the Athena (engine version 3) function list.
ATHENA_FUNCTIONS = {
    "ST_CONTAINS",
    "ST_POINT",
    "ST_GEOMFROMBINARY",
    "XXHASH64",
    "FROM_BIG_ENDIAN_64",
}


def sample_params(statement: str) -> dict:
    values = {}
    for name in placeholders(statement):
        if name in TABLES:
            table = TABLES[name]
            values[name] = TableRef(table.name, f"s3://layers/p/{table.prefix}", table.declaration)
        else:
            values[name] = SAMPLE_VALUES[name]
    return values


def rendered_statements() -> list[tuple[str, str]]:
    return [
        (f"{path.relative_to(PACKAGE)}#{number}", render(statement, sample_params(statement)))
        for path in athena_files()
        for number, statement in enumerate(file_statements(path), start=1)
    ]


def strict_parse(sql: str) -> exp.Expression:
    parsed = sqlglot.parse_one(sql, read="athena", error_level=sqlglot.ErrorLevel.RAISE)
    assert not isinstance(parsed, exp.Command), f"sqlglot could not parse: {sql[:80]}"
    return parsed


def test_there_is_an_athena_version_of_every_query_the_engine_runs():
    duckdb_queries = {p.name.removesuffix(".duckdb.sql") for p in PACKAGE.rglob("*.duckdb.sql")}
    athena_queries = {p.name.removesuffix(".athena.sql") for p in athena_files()}
    assert duckdb_queries - READER_ONLY <= athena_queries
    tables = {f"{table.name}_table" for table in TABLES.values()}
    assert athena_queries == (duckdb_queries - READER_ONLY) | tables


@pytest.mark.parametrize("name", sorted(p.name.removesuffix(".athena.sql") for p in athena_files()))
def test_both_versions_of_a_query_take_the_same_parameters(name):
    athena = next(p for p in athena_files() if p.name == f"{name}.athena.sql")
    twin = athena.with_name(f"{name}.duckdb.sql")
    if not twin.exists():
        assert name.endswith("_table")
        assert set().union(*map(placeholders, file_statements(athena))) == {"location"}
        return
    duckdb_params = set().union(
        *(s.named_parameters for s in duckdb.extract_statements(twin.read_text()))
    )
    assert set().union(*map(placeholders, file_statements(athena))) == duckdb_params


@pytest.mark.parametrize(("where", "sql"), rendered_statements())
def test_every_athena_statement_parses(where, sql):
    check_statement(where, sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(* FROM addressbase_partitioned",
        "UNLOAD (SELECT 1) TO 's3://b/p/' WITH (format = 'PARQUET', partition_by = ARRAY['x'])",
        "UNLOAD (SELECT a, first_letter FROM t) TO 's3://b/p/'",
        "UNLOAD (SELECT first_letter, a FROM t) TO 's3://b/p/' "
        "WITH (format = 'PARQUET', partitioned_by = ARRAY['first_letter'])",
        "SELECT st_contians(a, b) FROM t",
    ],
)
def test_the_parse_check_catches_broken_statements(sql):
    with pytest.raises((sqlglot.errors.ParseError, ValueError, AssertionError)):
        check_statement("crafted", sql)


def check_statement(where: str, sql: str) -> None:
    """Parse strictly; check an UNLOAD's parts; refuse functions that Athena does not have."""
    if sql.upper().startswith("UNLOAD"):
        unload = unload_parts(sql)
        query = strict_parse(unload.query)
        assert unload.target.startswith("s3://") and unload.target.endswith("/")
        assert unload.options["format"] == "'PARQUET'"
        selected = [column.alias_or_name for column in query.selects]
        partitioned = unload.partitioned_by
        assert selected[-len(partitioned) :] == partitioned, "partition columns must come last"
        parsed = query
    else:
        parsed = strict_parse(sql)
    unknown = {
        function.name.upper()
        for function in parsed.find_all(exp.Anonymous)
        if function.name.upper() not in ATHENA_FUNCTIONS
    }
    assert not unknown, f"{where}: functions neither Trino's (per sqlglot) nor listed: {unknown}"


# ---- Same rows from both dialects, on crafted tables -------------------------------------


def square(x: float, y: float, size: float) -> shapely.Polygon:
    return shapely.box(x, y, x + size, y + size)


RAW_ROWS = [
    # uprn, address, postcode, lon, lat, address_type, line
    ("1", "1 Leeds Road", "LS1 1AA", -1.55, 53.80, "RD04", 1),
    ("1", "1 Leeds Road", "LS1 1AA", -1.55, 53.80, "RD04", 2),  # identical repeat
    ("2", "2 Sheffield Lane", "S1 2BB", -1.47, 53.38, "RD04", 3),
    ("2", "2 Sheffield Lane, rear", "S1 2BB", -1.47, 53.38, "RD04", 4),  # differing repeat
    ("3", "3 Aberdeen Street", "AB10 1XG", -2.10, 57.14, "RD02", 5),
    ("4", "4 Leeds Road", "LS2 7HY", -1.54, 53.81, "RD04", 6),
    ("5", "5 Nowhere", "LS9 9ZZ", -1.00, 50.00, "RD04", 7),
]
BALLOTS = [
    ("local.leeds.a.2027-05-06", square(-1.60, 53.75, 0.10)),
    ("mayor.west-yorkshire.2027-05-06", square(-1.70, 53.70, 0.30)),
    (
        "local.sheffield.b.2027-05-06",
        shapely.MultiPolygon([square(-1.50, 53.35, 0.05), square(-2.2, 57.1, 0.2)]),
    ),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> LocalLayerStore:
    """Crafted raw and ballots tables; partitioned and joined written by the DuckDB engine."""
    root = tmp_path_factory.mktemp("tables")
    store = LocalLayerStore(root=str(root))
    raw = pa.table(
        {
            "uprn": [r[0] for r in RAW_ROWS],
            "address": [r[1] for r in RAW_ROWS],
            "postcode": [r[2] for r in RAW_ROWS],
            "outcode": [r[2].split()[0] for r in RAW_ROWS],
            "first_letter": [r[2][0] for r in RAW_ROWS],
            "longitude": [r[3] for r in RAW_ROWS],
            "latitude": [r[4] for r in RAW_ROWS],
            "address_type": [r[5] for r in RAW_ROWS],
            "addressbase_source": ["s3://drops/2026-02-02/"] * len(RAW_ROWS),
            "source_file": ["s3://drops/2026-02-02/part-0.csv"] * len(RAW_ROWS),
        }
    )
    ballots = pa.table(
        {
            "election_id": [b[0] for b in BALLOTS],
            "division_id": ["d"] * len(BALLOTS),
            "source_table": ["Division"] * len(BALLOTS),
            "geometry": [shapely.to_wkb(b[1]) for b in BALLOTS],
            "repaired": [False] * len(BALLOTS),
            "source_line": list(range(2, 2 + len(BALLOTS))),
        }
    )
    for letter in sorted(set(raw["first_letter"].to_pylist())):
        part = raw.filter(pc.equal(raw["first_letter"], letter)).drop_columns(["first_letter"])
        key = f"{ADDRESSBASE_RAW_TABLE.prefix}first_letter={letter}/data.parquet"
        pq.write_table(part, Path(store.uri_for_writing(key)))
    engine = DuckDBQueryEngine()
    with engine.connection() as conn:
        conn.register("ballots", ballots)
        conn.execute(
            "COPY (SELECT * REPLACE (ST_GeomFromWKB(geometry) AS geometry) FROM ballots) TO ?",
            [store.uri_for_writing(CURRENT_BALLOTS_TABLE.prefix + "data.parquet")],
        )
    letters = ["A", "L", "S"]
    engine.run(
        PARTITIONED_QUERY,
        {
            "addressbase_cleaned_raw": ADDRESSBASE_RAW_TABLE.in_store(store),
            "letters": letters,
            "output": store.uri_for_writing(ADDRESSBASE_PARTITIONED_TABLE.prefix),
        },
    )
    engine.run(
        JOIN_QUERY,
        {
            "addressbase_partitioned": ADDRESSBASE_PARTITIONED_TABLE.in_store(store),
            "current_ballots": CURRENT_BALLOTS_TABLE.in_store(store),
            "letters": letters,
            "output": store.uri_for_writing(JOINED_TABLE.prefix),
        },
    )
    return store


def athena_rows_in_duckdb(query: SqlQuery, params: dict) -> list[dict]:
    """The Athena query's rows, computed by DuckDB from its sqlglot transpilation.

    The Glue tables become views over the same files, geometry read as plain WKB as Athena
    reads it; the few Athena functions DuckDB lacks get stand-ins with the same role (WKB
    parsing, a 64-bit hash).
    """
    with DuckDBQueryEngine().connection() as conn:
        conn.execute("SET SESSION enable_geoparquet_conversion = false")
        conn.execute("CREATE TEMP MACRO ST_GeomFromBinary(wkb) AS ST_GeomFromWKB(wkb)")
        conn.execute("CREATE TEMP MACRO xxhash64(data) AS hash(data)")
        conn.execute("CREATE TEMP MACRO from_big_endian_64(number) AS number")
        for value in params.values():
            if isinstance(value, TableRef):
                conn.execute(
                    f'CREATE TEMP VIEW "{value.name}" AS SELECT * FROM read_parquet('
                    f"'{value.location}**/*.parquet', hive_partitioning = true)"
                )
        *_, last = statements(query.text("athena"))
        sql = render(last, params)
        if sql.upper().startswith("UNLOAD"):
            sql = unload_parts(sql).query
        duck_sql = _with_json_casts_as_to_json(sqlglot.parse_one(sql, read="athena")).sql("duckdb")
        cursor = conn.execute(duck_sql)
        names = [column[0] for column in cursor.description]
        types = [str(column[1]) for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    json_columns = [n for n, t in zip(names, types, strict=True) if t == "JSON"]
    for row in rows:
        for name in json_columns:
            row[name] = json.loads(row[name])
    return rows


def _with_json_casts_as_to_json(tree: exp.Expression) -> exp.Expression:
    """Trino's ``CAST(x AS JSON)`` serialises ``x`` (a string becomes a JSON string), which is
    DuckDB's ``to_json``; DuckDB's own cast would parse a string as JSON text instead."""
    for cast in reversed(list(tree.find_all(exp.Cast))):
        if cast.to.is_type(exp.DataType.Type.JSON):
            cast.replace(exp.Anonymous(this="to_json", expressions=[cast.this]))
    return tree


def tables(store: LocalLayerStore, *names: str) -> dict[str, TableRef]:
    return {name: TABLES[name].in_store(store) for name in names}


def by_uprn(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: (row["uprn"], json.dumps(row, sort_keys=True)))


def read_table(store: LocalLayerStore, prefix: str) -> list[dict]:
    with duckdb.connect() as conn:
        return [
            dict(zip([c[0] for c in conn.description], row, strict=True))
            for row in conn.execute(
                "SELECT * FROM read_parquet(?, hive_partitioning = true)",
                [store.uri(prefix) + "**/*.parquet"],
            ).fetchall()
        ]


def test_the_partitioned_addressbase_has_the_same_rows(store):
    params = {**tables(store, "addressbase_cleaned_raw"), "letters": ["A", "L", "S"]}
    athena = athena_rows_in_duckdb(PARTITIONED_QUERY, {**params, "output": "s3://x/"})
    written = read_table(store, ADDRESSBASE_PARTITIONED_TABLE.prefix)
    assert by_uprn(athena) == by_uprn(written)
    assert len(written) == 6  # the identical repeat of UPRN 1 is dropped, not the differing one


def test_the_join_gives_each_address_the_same_ballots(store):
    params = {
        **tables(store, "addressbase_partitioned", "current_ballots"),
        "letters": ["A", "L", "S"],
        "output": "s3://x/",
    }
    athena = athena_rows_in_duckdb(JOIN_QUERY.sql, params)
    written = read_table(store, JOINED_TABLE.prefix)
    assert by_uprn(athena) == by_uprn(written)
    ballots = {row["uprn"]: row["ballot_ids"] for row in athena}
    assert ballots["4"] == ["local.leeds.a.2027-05-06", "mayor.west-yorkshire.2027-05-06"]
    assert ballots["3"] == ["local.sheffield.b.2027-05-06"] and ballots["5"] == []


def test_the_join_builds_only_the_letters_asked_for(store):
    params = {
        **tables(store, "addressbase_partitioned", "current_ballots"),
        "letters": ["S"],
        "output": "s3://x/",
    }
    assert {row["uprn"] for row in athena_rows_in_duckdb(JOIN_QUERY.sql, params)} == {"2"}


def test_with_no_ballots_at_all_both_joins_give_every_address_none(store, tmp_path):
    """An export whose every ballot is past polling day leaves a ballots table of no rows,
    written as the bake writes it: without GeoParquet metadata, its geometry a plain BLOB."""
    empty = LocalLayerStore(root=str(tmp_path))
    with DuckDBQueryEngine().connection() as conn:
        conn.execute(
            "COPY (SELECT 'local.leeds.a.2026-05-07' AS election_id, 'E05001' AS division_id, "
            "'Division' AS source_table, ST_GeomFromText('POLYGON EMPTY') AS geometry, "
            "false AS repaired, 2::BIGINT AS source_line WHERE false) TO ?",
            [empty.uri_for_writing(CURRENT_BALLOTS_TABLE.prefix + "current_ballots.parquet")],
        )
    params = {
        **tables(store, "addressbase_partitioned"),
        "current_ballots": CURRENT_BALLOTS_TABLE.in_store(empty),
        "letters": ["A", "L", "S"],
    }
    DuckDBQueryEngine().run(
        JOIN_QUERY, {**params, "output": empty.uri_for_writing(JOINED_TABLE.prefix)}
    )
    written = read_table(empty, JOINED_TABLE.prefix)
    athena = athena_rows_in_duckdb(JOIN_QUERY.sql, {**params, "output": "s3://x/"})
    assert by_uprn(athena) == by_uprn(written)
    assert len(written) == 6 and all(row["ballot_ids"] == [] for row in written)


@pytest.mark.parametrize(
    ("query", "names"),
    [
        (DUPLICATES_QUERY, ["addressbase_cleaned_raw"]),
        (UPRN_DIFFERENCES_QUERY, ["addressbase_partitioned", "joined"]),
    ],
    ids=lambda value: getattr(value, "name", None),
)
def test_each_check_query_returns_the_same_summary(store, query, names):
    params = {**tables(store, *names), "sample_size": 10}
    expected = DuckDBQueryEngine().run(query, params).to_pylist()
    assert athena_rows_in_duckdb(query, params) == expected


def test_the_check_queries_agree_when_the_tables_differ(store, tmp_path):
    """Drop one joined partition: both versions must name the same missing UPRNs, and
    summarise the same letters."""
    partial = LocalLayerStore(root=str(tmp_path))
    for key in store.list_keys(JOINED_TABLE.prefix):
        if "first_letter=S" not in key:
            partial.write_bytes(key, store.read_bytes(key))
    params = {
        "addressbase_partitioned": ADDRESSBASE_PARTITIONED_TABLE.in_store(store),
        "joined": JOINED_TABLE.in_store(partial),
        "sample_size": 10,
    }
    expected = DuckDBQueryEngine().run(UPRN_DIFFERENCES_QUERY, params).to_pylist()
    assert expected == [{"missing_from_joined": ["2"], "not_in_addressbase": []}]
    assert athena_rows_in_duckdb(UPRN_DIFFERENCES_QUERY, params) == expected
    summaries = {"joined": params["joined"], "letters": ["A", "L", "S"]}
    duckdb_rows = DuckDBQueryEngine().run(JOINED_QUERY, summaries).to_pylist()
    assert [row["first_letter"] for row in duckdb_rows] == ["A", "L"]
    assert athena_rows_in_duckdb(JOINED_QUERY, summaries) == duckdb_rows


def test_the_duplicate_check_names_the_differing_uprn_and_its_files(store):
    params = {**tables(store, "addressbase_cleaned_raw"), "sample_size": 10}
    found = athena_rows_in_duckdb(DUPLICATES_QUERY, params)[0]
    assert found["differing_uprns"] == 1 and found["identical_uprns"] == 1
    assert found["differing_sample"] == [
        {
            "uprn": "2",
            "letters": ["S"],
            "files": [
                "s3://drops/2026-02-02/part-0.csv",
                "s3://drops/2026-02-02/part-0.csv",
            ],
        }
    ]


def test_both_engines_summarise_each_letter_the_same(store):
    """Rows per letter as the crafted rows give them (the identical repeat of UPRN 1 dropped,
    UPRN 2's two differing rows kept: the raw check stops such a table earlier); the joined
    table's checksums those of the partitioned AddressBase, letter by letter; only the letters
    asked for."""
    letters = {"letters": ["L", "S"]}
    addressbase = {**tables(store, "addressbase_partitioned"), **letters}
    joined = {**tables(store, "joined"), **letters}
    rows = DuckDBQueryEngine().run(ADDRESSBASE_QUERY, addressbase).to_pylist()
    assert athena_rows_in_duckdb(ADDRESSBASE_QUERY, addressbase) == rows
    assert [(r["first_letter"], r["row_count"]) for r in rows] == [("L", 3), ("S", 2)]
    assert [r["sources"] for r in rows] == [["s3://drops/2026-02-02/"]] * 2
    assert [r["rows_without_source"] for r in rows] == [0, 0]
    assert all(re.fullmatch(r"-?\d+", r["checksum"]) for r in rows)
    joined_rows = DuckDBQueryEngine().run(JOINED_QUERY, joined).to_pylist()
    assert athena_rows_in_duckdb(JOINED_QUERY, joined) == joined_rows
    assert [(r["first_letter"], r["row_count"], r["checksum"]) for r in joined_rows] == [
        (r["first_letter"], r["row_count"], r["checksum"]) for r in rows
    ]


def test_both_engines_name_every_source_of_a_letter_and_its_rows_without_one(tmp_path):
    store = LocalLayerStore(root=str(tmp_path))
    letter = pa.table(
        {
            "uprn": ["1", "2", "3", "4"],
            "addressbase_source": ["s3://drops/b/", None, "s3://drops/a/", "s3://drops/b/"],
        }
    )
    key = f"{ADDRESSBASE_PARTITIONED_TABLE.prefix}first_letter=B/data_0.parquet"
    pq.write_table(letter, Path(store.uri_for_writing(key)))
    params = {**tables(store, "addressbase_partitioned"), "letters": ["B"]}
    rows = DuckDBQueryEngine().run(ADDRESSBASE_QUERY, params).to_pylist()
    assert athena_rows_in_duckdb(ADDRESSBASE_QUERY, params) == rows
    assert [(r["row_count"], r["sources"], r["rows_without_source"]) for r in rows] == [
        (4, ["s3://drops/a/", "s3://drops/b/"], 1)
    ]


def test_both_engines_find_the_letters_with_a_repeated_uprn(store):
    params = {**tables(store, "addressbase_cleaned_raw"), "letters": ["A", "L", "S"]}
    expected = DuckDBQueryEngine().run(REPEATED_LETTERS_QUERY, params).to_pylist()
    assert expected == [{"first_letter": "L"}, {"first_letter": "S"}]
    assert athena_rows_in_duckdb(REPEATED_LETTERS_QUERY, params) == expected


# ---- The boundary-reviews join, on the crafted map of boundary_reviews_tables ------------


@pytest.fixture(scope="module")
def reviews_store(tmp_path_factory) -> LocalLayerStore:
    """The crafted map; its scratch table (the engine's own point-in-area join) and its joined
    table, written by the DuckDB engine."""
    store = LocalLayerStore(root=str(tmp_path_factory.mktemp("reviews")))
    write_addresses(store, ADDRESSES)
    write_divisions(store, PIECES)
    engine = DuckDBQueryEngine()
    engine.run(
        DIVISIONS_JOIN,
        {
            **tables(store, "addressbase_partitioned", "boundary_review_divisions"),
            "letters": ["L", "W"],
            "output": store.uri_for_writing(ADDRESSES_IN_DIVISIONS.prefix),
        },
    )
    engine.run(
        REVIEWS_QUERY,
        {
            **tables(store, "addresses_in_review_divisions", "boundary_review_divisions"),
            "letters": ["L", "W"],
            "output": store.uri_for_writing(REVIEWS_JOINED_TABLE.prefix),
        },
    )
    return store


def test_the_divisions_join_gives_each_address_the_same_divisions(reviews_store):
    params = {
        **tables(reviews_store, "addressbase_partitioned", "boundary_review_divisions"),
        "letters": ["L", "W"],
        "output": "s3://x/",
    }
    athena = athena_rows_in_duckdb(DIVISIONS_JOIN.sql, params)
    assert by_uprn(athena) == by_uprn(read_table(reviews_store, ADDRESSES_IN_DIVISIONS.prefix))
    assert len(athena) == len(ADDRESSES)


def test_the_reviews_query_writes_the_same_json_text(reviews_store):
    """Byte for byte: both dialects write each element with their engine's JSON writer (here
    DuckDB's, for the transpiled Athena query too), keys in the contract's order."""
    params = {
        **tables(reviews_store, "addresses_in_review_divisions", "boundary_review_divisions"),
        "letters": ["L", "W"],
        "output": "s3://x/",
    }
    athena = athena_rows_in_duckdb(REVIEWS_QUERY.sql, params)
    written = read_table(reviews_store, REVIEWS_JOINED_TABLE.prefix)
    assert by_uprn(athena) == by_uprn(written)
    elements = [e for row in written for e in row["boundary_reviews"]]
    assert len(elements) > 10 and all(json.loads(e)["changes"] for e in elements)
    only_w = athena_rows_in_duckdb(REVIEWS_QUERY.sql, {**params, "letters": ["W"]})
    assert by_uprn(only_w) == by_uprn([row for row in written if row["first_letter"] == "W"])
