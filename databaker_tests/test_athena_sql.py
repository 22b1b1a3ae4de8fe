"""Athena query files are split into statements and their $name parameters become literals."""

import math
import re

import pytest
import sqlglot
from sqlglot import exp

from databaker.resources.athena_sql import placeholders, render, statements
from databaker.resources.query_engine import QueryError

# --- statements ------------------------------------------------------------------------------


def test_a_file_is_split_on_semicolons_into_stripped_statements():
    text = "CREATE TABLE t AS SELECT 1 AS x;\n\n  SELECT x FROM t ;\n"
    assert statements(text) == ["CREATE TABLE t AS SELECT 1 AS x", "SELECT x FROM t"]


def test_a_final_statement_needs_no_semicolon():
    assert statements("SELECT 1;\nSELECT 2") == ["SELECT 1", "SELECT 2"]


def test_semicolons_in_literals_quoted_identifiers_and_comments_do_not_split():
    text = (
        "SELECT 'a;b' AS \"c;d\", 'it''s; fine' -- no split; here\n"
        "/* nor; here */ FROM `t;1`;\n"
        "SELECT 2"
    )
    assert [" ".join(statement.split()) for statement in statements(text)] == [
        "SELECT 'a;b' AS \"c;d\", 'it''s; fine' FROM `t;1`",
        "SELECT 2",
    ]


def test_comments_are_removed_and_empty_pieces_dropped():
    text = "-- Stage the rows.\nSELECT 1;\n;\n/* between */;\nSELECT 2;\n-- the end\n"
    assert statements(text) == ["SELECT 1", "SELECT 2"]


def test_an_empty_file_has_no_statements():
    assert statements("  \n-- nothing yet\n") == []


@pytest.mark.parametrize(
    ("text", "opener"),
    [("SELECT 'oops", "'"), ('SELECT "oops', '"'), ("SELECT 1 /* oops", "/*")],
)
def test_an_unterminated_literal_or_comment_is_refused_with_its_line(text, opener):
    with pytest.raises(QueryError, match=f"unterminated {re.escape(opener)} on line 2"):
        statements("SELECT 1;\n" + text)


# --- placeholders ----------------------------------------------------------------------------


def test_placeholders_are_the_dollar_names_used_in_sql_code():
    sql = "SELECT * FROM t WHERE a = $first AND b IN (SELECT x FROM UNNEST($_list_2) AS u(x))"
    assert placeholders(sql) == {"first", "_list_2"}


def test_dollars_in_literals_quoted_identifiers_and_comments_are_not_placeholders():
    sql = (
        "SELECT json_extract(doc, '$.ward'), \"$path\" -- $commented\n"
        "/* $blocked */ FROM t WHERE id = $id"
    )
    assert placeholders(sql) == {"id"}


# --- render ----------------------------------------------------------------------------------


def test_strings_become_literals_with_quotes_doubled():
    hostile = "x'); DROP TABLE t; SELECT ('"
    assert render("SELECT $text", {"text": hostile}) == "SELECT 'x''); DROP TABLE t; SELECT ('''"


def test_booleans_are_true_and_false_not_one_and_zero():
    sql = render("SELECT $yes, $no, $one", {"yes": True, "no": False, "one": 1})
    assert sql == "SELECT TRUE, FALSE, 1"


def test_floats_become_double_literals():
    sql = render("SELECT $half, $tiny, $huge", {"half": 1.5, "tiny": 1e-5, "huge": 2e100})
    assert sql == "SELECT 1.5E0, 1E-05, 2E+100"
    literals = sqlglot.parse_one(sql, read="athena").find_all(exp.Literal)
    assert [float(literal.this) for literal in literals] == [1.5, 1e-5, 2e100]


def test_negative_numbers_are_parenthesised_so_minus_signs_never_make_a_comment():
    sql = render("SELECT 10-$n, 1-$x", {"n": -5, "x": -0.5})
    assert sql == "SELECT 10-(-5), 1-(-0.5E0)"
    assert "--" not in sql


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused(value):
    with pytest.raises(QueryError, match=r"\$x: .*finite"):
        render("SELECT $x", {"x": value})


def test_lists_and_tuples_become_arrays():
    sql = render(
        "SELECT $ids, $names, $none", {"ids": [1, 2, 3], "names": ("a", "b'c"), "none": []}
    )
    assert sql == "SELECT ARRAY[1, 2, 3], ARRAY['a', 'b''c'], ARRAY[]"


def test_placeholders_in_literals_and_comments_are_left_alone():
    sql = "SELECT '$a', \"$a\" -- $a\n, /* $a */ $a"
    assert render(sql, {"a": 7}) == "SELECT '$a', \"$a\" -- $a\n, /* $a */ 7"


def test_a_placeholder_without_a_value_is_refused():
    with pytest.raises(QueryError, match=r"no value for parameter \$missing"):
        render("SELECT $present, $missing", {"present": 1})


def test_rendered_statements_parse_as_athena_sql():
    values = {"election": "local.2026-05-07", "seats": 3, "share": 0.25, "wards": ["a", "b"]}
    sql = render(
        "SELECT * FROM ballots WHERE election_id = $election AND seats >= $seats "
        "AND share > $share AND contains($wards, ward)",
        values,
    )
    assert sqlglot.parse_one(sql, read="athena").find(exp.Where) is not None
