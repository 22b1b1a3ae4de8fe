"""What a ballots export's geometry field may hold: one POLYGON or MULTIPOLYGON, nothing more.

DuckDB's WKT reader stops at the end of the first geometry and ignores whatever follows it, so
``POLYGON((...)),((...))``, two geometries in one field and trailing junk would each be read as
their first part, the rest dropped without a word. The ballots query therefore also matches the
whole field (its ``SRID=<n>;`` prefix removed) against :data:`POLYGONAL_WKT`, the OGC grammar of
the two types (keywords in any case, Z, M or ZM coordinates, ``EMPTY``), and rejects a field it
does not match whole. That a field is grammatical is all the pattern says: the ring rules (each
ring closed, of 4 points or more) are checked on the parsed geometry.
"""

_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_POINT = rf"{_NUMBER}(?:\s+{_NUMBER}){{1,3}}"
_RING = rf"(?:EMPTY|\(\s*{_POINT}(?:\s*,\s*{_POINT})*\s*\))"
_POLYGON = rf"(?:EMPTY|\(\s*{_RING}(?:\s*,\s*{_RING})*\s*\))"
_MULTIPOLYGON = rf"(?:EMPTY|\(\s*{_POLYGON}(?:\s*,\s*{_POLYGON})*\s*\))"
_DIMENSIONS = r"(?:\s*(?:ZM|Z|M))?"

POLYGONAL_WKT = (
    rf"\s*(?:POLYGON{_DIMENSIONS}\s*{_POLYGON}|MULTIPOLYGON{_DIMENSIONS}\s*{_MULTIPOLYGON})"
)
"""One POLYGON or MULTIPOLYGON in WKT, leading blanks allowed; an RE2 pattern, to be matched
case-insensitively. Anchored at the start only, so that a match's end is where a field that
goes on after its geometry stops being one."""
