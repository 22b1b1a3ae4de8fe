"""Our method: ``databaker bake`` end to end, and where its time goes, stage by stage.

The bake prints ``<step> done (12.3 s)`` for every step and a summary. Steps are mapped to the
stages every method has (read, partition, join and group, write) by ``STAGE_OF_STEP`` (or a
map of the caller's, for another layer); a step of a name not listed there is a check when it
printed a check verdict or is named after an asset it checks (``<asset>_<check>``), and "other"
otherwise, so a renamed step is still counted.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from benchmarks.inputs import Inputs, databaker_command
from benchmarks.process import Measurement, run_measured

STAGE_OF_STEP = {
    "addressbase_cleaned_raw": "read/parse",
    "current_ballots": "ballots",
    "addressbase_partitioned": "partition",
    "current_ballots_joined_to_address_base": "join+group",
    "current_elections_version": "write",
    "current_elections_parquet": "write",
}

_DONE = re.compile(r"^(?P<step>\S+) done \((?P<seconds>[0-9.]+) s\)$", re.MULTILINE)
_CHECK_LINE = re.compile(r"^  check \S+: ", re.MULTILINE)
_BAKED = re.compile(r"^Baked (?:\S+ )?in (?P<seconds>[0-9.]+) s$", re.MULTILINE)
_ADDRESSES = re.compile(r"^\s+addresses:\s+(?P<n>[0-9,]+)", re.MULTILINE)
_WITH_IDS = re.compile(r"^\s+addresses:\s+[0-9,]+ \((?P<n>[0-9,]+) with an? ", re.MULTILINE)
_OUTCODES = re.compile(r"^\s+outcodes written:\s+(?P<n>[0-9,]+)", re.MULTILINE)
_EMPTY = re.compile(r"^\s+outcodes written:\s+[0-9,]+ \((?P<n>[0-9,]+) empty\)", re.MULTILINE)
_PIECES = re.compile(r"^\s+ballots:\s+[0-9,]+ in (?P<n>[0-9,]+) pieces", re.MULTILINE)
_LAYER = re.compile(r"^Layer: (?P<path>.+)$", re.MULTILINE)


@dataclass(frozen=True)
class BakeRun:
    """A measured bake and what it printed about itself."""

    measurement: Measurement
    layer: Path
    stage_seconds: dict[str, float]
    steps: dict[str, float]
    baked_seconds: float | None
    addresses: int | None
    polygons: int | None
    with_ids: int | None = None
    """Addresses published with at least one ID (a ballot, a boundary review)."""
    outcodes: int | None = None
    empty_outcodes: int | None = None


def run_bake(
    inputs: Inputs,
    data_root: Path,
    *,
    layer: str = "current_elections",
    input_option: str = "ballots",
    stage_of_step: Mapping[str, str] = STAGE_OF_STEP,
    log_name: str = "databaker",
) -> BakeRun:
    """Bake ``layer`` from ``inputs`` into a fresh ``data_root`` and parse the bake's report.

    The layer's own input is passed as ``--<input_option>`` (dashed), the ``Inputs`` path of
    that name. ``DAGSTER_HOME`` is dropped from the environment so the bake uses a throwaway
    instance, as a command-line bake does by default, and benchmarks never land in a real run
    history. What the bake printed is kept in ``<data_root's parent>/logs/<log_name>/``.
    """
    data_root = data_root.resolve()
    shutil.rmtree(data_root, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    own_input = getattr(inputs, input_option).resolve()
    command = [
        *databaker_command(), "bake", "--layer", layer,
        "--addressbase", str(inputs.addressbase.resolve()),
        f"--{input_option.replace('_', '-')}", str(own_input),
        "--data-root", str(data_root),
    ]  # fmt: skip
    # Run from the work folder: an in-memory DuckDB spills to ./.tmp, which belongs there.
    measured = run_measured(
        command, log_dir=data_root.parent / "logs" / log_name, env=env, cwd=data_root.parent
    )
    return parse_bake(measured, data_root / f"{layer}_parquet", stage_of_step)


def parse_bake(
    measured: Measurement, default_layer: Path, stage_of_step: Mapping[str, str] = STAGE_OF_STEP
) -> BakeRun:
    """The bake's steps, stages and summary figures, from what it printed (None for a figure
    it did not print, as a bake that failed)."""
    out = measured.stdout
    steps = {m["step"]: float(m["seconds"]) for m in _DONE.finditer(out)}
    layer = _LAYER.search(out)
    return BakeRun(
        measurement=measured,
        layer=Path(layer["path"].strip()) if layer else default_layer,
        stage_seconds=stage_seconds(steps, _steps_with_check_lines(out), stage_of_step),
        steps=steps,
        baked_seconds=_number(_BAKED, out, float),
        addresses=_number(_ADDRESSES, out, int),
        polygons=_number(_PIECES, out, int),
        with_ids=_number(_WITH_IDS, out, int),
        outcodes=_number(_OUTCODES, out, int),
        empty_outcodes=_number(_EMPTY, out, int),
    )


def stage_seconds(
    steps: dict[str, float],
    check_steps: set[str],
    stage_of_step: Mapping[str, str] = STAGE_OF_STEP,
) -> dict[str, float]:
    """Seconds per stage: the stages of ``stage_of_step`` in order of first mention, then
    checks and other (every stage present, 0.0 when no step mapped to it)."""
    totals = dict.fromkeys([*stage_of_step.values(), "checks", "other"], 0.0)
    for step, seconds in steps.items():
        totals[_stage(step, check_steps, stage_of_step)] += seconds
    return totals


def _stage(step: str, check_steps: set[str], stage_of_step: Mapping[str, str]) -> str:
    if step in stage_of_step:
        return stage_of_step[step]
    if step in check_steps or "check" in step:
        return "checks"
    if any(step.startswith(f"{asset}_") for asset in stage_of_step):
        return "checks"
    return "other"


def _steps_with_check_lines(out: str) -> set[str]:
    """Steps that printed a check verdict between their start and their ``done`` line."""
    found, current = set(), None
    for line in out.splitlines():
        if line.endswith(" ..."):
            current = line[: -len(" ...")]
        elif current and _CHECK_LINE.match(line):
            found.add(current)
    return found


def _number(pattern: re.Pattern[str], text: str, kind: type) -> float | int | None:
    match = pattern.search(text)
    return kind(match.group(1).replace(",", "")) if match else None
