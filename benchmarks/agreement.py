"""The cross-check of every method that finished, run in one DuckDB session of the harness.

See ``benchmarks.crosscheck`` for what is compared. The session keeps its tables on disk under
the work folder when they outgrow memory, so the full comparison also fits at 30 million
addresses.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from benchmarks.crosscheck import (
    MethodCheck,
    check_full,
    check_sample,
    draw_sample,
    expected_ballots,
    load_published,
)
from benchmarks.inputs import Inputs
from benchmarks.methods import OURS, MethodResult
from benchmarks.outputs import outcode_files
from benchmarks.reference import BallotShapes, load_universe, read_ballots


@dataclass(frozen=True)
class Agreement:
    checks: dict[str, MethodCheck]
    """Per method name, for the methods that finished."""
    addresses: int
    """Valid, distinct addresses of the drop, as the harness reads it."""
    outcodes: int
    shapes: BallotShapes


def cross_check(
    inputs: Inputs, methods: list[MethodResult], work: Path, sample_size: int, seed: int
) -> Agreement:
    """Check every finished method on the sample, and each peer against our bake in full."""
    scratch = work / "crosscheck"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    shapes = read_ballots(inputs.ballots)
    with duckdb.connect(str(scratch / "crosscheck.duckdb")) as conn:
        conn.execute("SET temp_directory = ?", [str(scratch / "spill")])
        addresses = load_universe(conn, inputs.drop_files)
        outcodes = conn.execute("SELECT count(DISTINCT outcode) FROM universe").fetchone()[0]
        sample = draw_sample(conn, sample_size, seed)
        expected = expected_ballots(shapes, sample)
        checks: dict[str, MethodCheck] = {}
        finished = [m for m in methods if m.outcome is None]
        for method in finished:
            found = outcode_files(method.folder)
            check = checks[method.name] = MethodCheck()
            check_sample(found, sample, expected, check)
            check.published = load_published(conn, f"published_{method.name}", found)
        if OURS in checks:
            for method in finished:
                if method.name != OURS:
                    check_full(
                        conn,
                        f"published_{OURS}",
                        f"published_{method.name}",
                        shapes,
                        checks[method.name],
                    )
    shutil.rmtree(scratch, ignore_errors=True)
    for name, check in checks.items():
        for example in check.examples:
            print(
                f"mismatch in {name}: uprn {example.uprn}: expected {example.expected}, "
                f"got {example.got}{' (on a boundary)' if example.on_boundary else ''}",
                file=sys.stderr,
            )
    return Agreement(checks, addresses, outcodes, shapes)
