"""One bake of a layer at a time, whichever way it is launched: concurrency pools per run.

Every op a run can hold is in a pool (its layer's, or ``addressbase``), and the instance's
``dagster.yaml`` admits one run per pool, run by run. The daemon's side (a UI asset selection
waiting in the queue behind a job's bake) is tested on a real deployment in
``test_daemon_end_to_end.py``; here, the definitions, the instance configuration, and a
``databaker bake`` from a shell with ``DAGSTER_HOME`` set, which runs outside the queue and so
takes its turn itself.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.config import PoolGranularity

from databaker.assets import LAYERS
from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.bake import bake
from databaker.concurrency import ADDRESSBASE_POOL, job_pools, layer_pool, runs_holding
from databaker.definitions import Settings, build_defs
from databaker.layers.build import layer_definitions

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


def test_a_bake_with_dagster_home_set_waits_for_a_run_of_its_layer_in_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A run of the layer's rebuild job is in progress on the instance (as the daemon would
    have launched it). A bake set off meanwhile (``databaker bake`` with ``DAGSTER_HOME`` set,
    which runs outside the queue) must not start its run: it waits, naming that run and the
    pool they share, and starts only once that run has ended. (The daemon's side, with real
    runs on both ends, is in test_daemon_end_to_end.)"""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    job = build_defs().get_repository_def().get_job("current_elections_from_ballots")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        running = instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)
    said: list[str] = []
    ended: list[float] = []
    baked = threading.Event()

    def end_the_run_once_the_bake_waits() -> None:
        while not any("waiting for run" in line for line in said):
            if baked.wait(0.05):
                return
        time.sleep(1.5)
        with dg.DagsterInstance.from_config(str(home)) as other:
            ended.append(time.time())
            other.report_run_canceled(running)

    ender = threading.Thread(target=end_the_run_once_the_bake_waits, daemon=True)
    ender.start()
    bake(settings=Settings(data_root=str(tmp_path / "data")), echo=said.append)
    baked.set()
    ender.join(timeout=WAIT_SECONDS)

    waiting = next((line for line in said if "waiting for run" in line), "(never waited)")
    assert running.run_id[:8] in waiting and "current_elections_from_ballots" in waiting
    assert layer_pool("current_elections") in waiting
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (record,) = [
            record
            for record in instance.get_run_records()
            if record.dagster_run.run_id != running.run_id
        ]
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert record.dagster_run.job_name == "current_elections_layer"
    assert ended and record.start_time is not None and ended[0] <= record.start_time


@pytest.mark.parametrize("status", ["STARTED", "SUCCESS"])
def test_runs_holding_names_only_runs_in_progress(status: str):
    job = build_defs().get_repository_def().get_job("current_elections_from_ballots")
    with dg.DagsterInstance.ephemeral() as instance:
        run = instance.create_run_for_job(job, status=dg.DagsterRunStatus[status])
        holding = runs_holding(instance, {layer_pool("current_elections")})
        others = runs_holding(instance, {layer_pool("current_boundary_reviews")})
    assert [r.run_id for r in holding] == ([run.run_id] if status == "STARTED" else [])
    assert others == []


def test_a_layer_whose_input_is_outside_its_pool_is_refused_at_definition():
    @dg.asset(name="ballots_without_a_pool")
    def unpooled() -> None: ...

    stray = dataclasses.replace(
        CURRENT_ELECTIONS,
        input=dataclasses.replace(CURRENT_ELECTIONS.input, asset=unpooled),
    )
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="layer_pool"):
        layer_definitions(stray)
