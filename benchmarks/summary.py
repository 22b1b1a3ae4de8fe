"""From measured runs and the cross-check to the report's tables and notes."""

from __future__ import annotations

import numpy as np

from benchmarks.agreement import Agreement
from benchmarks.crosscheck import MethodCheck
from benchmarks.inputs import Inputs
from benchmarks.methods import MethodResult
from benchmarks.our_bake import BakeRun
from benchmarks.report import MethodRow


def method_rows(methods: list[MethodResult], agreement: Agreement) -> list[MethodRow]:
    return [
        MethodRow(
            method=m.label,
            addresses=m.addresses,
            polygons=m.polygons,
            wall_seconds=m.measurement.wall_seconds,
            peak_rss_bytes=m.measurement.peak_rss_bytes,
            mismatches=_mismatch_cell(agreement.checks.get(m.name)),
            outcome=m.outcome,
        )
        for m in methods
    ]


def stage_rows(bake: BakeRun) -> list[tuple[str, float]]:
    """Our stages, then what the steps do not account for: process start-up and Dagster."""
    steps = sum(bake.steps.values())
    wall = bake.measurement.wall_seconds
    return [
        *bake.stage_seconds.items(),
        ("all steps", steps),
        ("outside the steps (start-up, imports, Dagster run)", max(wall - steps, 0.0)),
        ("wall", wall),
    ]


def crosscheck_rows(methods: list[MethodResult], agreement: Agreement) -> list[tuple[str, ...]]:
    rows = []
    for method in methods:
        check = agreement.checks.get(method.name)
        if check is None:
            rows.append((method.label, "—", "—", "—", "—", "not checked: the run did not finish"))
            continue
        full = check.full_mismatches is not None
        rows.append(
            (
                method.label,
                f"{check.sample_checked:,}",
                f"{check.sample_mismatches:,}",
                f"{check.published:,}" if full else "(the reference)",
                f"{check.full_mismatches:,}" if full else "—",
                f"{check.sample_on_boundary + (check.full_on_boundary or 0):,}",
            )
        )
    return rows


def input_description(inputs: Inputs, agreement: Agreement) -> dict[str, str]:
    shapes = agreement.shapes
    vertices = shapes.vertices if len(shapes.vertices) else np.zeros(1, dtype=int)
    return {
        **inputs.drop_lines(),
        "addresses": f"{agreement.addresses:,} valid, distinct, in {agreement.outcodes:,} outcodes",
        "ballots export": f"{shapes.export_rows:,} rows, "
        f"{inputs.ballots.stat().st_size / 1024**2:,.1f} MiB; {shapes.pieces:,} with a geography "
        f"({len(shapes.id_names):,} ballots, {shapes.repaired:,} invalid and repaired), "
        f"{shapes.export_rows - shapes.pieces:,} without",
        "polygons": f"{shapes.pieces:,} pieces, {len(shapes.parts):,} polygons once "
        "multipolygons are split",
        "vertices per piece": f"min {int(vertices.min()):,}, median "
        f"{float(np.median(vertices)):,.0f}, max {int(vertices.max()):,}",
    }


def notes(methods: list[MethodResult], bake: BakeRun) -> list[str]:
    out = []
    if bake.baked_seconds is not None:
        out.append(
            f"The bake reported `Baked in {bake.baked_seconds:.1f} s` (its Dagster run); the "
            "wall time above also counts starting Python and importing Dagster."
        )
    for m in methods:
        if m.measurement.rss_source != "proc":
            out.append(f"{m.label}: peak RSS from getrusage (too short to sample).")
        if m.outcome and not m.measurement.timed_out:
            tail = m.measurement.stderr.strip().splitlines()[-3:]
            out.append(f"{m.label} {m.outcome}: " + " / ".join(f"`{t}`" for t in tail))
    if bake.stage_seconds.get("other"):
        known = ", ".join(sorted(bake.steps))
        out.append(f'Steps counted as "other" are not in STAGE_OF_STEP; steps: {known}.')
    return out


def unexplained_mismatches(agreement: Agreement) -> int:
    """Mismatches not accounted for by points on a boundary (which may legitimately differ)."""
    return sum(_unexplained(check) for check in agreement.checks.values())


def _unexplained(check: MethodCheck) -> int:
    return max(check.sample_mismatches - check.sample_on_boundary, 0) + max(
        (check.full_mismatches or 0) - (check.full_on_boundary or 0), 0
    )


def _mismatch_cell(check: MethodCheck | None) -> str:
    if check is None:
        return "—"
    if check.mismatches == 0:
        return "0"
    boundary = check.sample_on_boundary + (check.full_on_boundary or 0)
    parts = [f"{check.sample_mismatches:,} of {check.sample_checked:,} sampled vs shapely"]
    if check.full_mismatches is not None:
        parts.append(f"{check.full_mismatches:,} vs ours")
    return f"{check.mismatches:,} ({'; '.join(parts)}; {boundary:,} on a boundary)"
