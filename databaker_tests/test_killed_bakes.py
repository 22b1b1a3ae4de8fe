"""A bake killed at any moment leaves the published layer as it was, or, once publishing has
begun, each file whole, as it was or as the new bake has it; the next bake then completes, and
removes what the killed one had staged. A publish or rollback that finds the disk full says that
the layer is mid-publish, until the next bake or rollback completes it.

Each is a real ``databaker`` process killed with SIGKILL, or finding the disk full
(``killed_bake.py``), at one layer-store operation of one stage, on a copy of a data root
holding a published bake.
"""

import gzip
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.bake import bake
from databaker.cli import main
from databaker.definitions import Settings
from databaker.resources import LocalLayerStore
from databaker.sources import SAMPLE_ADDRESSBASE, SAMPLE_BALLOTS
from databaker.status import layer_statuses

pytestmark = pytest.mark.slow_module

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


def next_bake(drop: Path, ballots: Path, data_root: Path) -> list[str]:
    """``databaker bake`` of the next inputs, overriding the two guard rails they fail."""
    return [
        "bake", "--addressbase", str(drop), "--ballots", str(ballots), "--data-root",
        str(data_root), "--allow", "ballot_loss", "--allow", "upcoming_ballots_gone",
    ]  # fmt: skip


def databaker_failing(
    at: tuple[str, str, int], *command: str, disk_full: bool = False
) -> subprocess.CompletedProcess:
    """``databaker <command>`` in a process of its own, killed at ``at`` (store operation, text
    in its key, which call), or finding the disk full there."""
    method, text, count = at
    fault = ["--disk-full"] if disk_full else []
    return subprocess.run(
        [sys.executable, "-m", "databaker_tests.killed_bake", *fault, method, text, str(count),
         "--", *command],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


# (store operation, text in its key, which call) and whether publishing has begun by then.
KILL_POINTS = {
    "reading the drop": (("open_output", "valid/", 1), False),
    "replacing the joined table": (("move", "current_ballots_joined_to_address_base/", 2), False),
    "writing the version": (("write_bytes", "versions/", 40), False),
    # The layer's own files, not a version's (a rebake copies unchanged files into its version).
    "publishing, midway": (("copy", f"^{LAYER}/", 25), True),
    "publishing, before the manifest": (("write_bytes", f"{LAYER}/_manifest.json", 1), True),
}


FOLLOWED_BY_A_BAKE = [
    KILL_POINTS["replacing the joined table"][0],
    KILL_POINTS["publishing, midway"][0],
]


@pytest.mark.parametrize(("kill", "publishing"), KILL_POINTS.values(), ids=KILL_POINTS.keys())
def test_a_killed_bake_never_leaves_a_file_half_written(bakes, tmp_path, kill, publishing):
    published, drop, ballots, old, new = bakes
    data_root = tmp_path / "data"
    shutil.copytree(published, data_root)
    killed = databaker_failing(kill, *next_bake(drop, ballots, data_root))
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    after = layer_files(data_root)
    if not publishing:
        assert after == old
    else:
        assert after["_manifest.json"] == old["_manifest.json"], "the manifest is written last"
        for name, data in outcode_files(after).items():
            assert data in (old.get(name), new.get(name)), f"{name} is neither bake's"
        assert set(old) & set(new) <= set(after), "a file both bakes have is never missing"
        assert any(new.get(name) == data != old.get(name) for name, data in after.items())
    if kill not in FOLLOWED_BY_A_BAKE:
        return
    # Staged tables of the killed bake, which nothing else would ever remove, are removed by
    # the next bake to take the data root's lease; a publish it cut short is completed.
    left_staged = staged_files(data_root)
    bake(
        addressbase=str(drop),
        ballots=str(ballots),
        settings=Settings(str(data_root)),
        allow=["ballot_loss", "upcoming_ballots_gone"],
    )
    assert outcode_files(layer_files(data_root)) == new, "the next bake completes"
    assert staged_files(data_root) == []
    if not publishing:
        assert left_staged, "the killed bake left staged files"


def bake_ids(data_root: Path) -> list[str]:
    """The bakes kept under ``versions/``, oldest first."""
    return sorted(p.name for p in (data_root / "versions" / LAYER).iterdir())


DISK_FULL_POINTS = {
    # As the issue found it: every changed file copied, then the manifest's write fails. (A
    # publish stopped among the files is the kill test's "publishing, midway", and its next
    # bake completes it.)
    "writing the manifest": KILL_POINTS["publishing, before the manifest"][0],
}


@pytest.mark.parametrize("at", DISK_FULL_POINTS.values(), ids=DISK_FULL_POINTS.keys())
def test_a_publish_that_finds_the_disk_full_says_the_layer_is_mid_publish(
    bakes, tmp_path, capsys, instance, at
):
    """The disk fills up part-way through publishing: the bake must not claim that nothing
    changed. It exits 6 saying the layer is mid-publish between the two bakes; ``versions`` and
    ``status`` say so too; each file is whole, one bake's or the other's; and the next
    ordinary bake first completes the interrupted publish, then publishes its own."""
    published, drop, ballots, old, new = bakes
    data_root = tmp_path / "data"
    shutil.copytree(published, data_root)
    (old_bake,) = bake_ids(data_root)
    failed = databaker_failing(at, *next_bake(drop, ballots, data_root), disk_full=True)
    assert failed.returncode == 6, failed.stdout + failed.stderr
    (new_bake,) = set(bake_ids(data_root)) - {old_bake}
    after = outcode_files(layer_files(data_root))
    for name, data in after.items():
        assert data in (old.get(name), new.get(name)), f"{name} is neither bake's"
    changed = {name for name, data in new.items() if old.get(name) != data}
    replaced = {name for name in changed if after.get(name) == new[name]}
    assert replaced, "publishing had begun"
    headline = failed.stderr.strip().splitlines()[0]
    assert headline.startswith(f"Bake failed. The layer at {data_root / LAYER}/ is MID-PUBLISH: ")
    assert f"its files mix bake {old_bake} with bake {new_bake}" in headline
    assert "The next bake of the layer completes it" in headline
    assert (
        f"stopped after {len(replaced)} of {len(changed)} changed file(s) ([Errno 28] No space "
        f"left on device: '{data_root / LAYER}/" in failed.stderr
    )
    assert "not changed" not in failed.stderr and "Traceback" not in failed.stderr

    assert main(["versions", "--data-root", str(data_root)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[-1].startswith("! MID-PUBLISH since 20")
    assert f"the layer mixes bake {old_bake} with bake {new_bake}" in listed[-1]
    (status,) = layer_statuses(
        instance, store=LocalLayerStore(root=str(data_root)), layers=(CURRENT_ELECTIONS,)
    )
    assert status.publishing_problem.startswith("mid-publish since 20")
    assert f"the layer mixes bake {old_bake} with bake {new_bake}" in status.publishing_problem
    assert status.publishing_problem in status.problems

    following = bake(addressbase=str(drop), ballots=str(ballots), settings=Settings(str(data_root)))
    version = following.metadata["current_elections_version"]
    assert version["baseline"] == new_bake, "compared with the completed publish"
    assert layer_files(data_root) == {
        **new,
        "_manifest.json": (
            data_root / "versions" / LAYER / version["bake_id"] / "_manifest.json"
        ).read_bytes(),
    }
    assert main(["versions", "--data-root", str(data_root)]) == 0
    assert "MID-PUBLISH" not in capsys.readouterr().out


def test_a_rollback_that_finds_the_disk_full_leaves_the_layer_mid_publish_until_one_completes(
    bakes, tmp_path, capsys
):
    """Rolling forward to the next bake's version, the disk fills up part-way: exit 6, one
    line saying so. Rolling back to the published bake then rewrites every file, though its
    manifest, still the published one, says they are as it has them."""
    published, _, _, old, new = bakes
    data_root = tmp_path / "data"
    shutil.copytree(published, data_root)
    (old_bake,) = bake_ids(data_root)
    reference = published.with_name("reference")  # where the fixture baked the next inputs
    (new_bake,) = bake_ids(reference)
    shutil.copytree(
        reference / "versions" / LAYER / new_bake, data_root / "versions" / LAYER / new_bake
    )
    failed = databaker_failing(
        KILL_POINTS["publishing, midway"][0],
        *("rollback", "--to", new_bake, "--data-root", str(data_root)),
        disk_full=True,
    )
    assert (failed.returncode, failed.stdout) == (6, ""), failed.stderr
    (line,) = failed.stderr.splitlines()
    assert line.startswith(f"databaker: publishing bake {new_bake} stopped after ")
    assert line.endswith(
        f"is mid-publish, mixing bake {old_bake} with bake {new_bake}: the next bake of the layer "
        "completes it, or `databaker rollback --to <bake id>` replaces it"
    )
    mixed = layer_files(data_root)
    assert any(new.get(name) == data != old.get(name) for name, data in mixed.items())
    assert main(["versions", "--data-root", str(data_root)]) == 0
    assert "! MID-PUBLISH" in capsys.readouterr().out

    assert main(["rollback", "--to", old_bake, "--data-root", str(data_root)]) == 0
    assert layer_files(data_root) == old


def staged_files(data_root: Path) -> list[Path]:
    return sorted(path for path in (data_root / "_staging").rglob("*") if path.is_file())


JOINED = "current_ballots_joined_to_address_base"
ALLOW = {"allow": ["ballot_loss", "upcoming_ballots_gone"]}


def joined_rows(data_root: Path) -> dict[str, list[dict]]:
    """Each letter of the joined table's rows, in UPRN order."""
    return {
        folder.name: sorted(
            pq.read_table(sorted(folder.glob("*.parquet"))).to_pylist(), key=lambda r: r["uprn"]
        )
        for folder in sorted((data_root / JOINED).glob("first_letter=*"))
    }


def joined_records(data_root: Path) -> dict[str, bytes | None]:
    """Each letter of the joined table's record, if it has one."""
    return {
        folder.name: (folder / "_partition.json").read_bytes()
        if (folder / "_partition.json").exists()
        else None
        for folder in sorted((data_root / JOINED).glob("first_letter=*"))
    }


@pytest.fixture(scope="module")
def rebakes(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A data root with the sample published; a ballots export without its last five ballots,
    which changes the lists of one letter; and a copy of the root rebaked from it."""
    root = tmp_path_factory.mktemp("killed_rebake")
    published = root / "published"
    bake(settings=Settings(data_root=str(published)))
    ballots = root / "ballots.csv"
    ballots.write_text("".join(SAMPLE_BALLOTS.read_text().splitlines(keepends=True)[:-5]))
    reference = root / "reference"
    shutil.copytree(published, reference)
    bake(keep_addressbase=True, ballots=str(ballots), settings=Settings(str(reference)), **ALLOW)
    return published, ballots, reference


@pytest.mark.parametrize(
    "at",
    [("move", 1), ("move", 2), ("write_bytes", 1)],
    ids=["moving its rows", "moving the lists they changed", "writing its record"],
)
def test_a_rebake_killed_replacing_a_joined_letter_leaves_no_record_of_rows_not_there(
    rebakes, tmp_path, at
):
    """The joined letter the change reaches is replaced in three steps: its rows moved in, the
    lists they changed moved in, its record written. Killed before any of them, the letter
    must not keep a record naming rows it does not hold: the next rebake of the same export
    would trust the record, keep the letter as it is, and carry its old lists into every later
    bake."""
    published, ballots, reference = rebakes
    data_root = tmp_path / "data"
    shutil.copytree(published, data_root)
    rebake = ["bake", "--keep-addressbase", "--ballots", str(ballots), "--data-root",
              str(data_root), "--allow", "ballot_loss", "--allow",
              "upcoming_ballots_gone"]  # fmt: skip
    method, count = at
    killed = databaker_failing((method, f"^{JOINED}/first_letter=", count), *rebake)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    before, after = joined_records(published), joined_records(data_root)
    replaced = {letter for letter, record in after.items() if record != before[letter]}
    assert replaced, "killed mid-replacement"
    assert all(after[letter] is None for letter in replaced), "no record but the old one"

    bake(keep_addressbase=True, ballots=str(ballots), settings=Settings(str(data_root)), **ALLOW)
    assert joined_rows(data_root) == joined_rows(reference)
    assert outcode_files(layer_files(data_root)) == outcode_files(layer_files(reference))
