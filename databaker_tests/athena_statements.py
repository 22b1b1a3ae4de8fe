"""Test helpers: every Athena statement the project can issue, and the parts of an UNLOAD.

The tests parse each of them with sqlglot's Athena dialect, parameters filled, so a syntax
error cannot reach production. sqlglot has no grammar for Athena's ``UNLOAD``, so
:func:`unload_parts` splits one into its query (parsed like any other) and its ``TO`` and
``WITH`` parts, whose few options are checked here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import databaker
from databaker.resources.athena_sql import statements

PACKAGE = Path(databaker.__file__).parent
UNLOAD_OPTIONS = {"format", "compression", "compression_level", "field_delimiter", "partitioned_by"}

_UNLOAD = re.compile(
    r"^UNLOAD\s*\((?P<query>.*)\)\s*TO\s+'(?P<target>(?:[^']|'')*)'\s+WITH\s*\((?P<options>.*)\)$",
    re.DOTALL | re.IGNORECASE,
)
_OPTION = re.compile(
    r"\s*(?P<name>\w+)\s*=\s*(?P<value>'(?:[^']|'')*'|ARRAY\s*\[[^\]]*\]|\d+)\s*(?:,|$)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Unload:
    query: str
    target: str
    options: dict[str, str]

    @property
    def partitioned_by(self) -> list[str]:
        value = self.options.get("partitioned_by", "ARRAY[]")
        return re.findall(r"'([^']*)'", value)


def athena_files() -> list[Path]:
    """Every ``.athena.sql`` file in the package."""
    return sorted(PACKAGE.rglob("*.athena.sql"))


def file_statements(path: Path) -> list[str]:
    return statements(path.read_text(encoding="utf-8"))


def unload_parts(statement: str) -> Unload:
    """Split an ``UNLOAD (query) TO 'target' WITH (options)``; ``ValueError`` if malformed."""
    match = _UNLOAD.match(statement.strip())
    if not match:
        raise ValueError("not of the form UNLOAD (<query>) TO '<s3 folder>' WITH (<options>)")
    options: dict[str, str] = {}
    text = match["options"].strip()
    position = 0
    while position < len(text):
        option = _OPTION.match(text, position)
        if not option or option.end() == position:
            raise ValueError(f"cannot read the UNLOAD options from {text[position:]!r}")
        name = option["name"].lower()
        if name not in UNLOAD_OPTIONS:
            raise ValueError(
                f"{name!r} is not an UNLOAD option ({', '.join(sorted(UNLOAD_OPTIONS))})"
            )
        options[name] = option["value"]
        position = option.end()
    return Unload(match["query"], match["target"], options)
