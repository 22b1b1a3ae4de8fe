"""The consumers' polars versions, each in an environment of its own, and their lookups timed
there (:mod:`benchmarks.polars_lookups`).

WhereDoIVote and the aggregator API pin polars on two lines, 1.17 and 1.25, which cannot share
one environment: each version gets a virtual environment under the benchmarks' cache, made once
(``pip install polars==<version> boto3``, with the project's pin of boto3).
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np

from benchmarks.console import say
from benchmarks.lookups import Latencies

CONSUMER_VERSIONS = ("1.17.1", "1.25.2")
"""The releases of the lines the consumers pin."""
SCRIPT = Path(__file__).with_name("polars_lookups.py")
_CONSTRAINTS = Path(__file__).parent.parent / "constraints.txt"


def polars_python(version: str, cache: Path) -> Path:
    """The Python of an environment holding polars ``version`` (and boto3), made if missing:
    this one's, when it holds that version."""
    if version == _installed_polars():
        return Path(sys.executable)
    folder = cache / "polars" / version
    python = folder / "bin" / "python"
    if not (folder / ".complete").exists():
        say(f"making an environment for polars {version} in {folder} ...")
        venv.EnvBuilder(clear=True, with_pip=True).create(folder)
        boto3 = _pinned("boto3")
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"polars=={version}", boto3], check=True
        )
        (folder / ".complete").write_text(version)
    return python


def polars_lookups(
    python: Path,
    case: str,
    lookups: list[tuple[str, str]],
    *,
    engine: str,
    label: str,
    s3: dict[str, str] | None = None,
) -> tuple[Latencies, list[int]]:
    """Time ``lookups`` (file or S3 key, postcode) with the polars of ``python``; ``case`` is
    ``disk``, ``page cache`` or ``s3``. Returns the latencies and each lookup's row count.
    Raises if a lookup found no row: every postcode asked is one of its file's."""
    job = {"case": case, "lookups": lookups, "s3": s3}
    done = subprocess.run(
        [str(python), str(SCRIPT)], input=json.dumps(job), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"polars lookups failed ({done.returncode}):\n{done.stderr}")
    result = json.loads(done.stdout)
    empty = [lookups[i] for i, rows in enumerate(result["rows"]) if rows == 0]
    if empty:
        raise RuntimeError(f"{engine}: no rows for {len(empty)} postcodes, e.g. {empty[:3]}")
    seconds = np.array(result["seconds"])
    return Latencies(engine, label, seconds, (float(seconds.sum()),)), result["rows"]


def _installed_polars() -> str | None:
    try:
        return importlib.metadata.version("polars")
    except importlib.metadata.PackageNotFoundError:
        return None


def _pinned(package: str) -> str:
    """``package==<version>`` as constraints.txt pins it, or the bare name."""
    for line in _CONSTRAINTS.read_text().splitlines():
        if line.lower().startswith(f"{package}=="):
            return line.strip()
    return package


if __name__ == "__main__":
    for version in sys.argv[1:] or CONSUMER_VERSIONS:
        print(polars_python(version, Path("benchmarks/.cache")))
