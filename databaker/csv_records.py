"""Splitting CSV lines into fields in SQL, so every rejected row can be named by its line.

Drops are read as raw lines (one row per physical line, numbered by position), then each line
is matched against an RFC 4180 record pattern. A line that does not match is rejected with its
number instead of silently shifting or merging rows, which is what a lenient CSV reader does
with a stray quote. Records spanning several lines are therefore rejected: neither AddressBase
nor the ballots export writes line breaks inside fields. A bare field may contain a quote but
not start with one, which is how DuckDB's own CSV reader reads such a field too.
"""

_QUOTED = r'"((?:[^"]|"")*)"'
_BARE = r'((?:[^,"][^,]*)?)'


def record_pattern(fields: int) -> str:
    """A whole-line pattern for ``fields`` comma-separated fields.

    Each field contributes two groups, its quoted content (quotes still doubled) and its bare
    content; a third group after the first field captures its comma, so a match is recognisable
    even when every field is empty.
    """
    if fields < 2:
        raise ValueError("a record needs at least two fields")
    field = f"(?:{_QUOTED}|{_BARE})"
    return "^" + field + "(,)" + ",".join([field] * (fields - 1)) + "$"


def group_names(names: list[str]) -> list[str]:
    """Group names matching :func:`record_pattern`: ``<name>_q``, ``<name>``, and ``matched``."""
    groups = [f"{names[0]}_q", names[0], "matched"]
    for name in names[1:]:
        groups += [f"{name}_q", name]
    return groups
