"""A bake killed at any moment leaves the published layer as it was, or, once publishing has
begun, each file whole, as it was or as the new bake has it; the next bake then completes.

Each bake is a real ``databaker bake`` process killed with SIGKILL (``killed_bake.py``) at one
layer-store operation of one stage, on a copy of a data root holding a published bake.
"""

import gzip
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from databaker.bake import bake
from databaker.definitions import Settings
from databaker.sources import SAMPLE_ADDRESSBASE, SAMPLE_BALLOTS

LAYER = "current_elections_parquet"
GONE_OUTCODE = "DL1"


def layer_files(data_root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((data_root / LAYER).iterdir())}


def outcode_files(files: dict[str, bytes]) -> dict[str, bytes]:
    return {name: data for name, data in files.items() if name.endswith(".parquet")}


@pytest.fixture(scope="module")
def bakes(tmp_path_factory) -> tuple[Path, Path, Path, dict[str, bytes], dict[str, bytes]]:
    """A data root with the sample published; the next bake's inputs (one outcode's addresses
    gone, five ballots fewer: past two guard rails, which these bakes override);
    and what each bake's layer holds."""
    root = tmp_path_factory.mktemp("killed")
    published = root / "published"
    bake(settings=Settings(data_root=str(published)))
    drop = root / "next" / "drop"
    drop.mkdir(parents=True)
    for part in sorted(SAMPLE_ADDRESSBASE.rglob("*.csv.gz")):
        lines = gzip.decompress(part.read_bytes()).decode().splitlines(keepends=True)
        kept = [line for line in lines if f",{GONE_OUTCODE} " not in line]
        (drop / part.name).write_bytes(gzip.compress("".join(kept).encode()))
    ballots = root / "next" / "ballots.csv"
    ballots.write_text("".join(SAMPLE_BALLOTS.read_text().splitlines(keepends=True)[:-5]))
    reference = root / "reference"
    bake(addressbase=str(drop), ballots=str(ballots), settings=Settings(data_root=str(reference)))
    old, new = layer_files(published), outcode_files(layer_files(reference))
    assert f"{GONE_OUTCODE}.parquet" in old and f"{GONE_OUTCODE}.parquet" not in new
    assert sum(old.get(name) != data for name, data in new.items()) > 20
    return published, drop, ballots, old, new


# (store operation, text in its key, which call) and whether publishing has begun by then.
KILL_POINTS = {
    "reading the drop": (("open_output", "valid/", 1), False),
    "replacing the joined table": (("move", "current_ballots_joined_to_address_base/", 2), False),
    "writing the version": (("write_bytes", "versions/", 40), False),
    "publishing, midway": (("copy", f"{LAYER}/", 25), True),
    "publishing, before the manifest": (("write_bytes", f"{LAYER}/_manifest.json", 1), True),
}


@pytest.mark.parametrize(("kill", "publishing"), KILL_POINTS.values(), ids=KILL_POINTS.keys())
def test_a_killed_bake_never_leaves_a_file_half_written(bakes, tmp_path, kill, publishing):
    published, drop, ballots, old, new = bakes
    data_root = tmp_path / "data"
    shutil.copytree(published, data_root)
    method, text, count = kill
    killed = subprocess.run(
        [sys.executable, "-m", "databaker_tests.killed_bake", method, text, str(count), "--",
         "--addressbase", str(drop), "--ballots", str(ballots), "--data-root", str(data_root),
         "--allow", "ballot_loss", "--allow", "upcoming_ballots_gone"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    after = layer_files(data_root)
    if not publishing:
        assert after == old
        return
    assert after["_manifest.json"] == old["_manifest.json"], "the manifest is written last"
    for name, data in outcode_files(after).items():
        assert data in (old.get(name), new.get(name)), f"{name} is neither bake's"
    assert set(old) & set(new) <= set(after), "a file both bakes have is never missing"
    assert any(new.get(name) == data != old.get(name) for name, data in after.items())
    if kill[0] == "copy":
        bake(
            addressbase=str(drop),
            ballots=str(ballots),
            settings=Settings(str(data_root)),
            allow=["ballot_loss", "upcoming_ballots_gone"],
        )
        assert outcode_files(layer_files(data_root)) == new, "the next bake completes"
