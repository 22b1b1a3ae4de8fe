"""Do the methods agree? Each is held to a brute-force answer on a sample, and to our bake on
every address.

- **Sample**: ``k`` addresses drawn at random (seeded) from the drop's valid addresses; their
  ballots by brute force with shapely (``benchmarks.reference``); each method's answer read
  from the outcode file of the address's postcode.
- **Full**: every address a method published, as the set of ``(uprn, ballot_ids)``, against
  our bake's, with DuckDB's ``EXCEPT ALL`` both ways (so an address written twice counts too).
  The addresses of an outcode published as an empty file are expanded to ``(uprn, [])``.

A point exactly on a polygon's edge is in neither area (``ST_Contains``); methods that differ
there are still counted as mismatches, and the ones on a boundary are also counted apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.outputs import OutcodeFiles, lookup
from benchmarks.reference import BallotShapes, PointBallots, ballots_at

EXAMPLES = 5
MISSING = "(address missing)"
BOUNDARY_EXAMINED = 100_000
"""At most this many mismatched addresses are tested for lying on a boundary."""


@dataclass(frozen=True)
class Mismatch:
    uprn: str
    expected: str
    got: str
    on_boundary: bool


@dataclass
class MethodCheck:
    """How one method's output compares; ``full_*`` is None where no full comparison ran."""

    sample_checked: int = 0
    sample_mismatches: int = 0
    sample_on_boundary: int = 0
    published: int | None = None
    full_mismatches: int | None = None
    full_on_boundary: int | None = None
    examples: list[Mismatch] = field(default_factory=list)

    @property
    def mismatches(self) -> int:
        return self.sample_mismatches + (self.full_mismatches or 0)


def draw_sample(conn: duckdb.DuckDBPyConnection, k: int, seed: int) -> pa.Table:
    """``k`` addresses of table ``universe``, the same ones for the same seed and inputs."""
    return conn.execute(
        "SELECT * FROM universe ORDER BY hash(uprn, $seed), uprn LIMIT $k", {"seed": seed, "k": k}
    ).to_arrow_table()


def expected_ballots(shapes: BallotShapes, sample: pa.Table) -> PointBallots:
    return ballots_at(shapes, sample["lon"].to_numpy(), sample["lat"].to_numpy())


def check_sample(
    found: OutcodeFiles, sample: pa.Table, expected: PointBallots, check: MethodCheck
) -> None:
    """Compare a method's rows for the sample with the brute-force answer."""
    got = lookup(found, sample)
    got = got.append_column("key", _key(got["ballot_ids"])).drop_columns(["ballot_ids"])
    per_uprn = got.group_by("uprn").aggregate([("key", "min"), ("key", "count")])
    wanted = pa.table(
        {
            "uprn": sample["uprn"],
            "expected": _key(expected.ballot_ids),
            "on_boundary": pa.array(expected.on_boundary),
        }
    )
    joined = wanted.join(per_uprn, "uprn", join_type="left outer")
    wrong = pc.or_kleene(
        pc.not_equal(pc.coalesce(joined["key_count"], 0), 1),
        pc.invert(pc.fill_null(pc.equal(joined["key_min"], joined["expected"]), False)),
    )
    bad = joined.filter(wrong)
    check.sample_checked = sample.num_rows
    check.sample_mismatches = bad.num_rows
    check.sample_on_boundary = pc.sum(bad["on_boundary"]).as_py() or 0
    check.examples += [
        Mismatch(
            row["uprn"],
            _listed(row["expected"]),
            _shown(row["key_min"], row["key_count"]),
            row["on_boundary"],
        )
        for row in bad.slice(0, EXAMPLES).to_pylist()
    ]


def load_published(conn: duckdb.DuckDBPyConnection, table: str, found: OutcodeFiles) -> int:
    """Create ``table(uprn, ballot_ids)`` from a method's files; return its row count."""
    table = _identifier(table)
    parts = [
        "SELECT uprn, []::VARCHAR[] AS ballot_ids FROM universe "
        "WHERE list_contains($empty::VARCHAR[], outcode)"
    ]
    if found.non_empty_files:
        parts.append("SELECT uprn::VARCHAR, ballot_ids::VARCHAR[] FROM read_parquet($files)")
    params = {"empty": sorted(found.empty)}
    if found.non_empty_files:
        params["files"] = found.non_empty_files
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS " + " UNION ALL ".join(parts), params)
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def check_full(
    conn: duckdb.DuckDBPyConnection,
    ours: str,
    theirs: str,
    shapes: BallotShapes,
    check: MethodCheck,
) -> None:
    """Every address where ``theirs`` differs from ``ours`` (both tables of load_published)."""
    ours, theirs = _identifier(ours), _identifier(theirs)
    conn.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE differing AS
        SELECT DISTINCT uprn FROM (
            (SELECT * FROM {ours} EXCEPT ALL SELECT * FROM {theirs})
            UNION ALL
            (SELECT * FROM {theirs} EXCEPT ALL SELECT * FROM {ours})
        )
        """
    )
    check.full_mismatches = conn.execute("SELECT count(*) FROM differing").fetchone()[0]
    if not check.full_mismatches:
        check.full_on_boundary = 0
        return
    examined = conn.execute(
        f"""
        SELECT d.uprn, u.lon, u.lat,
               (SELECT string_agg(ballot_ids::VARCHAR, ' and ')
                FROM {ours} AS o WHERE o.uprn = d.uprn) AS ours,
               (SELECT string_agg(ballot_ids::VARCHAR, ' and ')
                FROM {theirs} AS t WHERE t.uprn = d.uprn) AS theirs
        FROM (SELECT uprn FROM differing ORDER BY uprn LIMIT {BOUNDARY_EXAMINED}) AS d
        LEFT JOIN universe AS u USING (uprn)
        ORDER BY d.uprn
        """
    ).to_arrow_table()
    located = pc.is_valid(examined["lon"]).to_numpy(zero_copy_only=False)
    lon = examined["lon"].fill_null(0.0).to_numpy()
    lat = examined["lat"].fill_null(0.0).to_numpy()
    on_boundary = ballots_at(shapes, lon, lat).on_boundary & located
    check.full_on_boundary = int(on_boundary.sum())
    check.examples += [
        Mismatch(row["uprn"], row["ours"] or MISSING, row["theirs"] or MISSING, bool(flag))
        for row, flag in zip(
            examined.slice(0, EXAMPLES).to_pylist(), on_boundary[:EXAMPLES], strict=True
        )
    ]


def _identifier(name: str) -> str:
    """Table names are formatted into SQL: only plain identifiers may get there."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"not a plain table name: {name!r}")
    return name


def _key(lists: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A list of IDs as one comparable string: ``[]`` is ``""``; a missing list stays null."""
    return pc.binary_join(lists, " ")


def _listed(key: str) -> str:
    return "[" + ", ".join(key.split(" ")) + "]" if key else "[]"


def _shown(key: str | None, count: int | None) -> str:
    if not count:
        return MISSING
    return _listed(key or "") + (f" (and {count - 1} more rows)" if count > 1 else "")
