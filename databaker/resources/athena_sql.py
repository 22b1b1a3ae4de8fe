"""Athena SQL text handling: split a query file into statements and bind ``$name`` parameters.

Athena runs one statement per query execution and its API has no named parameters, so the
engine binds values itself: each ``$name`` placeholder becomes a Trino SQL literal. Only
placeholders in SQL code are touched; string literals, quoted identifiers and comments are
copied unchanged, so a ``$`` or ``;`` inside them is just text. Literals are built from values
that ``checked_params`` has already accepted, and strings are quoted by doubling ``'``, the only
escape Trino's string literals have, so a value can never change the shape of a statement.
"""

import math
import re
from collections.abc import Iterator, Mapping

from databaker.resources.query_engine import ParamValue, QueryError, Scalar, TableRef

PLACEHOLDER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")

# Every position of a text starts exactly one token, so the tokens cover it end to end.
# Backticks quote identifiers in Athena's Hive DDL, as double quotes do in its Trino DML.
_TOKEN = re.compile(
    r"""
      (?P<quoted> '[^']*(?:''[^']*)*' | "[^"]*(?:""[^"]*)*" | `[^`]*(?:``[^`]*)*` )
    | (?P<comment> --[^\n]* | /\*.*?\*/ )
    | (?P<unterminated> ['"`] | /\* )
    | (?P<code> [^'"`/-]+ | [/-] )
    """,
    re.VERBOSE | re.DOTALL,
)


def statements(text: str) -> list[str]:
    """The statements of a query file, in order, each stripped, without comments or ``;``.

    Comments document the file; a statement sent to Athena starts with its keyword. Pieces
    left empty are dropped, so a file may end with a ``;``.
    """
    found: list[str] = []
    pieces: list[str] = []

    def finish() -> None:
        statement = "".join(pieces).strip()
        pieces.clear()
        if statement:
            found.append(statement)

    for kind, chunk in _tokens(text):
        if kind == "comment":
            pieces.append("\n" if chunk.startswith("--") else " ")
            continue
        if kind != "code":
            pieces.append(chunk)
            continue
        first, *rest = chunk.split(";")
        pieces.append(first)
        for piece in rest:
            finish()
            pieces.append(piece)
    finish()
    return found


def placeholders(statement: str) -> set[str]:
    """The names of the ``$name`` parameters a statement uses in its SQL code."""
    return {
        name
        for kind, chunk in _tokens(statement)
        if kind == "code"
        for name in PLACEHOLDER.findall(chunk)
    }


def render(statement: str, values: Mapping[str, ParamValue]) -> str:
    """``statement`` with each placeholder replaced by the literal of its value."""

    def literal_for(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise QueryError(f"no value for parameter ${name}")
        try:
            return literal(values[name])
        except QueryError as error:
            raise QueryError(f"parameter ${name}: {error}") from None

    return "".join(
        PLACEHOLDER.sub(literal_for, chunk) if kind == "code" else chunk
        for kind, chunk in _tokens(statement)
    )


def literal(value: ParamValue) -> str:
    """A Trino SQL literal for a scalar, or an ``ARRAY[...]`` of them for a list or tuple; a
    table parameter becomes the table's quoted name.

    Negative numbers are parenthesised so that a minus sign before the placeholder can never
    join the literal's own into a ``--`` comment.
    """
    if isinstance(value, TableRef):
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", value.name):
            raise QueryError(f"{value.name!r} is not a valid table name")
        return f'"{value.name}"'
    if isinstance(value, list | tuple):
        return "ARRAY[" + ", ".join(_scalar_literal(item) for item in value) + "]"
    return _scalar_literal(value)


def _scalar_literal(value: Scalar) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return _signed(str(int(value)))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QueryError(f"{value!r} has no SQL literal; pass a finite number")
        return _signed(_double(float(value)))
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise QueryError(f"a {type(value).__name__} has no SQL literal")


def _double(value: float) -> str:
    """Trino reads ``1.5`` as a DECIMAL; an exponent makes the literal a DOUBLE."""
    text = repr(value).upper()
    return text if "E" in text else text + "E0"


def _signed(text: str) -> str:
    return f"({text})" if text.startswith("-") else text


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    """``(kind, chunk)`` pairs covering ``text``: kind is code, quoted or comment."""
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "code"
        if kind == "unterminated":
            line = text.count("\n", 0, match.start()) + 1
            raise QueryError(f"unterminated {match.group()} on line {line}")
        yield kind, match.group()
