"""Synthetic inputs for a benchmark, generated once per size and seed and then reused.

Generating 30 million addresses takes longer than some of the methods being measured, so the
inputs are cached under ``<cache>/inputs/a<N>-d<D>-s<S>-f<F>/`` (``...-r<R>-t<T>`` when a
boundary-reviews export of R reviews, T division types each, is generated too). They are
produced by the project's own ``databaker generate`` (what a user would run), and a folder
counts as complete only when the marker written after a successful generation is there with
every file it lists.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

MARKER = "benchmark-inputs.json"


@dataclass(frozen=True)
class InputSpec:
    """The arguments ``databaker generate`` is run with."""

    addresses: int
    divisions: int
    seed: int
    files: int
    boundary_reviews: int = 0
    boundary_review_types: int = 3

    @property
    def key(self) -> str:
        key = f"a{self.addresses}-d{self.divisions}-s{self.seed}-f{self.files}"
        if self.boundary_reviews:
            key += f"-r{self.boundary_reviews}-t{self.boundary_review_types}"
        return key

    def record(self) -> dict[str, int]:
        """The spec as the marker stores it: without the reviews' fields when there are none,
        so that folders generated before the reviews existed stay valid."""
        record = asdict(self)
        if not self.boundary_reviews:
            del record["boundary_reviews"], record["boundary_review_types"]
        return record


@dataclass(frozen=True)
class Inputs:
    """A generated drop folder, ballots export and, if asked for, boundary-reviews export."""

    spec: InputSpec
    folder: Path
    generated: bool
    """True when this run generated them, False when a cached copy was reused."""
    report: tuple[str, ...] = ()
    """What ``databaker generate`` printed about them (empty for folders generated before
    the marker kept it)."""

    @property
    def addressbase(self) -> Path:
        return self.folder / "addressbase_cleaned"

    @property
    def ballots(self) -> Path:
        return self.folder / "ballots.csv"

    @property
    def boundary_reviews(self) -> Path:
        return self.folder / "boundary_reviews"

    @property
    def drop_files(self) -> list[Path]:
        return sorted(self.addressbase.glob("addressbase_cleaned_*.csv.gz"))

    @property
    def review_files(self) -> list[Path]:
        return sorted(self.boundary_reviews.rglob("*.csv"))


def databaker_command() -> list[str]:
    """The ``databaker`` console script beside this interpreter, as installed by pip."""
    script = Path(sys.executable).with_name("databaker")
    return [str(script)] if script.exists() else [sys.executable, "-m", "databaker.cli"]


def ensure_inputs(spec: InputSpec, cache: Path) -> Inputs:
    """The inputs for ``spec`` under ``cache``, generating them if absent or incomplete."""
    folder = cache / "inputs" / spec.key
    marker = _complete_marker(folder, spec)
    if marker is not None:
        return Inputs(spec, folder, generated=False, report=tuple(marker.get("report", ())))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    command = [
        *databaker_command(), "generate",
        "--addresses", str(spec.addresses), "--divisions", str(spec.divisions),
        "--seed", str(spec.seed), "--files", str(spec.files), "--gzip", "--out", str(folder),
    ]  # fmt: skip
    if spec.boundary_reviews:
        command += [
            "--boundary-reviews", str(spec.boundary_reviews),
            "--boundary-review-types", str(spec.boundary_review_types),
        ]  # fmt: skip
    print(f"generating inputs in {folder} ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"databaker generate failed ({done.returncode}):\n{done.stderr}")
    inputs = Inputs(spec, folder, generated=True, report=tuple(done.stdout.splitlines()))
    parts = [*inputs.drop_files, inputs.ballots, *inputs.review_files]
    files = [str(p.relative_to(folder)) for p in parts]
    marker = {"spec": spec.record(), "files": files, "report": list(inputs.report)}
    (folder / MARKER).write_text(json.dumps(marker, indent=1))
    return inputs


def _complete_marker(folder: Path, spec: InputSpec) -> dict | None:
    """The folder's marker if it describes ``spec`` and every file it lists is there."""
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    files = marker.get("files", [])
    drop = [name for name in files if name.startswith("addressbase_cleaned/")]
    reviews = [name for name in files if name.startswith("boundary_reviews/")]
    complete = (
        marker.get("spec") == spec.record()
        and len(drop) == spec.files
        and "ballots.csv" in files
        and bool(reviews) == bool(spec.boundary_reviews)
        and all((folder / name).is_file() for name in files)
    )
    return marker if complete else None
