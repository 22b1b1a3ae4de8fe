"""What the three input tables of areas share (databaker/input_tables.py and the reading macros
of area_rules.duckdb.sql): the asset's shape, the header check, and the verdict on a line's
area after its own fields' faults, each read on crafted rows."""

import csv
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from databaker.assets.current_ballots.from_every_election import BALLOTS_FROM_EVERY_ELECTION
from databaker.assets.current_ballots.wkt import POLYGONAL_WKT
from databaker.input_tables import Header, InputTable
from databaker.resources import SqlQuery, Table
from databaker_tests.test_current_ballots import BOWTIE, SQUARE

DEGENERATE = "POLYGON((-1.6 53.8,-1.6 53.8,-1.6 53.8,-1.6 53.8))"
"""A closed ring of one point: no fault before GEOS, and nothing left once repaired."""


def query(folder: Path, name: str, sql: str) -> SqlQuery:
    (folder / f"{name}.duckdb.sql").write_text("-- include area_rules\n" + sql)
    return SqlQuery(folder, name)


def test_the_asset_is_its_layers_with_the_tables_columns(tmp_path):
    columns = (dg.TableColumn("ward", "string", description="A ward."),)
    wards = InputTable(
        table=Table.beside(str(tmp_path / "assets.py"), "ward_areas"),
        layer="current_wards",
        columns=columns,
        what="wards export",
        every_election=BALLOTS_FROM_EVERY_ELECTION,
    )

    def ward_areas(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Every ward's area."""
        return dg.MaterializeResult()

    asset = wards.asset(ward_areas, [dg.AssetKey("wards_export")])
    (spec,) = asset.specs
    assert (spec.key, spec.group_name, set(spec.kinds), list(spec.owners)) == (
        dg.AssetKey("ward_areas"),
        "current_wards",
        {"duckdb", "csv", "parquet"},
        ["team:databaker"],
    )
    assert [dep.asset_key for dep in spec.deps] == [dg.AssetKey("wards_export")]
    assert asset.op.pool == "layer-current_wards"
    assert spec.description == "Every ward's area."
    assert spec.metadata["dagster/column_schema"] == dg.TableSchema(columns=list(columns))
    assert wards.target == "ward_areas/ward_areas.parquet"


def line_one(text: str, fields: tuple[str, ...] | None, line_fault: str | None = None) -> pa.Table:
    """A fields query's answer for an export whose line 1 is ``text``, cut into ``fields``
    (``None``: no record), and a data line after it."""
    rows = [
        {
            "line_no": 1,
            "text": text,
            "line_fault": line_fault,
            "well_formed": fields is not None and line_fault is None,
            "a": fields[0] if fields else None,
            "b": fields[1] if fields else None,
        },
        {"line_no": 2, "text": "x,y", "line_fault": None, "well_formed": True, "a": "x", "b": "y"},
    ]
    return pa.Table.from_pylist(rows)


FOLDED = Header(("a", "b"), (("id", "area"), ("id", "geometry")), fold=True, shown=5)
EXACT = Header(("a", "b"), (("id", "area"),))


@pytest.mark.parametrize(
    ("header", "line", "fields"),
    [
        (FOLDED, "ID , Area", ("ID ", " Area")),
        (FOLDED, "id,geometry", ("id", "geometry")),
        (EXACT, "id,area", ("id", "area")),
    ],
)
def test_an_accepted_header_passes(header, line, fields):
    header.check("export.csv", line_one(line, fields))


@pytest.mark.parametrize(
    ("header", "lines", "shown"),
    [
        (EXACT, line_one("ID,area", ("ID", "area")), "ID,area"),
        (FOLDED, line_one("id,area,more", None), "'id,ar' (not a CSV record of 2 fields)"),
        (
            EXACT,
            line_one("id,\rarea", ("id", "\rarea"), "holds a carriage return"),
            "'id,\\rarea' (holds a carriage return)",
        ),
        (EXACT, line_one("", None).slice(1), "(nothing)"),
    ],
)
def test_any_other_line_one_refuses_the_export_saying_what_it_holds(header, lines, shown):
    expected = " or ".join(",".join(names) for names in header.accepted)
    with pytest.raises(dg.Failure) as refused:
        header.check("export.csv", lines)
    assert refused.value.description == f"export.csv:1: the header must be {expected}, not {shown}"


def test_a_lines_own_fault_comes_before_its_areas_and_a_good_area_is_kept(tmp_path, engine):
    judged = query(
        tmp_path,
        "judged",
        "SELECT id, fault, repaired, ST_AsText(geometry) AS area, note\n"
        "FROM area_verdicts(lines, $pattern) ORDER BY id;",
    )
    lines = pa.table(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "geometry_text": [SQUARE, BOWTIE, "POINT(1 2)", "POINT(-1.6 53.8)", DEGENERATE, ""],
            "field_fault": [None, None, "id is empty", None, None, "id is empty"],
            "note": ["a", "b", "c", "d", "e", "f"],
        }
    )
    rows = engine.run_sql(judged, {"pattern": POLYGONAL_WKT}, streams={"lines": lines.to_reader()})
    found = {row["id"]: row for row in rows.to_pylist()}
    assert [found[i]["fault"] for i in range(1, 7)] == [
        None,
        None,
        "id is empty",
        "geometry is a POINT, not a POLYGON or MULTIPOLYGON",
        "geometry is invalid and could not be repaired into a polygon",
        "id is empty",
    ]
    assert (found[1]["repaired"], found[2]["repaired"]) == (False, True)
    assert found[1]["area"] == "POLYGON ((-1.6 53.8, -1.5 53.8, -1.5 53.9, -1.6 53.9, -1.6 53.8))"
    assert found[2]["area"].startswith("MULTIPOLYGON")
    assert [found[i]["area"] for i in (3, 4, 6)] == [None, None, None]
    assert [row["note"] for row in rows.to_pylist()] == ["a", "b", "c", "d", "e", "f"]


def test_lines_are_read_without_the_blank_ones_each_with_its_fault_and_parts(tmp_path, engine):
    quoted = query(tmp_path, "quoted", "FROM quoted_lines(lines) ORDER BY line_no;")
    lines = pa.table(
        {
            "line_no": [1, 2, 3, 4, 5],
            "raw_line": ['a,"b",c', "", "a\rb", "a\x00b", "abc"],
            "too_long": [False, False, False, False, True],
        }
    )
    rows = engine.run_sql(quoted, streams={"lines": lines.to_reader()}).to_pylist()
    assert [(row["line_no"], row["line_fault"], row["parts"]) for row in rows] == [
        (1, None, ["a,", "b", ",c"]),
        (3, "line holds a carriage return that does not end it", ["a\rb"]),
        (4, "line holds a NUL byte", ["a\x00b"]),
        (5, "line is longer than 64 MiB, the most a line may hold", None),
    ]


def test_the_report_and_the_first_rejected_lines_go_by_file_and_line(tmp_path, engine):
    report = tmp_path / "report.csv"
    summary = query(
        tmp_path,
        "summary",
        "CREATE TEMP TABLE judged AS SELECT * FROM lines;\n"
        "COPY (FROM unkept_lines(judged, $file)) TO $report (FORMAT csv, HEADER true);\n"
        "SELECT first_rejected(file, line_no, reason, status = 'rejected') AS first\n"
        "FROM judged;",
    )
    line_numbers = list(range(30, 0, -1))
    lines = pa.table(
        {
            "file": ["b.csv" if n % 2 else "a.csv" for n in line_numbers],
            "line_no": line_numbers,
            "status": ["ok" if n % 10 == 0 else "rejected" for n in line_numbers],
            "reason": [None if n % 10 == 0 else f"bad {n}" for n in line_numbers],
            "text": [f"line {n}" for n in line_numbers],
        }
    )
    rows = engine.run_sql(
        summary, {"file": "export.csv", "report": str(report)}, streams={"lines": lines.to_reader()}
    )
    rejected = [("b.csv" if n % 2 else "a.csv", n) for n in line_numbers if n % 10]
    expected = [{"file": f, "line": n, "reason": f"bad {n}"} for f, n in sorted(rejected)[:20]]
    assert rows.to_pylist() == [{"first": expected}]
    with open(report, newline="") as file:
        reported = list(csv.reader(file))
    assert reported[0] == ["file", "line", "status", "reason", "text"]
    assert reported[1:] == [
        ["export.csv", str(n), "rejected", f"bad {n}", f"line {n}"]
        for n in sorted(line_numbers)
        if n % 10
    ]
