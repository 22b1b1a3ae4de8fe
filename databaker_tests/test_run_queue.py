"""One bake of a layer at a time, whichever way it is launched: concurrency pools per run.

Every op a run can hold is in a pool (its layer's, or ``addressbase``), and the instance's
``dagster.yaml`` admits one run per pool, run by run. The daemon's side (a UI asset selection
waiting in the queue behind a job's bake) is tested on a real deployment in
``test_daemon_end_to_end.py``; here, the definitions, the instance configuration, and a
``databaker bake`` from a shell with ``DAGSTER_HOME`` set, which runs outside the queue and so
takes its turn itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.config import PoolGranularity

from databaker.assets import LAYERS
from databaker.concurrency import ADDRESSBASE_POOL, job_pools, layer_pool, runs_holding
from databaker.definitions import build_defs
from databaker.sources import SAMPLE_ADDRESSBASE

ROOT = Path(__file__).resolve().parents[1]
WAIT_SECONDS = 300


def test_every_job_holds_its_layers_pool_and_the_addressbase_pool_only_when_it_reads_a_drop():
    repository = build_defs().get_repository_def()
    for layer in LAYERS:
        own = layer_pool(layer.name)
        whole = repository.get_job(layer.job_name)
        assert job_pools(whole) == {own, ADDRESSBASE_POOL}
        rebuild = repository.get_job(layer.input.rebuild_job_name)
        assert job_pools(rebuild) == {own}


def test_every_asset_and_check_is_in_a_pool_so_no_ui_selection_escapes_the_queue():
    """The UI launches its asset selections as runs of the implicit asset job."""
    job = build_defs().get_repository_def().get_implicit_global_asset_job_def()
    unpooled = sorted(node.name for node in job.all_node_defs if not node.pool)
    assert unpooled == []
    assert job_pools(job) == {ADDRESSBASE_POOL, *(layer_pool(layer.name) for layer in LAYERS)}


def test_the_instance_admits_one_run_per_pool_counting_whole_runs(tmp_path: Path):
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        config = instance.get_concurrency_config()
    assert config.pool_config.pool_granularity == PoolGranularity.RUN
    assert config.pool_config.default_pool_limit == 1


class ShellBake:
    """``databaker bake`` in its own process, set off on demand; its output lines stamped."""

    def __init__(self, name: str, data_root: Path, log: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = log
        self.output = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "databaker_tests.bake_on_signal", "--",
             "--addressbase", str(SAMPLE_ADDRESSBASE), "--data-root", str(data_root)],
            stdin=subprocess.PIPE, stdout=self.output, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip

    def wait_for(self, *texts: str) -> str:
        """The first of ``texts`` the bake prints (waiting until it prints one of them)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            output = self.log.read_text()
            found = [(output.index(text), text) for text in texts if text in output]
            if found:
                return min(found)[1]
            assert self.process.poll() is None, f"bake {self.name} exited:\n{output}"
            assert time.monotonic() < deadline, f"bake {self.name} printed none of {texts}"
            time.sleep(0.05)

    def go(self) -> None:
        self.process.stdin.write(b"go\n")
        self.process.stdin.close()

    def finish(self) -> None:
        self.process.wait(timeout=WAIT_SECONDS)
        self.output.close()
        assert self.process.returncode == 0, self.log.read_text()

    def stamped(self, text: str) -> float:
        for line in self.log.read_text().splitlines():
            stamp, _, rest = line.partition(" ")
            if text in rest and stamp.replace(".", "").isdigit():
                return float(stamp)
        raise AssertionError(f"bake {self.name} never printed {text!r}:\n{self.log.read_text()}")


def test_a_bake_from_a_shell_waits_for_a_run_of_its_layer_in_progress_before_starting_its_own(
    tmp_path: Path,
):
    """A run of the layer's rebuild job is in progress on the instance (as the daemon would
    have launched it). A bake set off meanwhile must not start its run: it waits, naming that
    run and the pool they share, and asks for the data root's lease only once the run has
    ended. (The daemon's side, with real runs on both ends, is in test_daemon_end_to_end.)"""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DATABAKER_"))}
    env["DAGSTER_HOME"] = str(home)
    bake = ShellBake("A", tmp_path / "data", tmp_path / "bake.log", env)
    bake.wait_for("ready")
    job = build_defs().get_repository_def().get_job("current_elections_from_ballots")

    with dg.DagsterInstance.from_config(str(home)) as instance:
        running = instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)
        bake.go()
        assert bake.wait_for("waiting for run", "asking for the lease") == "waiting for run"
        time.sleep(1.5)
        assert "asking for the lease" not in bake.log.read_text()
        ended = time.time()
        instance.report_run_canceled(running)
    bake.finish()

    waiting = next(line for line in bake.log.read_text().splitlines() if "waiting for run" in line)
    assert running.run_id[:8] in waiting and "current_elections_from_ballots" in waiting
    assert layer_pool("current_elections") in waiting
    assert ended < bake.stamped("asking for the lease")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (baked,) = [run for run in instance.get_runs() if run.run_id != running.run_id]
    assert (
        baked.status == dg.DagsterRunStatus.SUCCESS and baked.job_name == "current_elections_layer"
    )


@pytest.mark.parametrize("status", ["STARTED", "SUCCESS"])
def test_runs_holding_names_only_runs_in_progress(status: str):
    job = build_defs().get_repository_def().get_job("current_elections_from_ballots")
    with dg.DagsterInstance.ephemeral() as instance:
        run = instance.create_run_for_job(job, status=dg.DagsterRunStatus[status])
        holding = runs_holding(instance, {layer_pool("current_elections")})
        others = runs_holding(instance, {layer_pool("current_boundary_reviews")})
    assert [r.run_id for r in holding] == ([run.run_id] if status == "STARTED" else [])
    assert others == []
