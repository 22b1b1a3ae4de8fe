"""Metadata for an operator to read: lists as markdown tables, content hashes shortened.

The Dagster UI renders a markdown value as a table; a hash of 64 hex digits is noise in a
page, and its first 12 identify a version well enough to compare by eye (the whole is in the
manifest, to which the page links).
"""

from collections.abc import Iterable, Sequence

import dagster as dg

SHORT_HASH = 12
"""Hex digits kept of a content hash in text."""


def markdown_table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], *, empty: str = "none"
) -> dg.MarkdownMetadataValue:
    """A markdown table of ``rows`` under ``headers``; ``empty`` when there is no row.

    Columns of numbers (or of shares written as `5.0%`) are right-aligned, whole numbers
    written with thousands separators; a `|` in a cell is escaped so that it cannot split it.
    """
    lines = table_lines(headers, rows)
    return dg.MetadataValue.md("\n".join(lines) if lines else empty)


def table_lines(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """The lines of a markdown table as :func:`markdown_table` writes it, for a longer text
    that holds it; no lines when there is no row."""
    rows = [list(row) for row in rows]
    if not rows:
        return []
    numeric = [all(_is_number(row[i]) for row in rows) for i in range(len(headers))]
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if right else "---" for right in numeric) + "|",
        *("| " + " | ".join(_cell(value) for value in row) + " |" for row in rows),
    ]


def short_version(version: str) -> str:
    """A content version for the eye: `sha256:` or `etag:` and the first 12 hex digits
    (`sha256:b35a8aec0cf7`); a version of another form is left as it is."""
    kind, colon, digest = version.partition(":")
    if not colon or len(digest) <= SHORT_HASH:
        return version
    return f"{kind}:{digest[:SHORT_HASH]}"


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) or (isinstance(value, str) and value.endswith("%"))


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def with_article(noun: str) -> str:
    """``a ballot``, ``an organisation``: the noun with its indefinite article."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"
