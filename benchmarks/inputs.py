"""Synthetic inputs for a benchmark, generated once per size and seed and then reused.

Generating 30 million addresses takes longer than some of the methods being measured, so the
inputs are cached under ``<cache>/inputs/a<N>-d<D>-s<S>-f<F>/``. They are produced by the
project's own ``databaker generate`` (what a user would run), and a folder counts as complete
only when the marker written after a successful generation is there with every file it lists.
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

    @property
    def key(self) -> str:
        return f"a{self.addresses}-d{self.divisions}-s{self.seed}-f{self.files}"


@dataclass(frozen=True)
class Inputs:
    """A generated drop folder and ballots export."""

    spec: InputSpec
    folder: Path
    generated: bool
    """True when this run generated them, False when a cached copy was reused."""

    @property
    def addressbase(self) -> Path:
        return self.folder / "addressbase_cleaned"

    @property
    def ballots(self) -> Path:
        return self.folder / "ballots.csv"

    @property
    def drop_files(self) -> list[Path]:
        return sorted(self.addressbase.glob("addressbase_cleaned_*.csv.gz"))


def databaker_command() -> list[str]:
    """The ``databaker`` console script beside this interpreter, as installed by pip."""
    script = Path(sys.executable).with_name("databaker")
    return [str(script)] if script.exists() else [sys.executable, "-m", "databaker.cli"]


def ensure_inputs(spec: InputSpec, cache: Path) -> Inputs:
    """The inputs for ``spec`` under ``cache``, generating them if absent or incomplete."""
    folder = cache / "inputs" / spec.key
    if _complete(folder, spec):
        return Inputs(spec, folder, generated=False)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    command = [
        *databaker_command(), "generate",
        "--addresses", str(spec.addresses), "--divisions", str(spec.divisions),
        "--seed", str(spec.seed), "--files", str(spec.files), "--gzip", "--out", str(folder),
    ]  # fmt: skip
    print(f"generating inputs in {folder} ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"databaker generate failed ({done.returncode}):\n{done.stderr}")
    inputs = Inputs(spec, folder, generated=True)
    files = [str(p.relative_to(folder)) for p in [*inputs.drop_files, inputs.ballots]]
    (folder / MARKER).write_text(json.dumps({"spec": asdict(spec), "files": files}, indent=1))
    return inputs


def _complete(folder: Path, spec: InputSpec) -> bool:
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (
        marker.get("spec") == asdict(spec)
        and len(marker.get("files", [])) == spec.files + 1
        and all((folder / name).is_file() for name in marker["files"])
    )
