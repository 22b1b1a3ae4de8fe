"""Two bakes of one layer on one data root, started at several offsets, from different drops
and ballots: the published layer always comes wholly from one of them, locally and on S3.

Each bake is a real ``databaker bake`` process (``bake_on_signal.py``, started ahead so that the
offset is the one asked for, not the time Python takes to import). The second bake waits for the
first's lease on the data root, then bakes and publishes its own inputs over it. Afterwards the
published outcode files are, byte for byte, those of a reference bake of the last bake's inputs
alone, its manifest names that bake's drop and ballots only, and each bake's kept version is
wholly its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databaker.bake import bake
from databaker.definitions import Settings
from databaker.generate import generate
from databaker.resources.input_locations import content_version
from databaker_tests.s3_server import S3Server

pytestmark = pytest.mark.slow_module

LAYER = "current_elections_parquet/"
ALLOW_EVERY_RAIL = [
    "--allow", "address_drop", "--allow", "ballot_loss",
    "--allow", "coverage_change", "--allow", "upcoming_ballots_gone",
]  # fmt: skip
LOCAL_OFFSETS = [0.0, 1.5, 3.0]
"""Seconds between setting off the two bakes: at once (both asking for the lease), while the
first joins, while it publishes (a bake here runs 3 to 4 s). The lease is taken before the
first step, so a second bake set off while the first reads the drop meets the same held lease
as one set off while it joins."""
S3_OFFSETS = [0.0, 2.5]


@dataclass(frozen=True)
class Inputs:
    name: str
    drop: Path
    ballots: Path
    outcode_files: dict[str, bytes]
    """The layer a bake of these inputs alone publishes."""

    @property
    def ballots_version(self) -> str:
        return content_version(str(self.ballots))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Inputs, Inputs]:
    """Two small generated drops and exports (a few outcodes, so that S3 bakes are quick too),
    with layers that share no file. Each is baked alone once, as the reference."""
    base = tmp_path_factory.mktemp("concurrent")
    made = []
    for name, seed in (("B", 3), ("C", 4)):
        generated = generate(base / name, addresses=1500, divisions=20, seed=seed)
        drop, ballots = generated.addressbase_dir, generated.ballots_csv
        root = base / f"reference-{name}"
        bake(addressbase=str(drop), ballots=str(ballots), settings=Settings(data_root=str(root)))
        files = {p.name: p.read_bytes() for p in (root / LAYER).glob("*.parquet")}
        made.append(Inputs(name, drop.resolve(), ballots.resolve(), files))
    first, second = made
    shared = set(first.outcode_files.values()) & set(second.outcode_files.values())
    assert all(pq.read_metadata(pa.BufferReader(data)).num_rows == 0 for data in shared)
    return first, second


class Bake:
    """A ``databaker bake`` process, imported and waiting for its signal."""

    def __init__(self, inputs: Inputs, data_root: str, log: Path, env: dict[str, str]) -> None:
        self.inputs = inputs
        self.log = log
        self.output = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "databaker_tests.bake_on_signal", "--",
             "--addressbase", str(inputs.drop), "--ballots", str(inputs.ballots),
             "--data-root", data_root, *ALLOW_EVERY_RAIL],
            stdin=subprocess.PIPE, stdout=self.output, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        self.set_off = 0.0

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + 120
        while "ready" not in self.log.read_text().splitlines():
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the bake process did not start"
            time.sleep(0.05)

    def go(self) -> None:
        self.set_off = time.time()
        self.process.stdin.write(b"go\n")
        self.process.stdin.close()

    def finish(self) -> None:
        """Wait for the bake to exit and check it succeeded."""
        self.process.wait(timeout=600)
        self.output.close()
        assert self.process.returncode == 0, self.log.read_text()

    def stamped(self, text: str) -> float:
        """When the bake printed its first line containing ``text``."""
        for line in self.log.read_text().splitlines():
            stamp, _, rest = line.partition(" ")
            if text in rest and stamp.replace(".", "").isdigit():
                return float(stamp)
        raise AssertionError(f"the bake never printed {text!r}: {self.log.read_text()}")

    @property
    def waited(self) -> bool:
        return "waiting for the lease on" in self.log.read_text()

    @property
    def steps(self) -> tuple[float, float]:
        """From its first step's start to its last step's end: while it holds the lease."""
        return self.stamped("addressbase_cleaned_raw ..."), self.stamped(
            "current_elections_parquet done"
        )

    @property
    def bake_id(self) -> str:
        (line,) = [x for x in self.log.read_text().splitlines() if "published:" in x]
        return line.split("bake ", 1)[1].split(",", 1)[0]


def run_two_bakes(
    inputs: tuple[Inputs, Inputs], data_root: str, offset: float, logs: Path, env: dict[str, str]
) -> tuple[Bake, Bake]:
    """Set off a bake of each input ``offset`` seconds apart on one data root; both bakes, in
    the order they baked, after checking that their steps never interleaved and that a bake
    set off while the other was baking waited for it."""
    logs.mkdir(parents=True)
    bakes = [Bake(i, data_root, logs / f"{i.name}.log", env) for i in inputs]
    for each in bakes:
        each.wait_until_ready()
    bakes[0].go()
    time.sleep(offset)
    bakes[1].go()
    for each in bakes:
        each.finish()
    first, last = sorted(bakes, key=lambda each: each.steps[0])
    assert first.steps[1] <= last.steps[0], "the two bakes' steps interleaved"
    # Asking for the lease while the other was baking, the later bake must have waited.
    if last.stamped("asking for the lease") < first.steps[1]:
        assert last.waited, f"{last.log.read_text()}"
    assert not first.waited, "the bake that baked first waited for nothing"
    return first, last


def assert_wholly_from(files: dict[str, bytes], manifest: dict, bake: Bake) -> None:
    """The published layer is exactly what ``bake``'s inputs alone would publish."""
    reference = bake.inputs.outcode_files
    assert sorted(files) == sorted(reference), "other outcodes than the bake's own"
    mixed = sorted(name for name, data in files.items() if data != reference[name])
    assert not mixed, f"files not from bake {bake.inputs.name}: {mixed[:5]}"
    assert manifest["bake_id"] == bake.bake_id
    assert manifest["addressbase_source"] == str(bake.inputs.drop)
    assert manifest["input_version"] == bake.inputs.ballots_version


@pytest.mark.parametrize("offset", LOCAL_OFFSETS)
def test_two_bakes_on_a_local_root_publish_one_whole_layer(inputs, tmp_path, offset):
    data_root = tmp_path / "data"
    first, last = run_two_bakes(inputs, str(data_root), offset, tmp_path / "logs", os.environ)

    layer = data_root / LAYER
    files = {p.name: p.read_bytes() for p in layer.glob("*.parquet")}
    assert_wholly_from(files, json.loads((layer / "_manifest.json").read_text()), last)
    for each in (first, last):
        version = data_root / "versions" / LAYER / each.bake_id
        kept = {p.name: p.read_bytes() for p in version.glob("*.parquet")}
        assert kept == each.inputs.outcode_files, f"version {each.bake_id} is not wholly its own"
    assert not (data_root / "_staging").exists()


@pytest.fixture
def s3_root(s3_server: S3Server) -> Iterator[tuple[str, str, S3Server]]:
    bucket = s3_server.new_bucket()
    yield bucket, f"s3://{bucket}/data", s3_server


def s3_files(server: S3Server, bucket: str, prefix: str) -> dict[str, bytes]:
    client = server.client()
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        item["Key"][len(prefix) :]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in listing
    }


@pytest.mark.parametrize("offset", S3_OFFSETS)
def test_two_bakes_on_an_s3_root_publish_one_whole_layer(inputs, s3_root, tmp_path, offset):
    bucket, data_root, server = s3_root
    env = {**os.environ, **server.environment()}
    first, last = run_two_bakes(inputs, data_root, offset, tmp_path / "logs", env)

    published = s3_files(server, bucket, f"data/{LAYER}")
    manifest = json.loads(published.pop("_manifest.json"))
    assert_wholly_from(published, manifest, last)
    for each in (first, last):
        kept = s3_files(server, bucket, f"data/versions/{LAYER}{each.bake_id}/")
        kept = {name: data for name, data in kept.items() if name.endswith(".parquet")}
        assert kept == each.inputs.outcode_files, f"version {each.bake_id} is not wholly its own"
    assert s3_files(server, bucket, "data/_lease/") == {}, "the lease was given back"
