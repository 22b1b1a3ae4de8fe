"""The RFC 4180 record pattern that splits drop lines into fields."""

import re

import pytest

from databaker.csv_records import group_names, record_pattern


def fields(line: str, count: int) -> list[str] | None:
    """Decode a line the way the SQL does: quoted content with doubled quotes, else bare."""
    match = re.match(record_pattern(count), line)
    if match is None:
        return None
    groups = dict(zip(group_names([f"f{i}" for i in range(count)]), match.groups(), strict=True))
    return [
        groups[f"f{i}_q"].replace('""', '"') if groups[f"f{i}_q"] is not None else groups[f"f{i}"]
        for i in range(count)
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("1,a,b", ["1", "a", "b"]),
        ('1,"a, b",c', ["1", "a, b", "c"]),
        ('1,"Flat 2, ""The Mill""",c', ["1", 'Flat 2, "The Mill"', "c"]),
        ('"1","a","b"', ["1", "a", "b"]),
        (",,", ["", "", ""]),
        ('1,"",c', ["1", "", "c"]),
        ('1,a "quoted" word,c', ["1", 'a "quoted" word', "c"]),  # as DuckDB's CSV reader reads it
    ],
)
def test_well_formed_records_split_into_their_fields(line, expected):
    assert fields(line, 3) == expected


@pytest.mark.parametrize(
    "line",
    [
        "1,a",  # too few fields
        "1,a,b,c",  # too many
        '1,"quoted" word,c',  # a bare field starting with a quote
        '1,"unterminated,c',  # quote never closed on this line
        '1,"a" b,c',  # text after the closing quote
    ],
)
def test_malformed_records_do_not_match(line):
    assert fields(line, 3) is None


def test_a_record_needs_two_fields():
    with pytest.raises(ValueError):
        record_pattern(1)
