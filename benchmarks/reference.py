"""The harness's own reading of the inputs, independent of every method it measures.

- The drop's valid addresses (the bake's rules: numeric UPRN, an address, a postcode that
  normalises to ``OUTCODE INWARD``, a lon/lat point in Great Britain; identical rows once) go
  into a DuckDB table ``universe``: the population the sample is drawn from, and the
  addresses of outcodes a method published as empty files.
- The ballots' polygons, read with pyarrow and shapely (invalid ones repaired with
  ``make_valid`` into their polygonal parts, as the bake's ``ST_MakeValid`` does), answer
  "which ballots contain this point" by brute force: STRtree candidates, then
  ``contains_xy`` on every candidate, so a point on a boundary is in neither area.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import shapely

from benchmarks.drop_rules import define_valid_addresses


def load_universe(conn: duckdb.DuckDBPyConnection, files: list[Path]) -> int:
    """Create table ``universe(uprn, postcode, outcode, lon, lat)``; return its row count."""
    define_valid_addresses(conn, [str(f) for f in files])
    conn.execute(
        "CREATE OR REPLACE TABLE universe AS SELECT DISTINCT uprn, postcode, "
        "split_part(postcode, ' ', 1) AS outcode, lon, lat FROM valid_addresses"
    )
    return conn.execute("SELECT count(*) FROM universe").fetchone()[0]


@dataclass(frozen=True)
class BallotShapes:
    """The export's polygons, one entry per polygon part, with what describes the input."""

    export_rows: int
    pieces: int
    """Rows with a geography (Organisation or Division, non-empty): the bake's pieces."""
    repaired: int
    vertices: np.ndarray
    """Vertices of each piece, as written in the export."""
    id_names: np.ndarray
    """Distinct election IDs, sorted; ``part_ids`` index into it."""
    part_ids: np.ndarray
    parts: np.ndarray
    tree: shapely.STRtree


def read_ballots(path: Path) -> BallotShapes:
    """Read the export with pyarrow; keep the rows the bake keeps; split into polygons."""
    block = max(1 << 20, path.stat().st_size + 1)  # a row must fit in one block
    columns = ["election_id", "division_id", "geometry", "source_table"]
    table = pcsv.read_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=block, column_names=columns, skip_rows=1),
        convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(columns, pa.string())),
    )
    keep = pc.and_(
        pc.is_in(table["source_table"], pa.array(["Organisation", "Division"])),
        pc.not_equal(pc.utf8_trim_whitespace(table["geometry"]), ""),
    )
    kept = table.filter(keep)
    text = pc.replace_substring_regex(kept["geometry"], r"^\s*SRID=[0-9]+;", "")
    written = shapely.from_wkt(text.to_numpy(zero_copy_only=False))
    valid = shapely.is_valid(written)
    shapes = np.where(valid, written, shapely.make_valid(written))
    # A repaired shape may be a collection holding lines too: only its polygons count.
    members, member_row = shapely.get_parts(shapes, return_index=True)
    parts, part_member = shapely.get_parts(members, return_index=True)
    polygons = shapely.get_type_id(parts) == 3
    election_ids = kept["election_id"].to_numpy(zero_copy_only=False)
    names, codes = np.unique(election_ids, return_inverse=True)
    parts = parts[polygons]
    return BallotShapes(
        export_rows=table.num_rows,
        pieces=kept.num_rows,
        repaired=int((~valid).sum()),
        vertices=shapely.get_num_coordinates(written),
        id_names=names,
        part_ids=codes[member_row[part_member[polygons]]],
        parts=parts,
        tree=shapely.STRtree(parts),
    )


@dataclass(frozen=True)
class PointBallots:
    """Per point: its sorted distinct ballot IDs, and whether it lies on some polygon's edge."""

    ballot_ids: pa.ListArray
    on_boundary: np.ndarray


def ballots_at(shapes: BallotShapes, x: np.ndarray, y: np.ndarray) -> PointBallots:
    """Brute force over the STRtree's candidates: exact ``contains_xy`` for every pair."""
    point_index, part_index = shapes.tree.query(shapely.points(x, y))
    px, py = x[point_index], y[point_index]
    inside = shapely.contains_xy(shapes.parts[part_index], px, py)
    touching = shapely.intersects_xy(shapes.parts[part_index], px, py) & ~inside
    on_boundary = np.bincount(point_index[touching], minlength=len(x)) > 0
    rows, codes = point_index[inside], shapes.part_ids[part_index[inside]]
    order = np.lexsort((codes, rows))
    rows, codes = rows[order], codes[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (codes[1:] != codes[:-1])
    rows, codes = rows[first], codes[first]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(x)))])
    values = pa.array(shapes.id_names[codes], type=pa.string())
    ballot_ids = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values)
    return PointBallots(ballot_ids, on_boundary)
