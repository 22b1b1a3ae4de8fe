"""The deployed baker: the real Dagster daemon and webserver bake new inputs on their own.

One ``dagster dev`` (webserver, daemon and code server) runs for the whole module on 127.0.0.1,
with a temporary ``DAGSTER_HOME`` holding the repository's ``dagster.yaml`` (and so its run
queue), a watched drops folder that starts with the sample drop, a copy of the ballots export
and a temporary data root. The tests act only as a producer and an operator would: they write
files into the watched locations and read (or launch runs) through the GraphQL API.

Bakes that do not pass through this deployment's run queue (a ``databaker bake`` from a
shell, another machine) meet the daemon's runs at the data root's lease.

The last test stops that deployment and starts a new one on the same ``DAGSTER_HOME``, folders
and environment, as an operator restarting the daemon would.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from databaker.assets import LAYERS
from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.automation.addressbase_drops import DROP_TAG, DropsCursor
from databaker.layers.automation import LAYER_TAG, input_version_tag
from databaker.layers.versions import Manifest
from databaker.partitions import ALL_LETTERS
from databaker.resources import LocalLayerStore
from databaker.resources.input_locations import SUCCESS_MARKER, content_version
from databaker.resources.lease import LeaseHolder
from databaker.sources import SAMPLE_ADDRESSBASE, SAMPLE_BALLOTS
from databaker_tests.dagster_server import (
    ROOT,
    DagsterDeployment,
    dagster_dev,
    is_loopback,
    listening_addresses,
    stop_process_group,
)
from databaker_tests.deployment_client import (
    ASSET_JOB,
    FINISHED,
    WAIT_SECONDS,
    DeploymentClient,
    Run,
)

pytestmark = pytest.mark.slow_module

SENSOR_INTERVAL_SECONDS = 2
FIRST_DROP = SAMPLE_ADDRESSBASE.name
NEW_DROP = "2026-02-02"
DROP_AFTER_RESTART = "2026-03-02"
LAYER = "current_elections_parquet"
BALLOTS_TAG = input_version_tag(CURRENT_ELECTIONS)
ELECTIONS = {LAYER_TAG: "current_elections"}
"""Each drop is baked once per layer; most tests follow the current-elections runs."""
LAYER_JOB = "current_elections_layer"
BALLOTS_JOB = "current_elections_from_ballots"
BALLOTS_SENSOR = "ballots_export_changes"
DROPS_SENSOR = "addressbase_drops"
SENSOR_NAME_TAG = "dagster/sensor_name"
QUEUE_LOOKS_SECONDS = 8
"""Long enough for the run queue daemon to look at its queue several times."""


@dataclass(frozen=True)
class Baker(DeploymentClient):
    """The running deployment, the locations it watches and writes, and how to start it again."""

    deployment: DagsterDeployment
    drops: Path
    ballots: Path
    data_root: Path
    home: Path
    environment: dict[str, str]
    stopped_at: float | None = None
    """When the deployment this one restarted had stopped (see :func:`restarted`)."""


@pytest.fixture(scope="module")
def baker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Baker]:
    """``dagster dev`` watching a fresh drops folder (holding the sample drop) and ballots copy.

    When the module is done, every process of the deployment is stopped and its port is free.
    """
    base = tmp_path_factory.mktemp("daemon")
    home = base / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    drops = base / "drops"
    shutil.copytree(SAMPLE_ADDRESSBASE, drops / FIRST_DROP)
    ballots = base / "ballots.csv"
    shutil.copy(SAMPLE_BALLOTS, ballots)
    data_root = base / "data"
    environment = {
        "DATABAKER_DATA_ROOT": str(data_root),
        "DATABAKER_ADDRESSBASE_DROPS": str(drops),
        "DATABAKER_BALLOTS": str(ballots),
        "DATABAKER_SENSOR_INTERVAL_SECONDS": str(SENSOR_INTERVAL_SECONDS),
    }
    with dagster_dev(home, environment, base / "dagster-dev.log") as deployment:
        yield Baker(deployment, drops, ballots, data_root, home, environment)
    assert_stopped(deployment)


def assert_stopped(deployment: DagsterDeployment) -> None:
    """No process of the deployment is left, and nothing answers on its port any more."""
    assert not deployment.group_pids(), "processes of the deployment survived its stop"
    port = int(deployment.url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 5):
        pass


@contextmanager
def restarted(baker: Baker) -> Iterator[Baker]:
    """Stop the deployment, then run a new one with the same ``DAGSTER_HOME`` and environment.

    The deployment is stopped as the fixture's teardown stops it (SIGTERM to its whole process
    group), so the daemon keeps only what it stored in ``DAGSTER_HOME``: runs, ticks, cursors.
    The new deployment is stopped when the block ends. Its ``stopped_at`` is taken once the old
    one has stopped: a tick the old daemon began before that is left unfinished, and the new
    daemon closes it without a skip reason.
    """
    stop_process_group(baker.deployment.process)
    assert_stopped(baker.deployment)
    stopped_at = time.time()
    log = baker.deployment.log.with_name("dagster-dev-restarted.log")
    with dagster_dev(baker.home, baker.environment, log) as deployment:
        yield dataclasses.replace(baker, deployment=deployment, stopped_at=stopped_at)
    assert_stopped(deployment)


@pytest.fixture(scope="module")
def first_bake(baker: Baker) -> Run:
    """The bake of the drop already there when the daemon starts, once it has succeeded."""
    (run,) = baker.wait_for_finished_runs(1, **{DROP_TAG: FIRST_DROP, **ELECTIONS})
    baker.assert_succeeded(run)
    return run


@pytest.fixture(scope="module")
def second_bake(baker: Baker, first_bake: Run) -> Run:
    """The bake of a drop delivered while the daemon runs, once it has finished."""
    copy_drop(SAMPLE_ADDRESSBASE, baker.drops / NEW_DROP)
    (run,) = baker.wait_for_finished_runs(1, **{DROP_TAG: NEW_DROP, **ELECTIONS})
    return run


def copy_drop(source: Path, target: Path) -> None:
    """Deliver a drop as a producer does: every data file first, the ``_SUCCESS`` marker last."""
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.name != SUCCESS_MARKER)
    for file in files:
        destination = target / file.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, destination)
    (target / SUCCESS_MARKER).write_bytes((source / SUCCESS_MARKER).read_bytes())


def published_sources(layer: Path) -> set[str]:
    """The ``addressbase_source`` values in a layer's outcode files (empty files hold none)."""
    files = sorted(layer.glob("*.parquet"))
    assert files, f"no outcode files in {layer}"
    tables = [pq.read_table(file) for file in files]
    return {
        source
        for table in tables
        if table.num_columns
        for source in table.column("addressbase_source").unique().to_pylist()
    }


def test_the_deployment_listens_on_loopback_only(baker: Baker) -> None:
    listening = listening_addresses(baker.deployment.group_pids())
    port = int(baker.deployment.url.rsplit(":", 1)[1])
    assert ("127.0.0.1", port) in listening
    assert all(is_loopback(address) for address, _ in listening), listening


def test_the_drop_present_at_startup_is_baked_once(baker: Baker, first_bake: Run) -> None:
    assert first_bake.job_name == LAYER_JOB
    assert first_bake.tags[LAYER_TAG] == "current_elections"
    assert {key: first_bake.tags[key] for key in ALL_LETTERS} == ALL_LETTERS
    assert [run.run_id for run in baker.runs(**{DROP_TAG: FIRST_DROP, **ELECTIONS})] == [
        first_bake.run_id
    ]


def test_each_drop_bakes_the_boundary_reviews_layer_too(
    baker: Baker, first_bake: Run, second_bake: Run
) -> None:
    for drop in (FIRST_DROP, NEW_DROP):
        (run,) = baker.wait_for_finished_runs(
            1, **{DROP_TAG: drop, LAYER_TAG: "current_boundary_reviews"}
        )
        baker.assert_succeeded(run)
        assert run.job_name == "current_boundary_reviews_layer"
    layer = baker.latest_materialization("current_boundary_reviews_parquet")
    assert layer.run_id == run.run_id
    assert layer.metadata["addressbase_source"] == str((baker.drops / NEW_DROP).resolve())
    assert published_sources(baker.data_root / "current_boundary_reviews_parquet") == {
        str((baker.drops / NEW_DROP).resolve())
    }


def test_a_new_drop_rebuilds_the_layer_from_it(
    baker: Baker, first_bake: Run, second_bake: Run
) -> None:
    new_drop = baker.drops / NEW_DROP
    run = second_bake

    baker.assert_succeeded(run)
    assert run.job_name == LAYER_JOB
    layer = baker.latest_materialization(LAYER)
    assert layer.run_id == run.run_id
    assert layer.metadata["addressbase_source"] == str(new_drop.resolve())
    assert layer.metadata["ballots_version"] == content_version(str(baker.ballots))
    assert published_sources(baker.data_root / LAYER) == {str(new_drop.resolve())}
    # Neither drop was baked twice, and the older one was not baked again after the newer.
    assert [r.run_id for r in baker.runs(**{DROP_TAG: FIRST_DROP, **ELECTIONS})] == [
        first_bake.run_id
    ]
    assert len(baker.runs(**{DROP_TAG: NEW_DROP, **ELECTIONS})) == 1


def test_a_ballots_change_rebuilds_the_layer_once(baker: Baker, first_bake: Run) -> None:
    # The sensor's first tick only records the export's version; change it only after that.
    baker.deployment.wait_for(
        "first ballots sensor tick",
        lambda: baker.sensor_state(BALLOTS_SENSOR)["typeSpecificData"]["lastCursor"],
        WAIT_SECONDS,
    )
    assert baker.runs(**{SENSOR_NAME_TAG: BALLOTS_SENSOR}) == []
    before = baker.latest_materialization(LAYER)
    lines = baker.ballots.read_text(encoding="utf-8").splitlines(keepends=True)
    baker.ballots.write_text("".join(lines[:-1]), encoding="utf-8")  # one ballot withdrawn
    version = content_version(str(baker.ballots))

    (run,) = baker.wait_for_finished_runs(1, **{SENSOR_NAME_TAG: BALLOTS_SENSOR})

    baker.assert_succeeded(run)
    assert run.job_name == BALLOTS_JOB
    assert run.tags[BALLOTS_TAG] == version
    assert run.tags[LAYER_TAG] == "current_elections"
    layer = baker.latest_materialization(LAYER)
    assert layer.run_id == run.run_id
    assert layer.metadata["ballots_version"] == version
    assert layer.metadata["addressbase_source"] == before.metadata["addressbase_source"]
    # Later ticks see the same version and request nothing more.
    baker.wait_for_ticks(BALLOTS_SENSOR, 3, after=time.time())
    assert [r.run_id for r in baker.runs(**{SENSOR_NAME_TAG: BALLOTS_SENSOR})] == [run.run_id]


def test_an_asset_selection_from_the_ui_waits_in_the_queue_while_a_job_bakes_its_layer(
    baker: Baker, first_bake: Run
) -> None:
    """Two bakes of one layer never overlap, whichever door they come through. The UI's runs
    carry no job's tags; the layer's pool holds them back all the same. A job bake of the layer
    is kept in progress (its run waits for the data root's lease, which a third holder keeps)
    while the UI materialises the layer's version and published assets: that run must stay
    queued, not start and wait at the lease; both must then bake, one after the other, and the
    one queued behind still publishes."""
    marker = {"databaker_tests/launch": "ui-behind-job"}
    holder = LeaseHolder("an operator's rollback")
    with LocalLayerStore(root=str(baker.data_root)).leased(holder) as held:
        waiting_for = f"waiting for the lease on {baker.data_root}, held by {held.describe()}"
        job_run = baker.launch(BALLOTS_JOB, {**ALL_LETTERS, **marker})
        baker.deployment.wait_for(
            "the job's run to wait for the lease",
            lambda: waiting_for in baker.messages_of(job_run),
            WAIT_SECONDS,
        )
        ui_run = baker.launch_assets(
            [CURRENT_ELECTIONS.version_asset_name, CURRENT_ELECTIONS.published_asset_name],
            marker,
        )
        looked_until = time.monotonic() + QUEUE_LOOKS_SECONDS
        while time.monotonic() < looked_until:
            assert baker.status_of(job_run) == "STARTED"
            assert baker.status_of(ui_run) == "QUEUED", "the UI's run started beside the job's"
            time.sleep(1)

    runs = {run.run_id: run for run in baker.wait_for_finished_runs(2, **marker)}
    job, ui = runs[job_run], runs[ui_run]
    baker.assert_succeeded(job)
    baker.assert_succeeded(ui)
    assert ui.job_name == ASSET_JOB and LAYER_TAG not in ui.tags
    assert job.end is not None and ui.start is not None and job.end <= ui.start
    assert baker.steps_span(job_run)[1] <= baker.steps_span(ui_run)[0]
    assert baker.latest_materialization(LAYER).run_id == ui_run


def lease_holder_named(data_root: Path) -> str:
    """Whom the local data root's lease names now (its lock file's content)."""
    try:
        return json.loads((data_root / "_lease" / "bake.lock").read_text() or "{}").get(
            "holder", ""
        )
    except (FileNotFoundError, ValueError):
        return ""


def test_a_bake_from_a_shell_and_the_daemons_bake_take_turns_at_the_data_root(
    baker: Baker, first_bake: Run, tmp_path: Path
) -> None:
    """The run queue orders the runs of this deployment only; a ``databaker bake`` from a shell
    (no ``DAGSTER_HOME``) meets the daemon's run at the data root's lease. Here a third holder
    keeps the lease while the daemon's run and the shell's bake both ask for it: each waits,
    naming it; once it is free they bake one after the other, never at once, and the published
    layer is wholly the last one's."""
    drop = tmp_path / "drop"
    drop.mkdir()
    for part in sorted(SAMPLE_ADDRESSBASE.rglob("*.csv.gz")):
        lines = gzip.decompress(part.read_bytes()).decode().splitlines(keepends=True)
        kept = [line for line in lines if ",DL1 " not in line]
        (drop / part.name).write_bytes(gzip.compress("".join(kept).encode()))
    environment = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    holder = LeaseHolder("an operator's rollback")
    with subprocess.Popen(
        [sys.executable, "-m", "databaker_tests.bake_on_signal", "--",
         "--addressbase", str(drop), "--data-root", str(baker.data_root),
         "--allow", "address_drop", "--allow", "ballot_loss",
         "--allow", "coverage_change", "--allow", "upcoming_ballots_gone"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**environment, **baker.environment},
    ) as shell:  # fmt: skip
        assert shell.stdout.readline().strip() == "ready"
        with LocalLayerStore(root=str(baker.data_root)).leased(holder) as held:
            waiting_for = f"waiting for the lease on {baker.data_root}, held by {held.describe()}"
            daemons = baker.launch(BALLOTS_JOB, {**ALL_LETTERS, "databaker_tests/turns": "shell"})
            baker.deployment.wait_for(
                "the daemon's run to wait for the lease",
                lambda: waiting_for in baker.messages_of(daemons),
                WAIT_SECONDS,
            )
            shell.stdin.write("go\n")
            shell.stdin.close()
            output = []
            while not any(waiting_for in line for line in output):
                output.append(shell.stdout.readline())
                assert output[-1], "".join(output)
        output.append(shell.stdout.read())
        assert shell.wait(timeout=WAIT_SECONDS) == 0, "".join(output)
    baker.assert_succeeded(baker.wait_for_status(daemons, FINISHED))

    stamped = [line.split(" ", 1) for line in "".join(output).splitlines() if " " in line]
    shell_steps = [float(t) for t, text in stamped if t[:1].isdigit() and " ..." in text]
    shell_span = (min(shell_steps), max(float(t) for t, _ in stamped if t[:1].isdigit()))
    daemon_span = baker.steps_span(daemons)
    first, last = sorted([shell_span, daemon_span])
    assert first[1] <= last[0], f"steps interleaved: shell {shell_span}, daemon {daemon_span}"

    layer = baker.data_root / LAYER
    manifest = json.loads((layer / "_manifest.json").read_text())
    published = next(line for line in "".join(output).splitlines() if "published:" in line)
    shell_bake = published.split("bake ", 1)[1].split(",", 1)[0]
    if last is shell_span:
        assert manifest["bake_id"] == shell_bake
        assert manifest["addressbase_source"] == str(drop)
    else:
        assert manifest["bake_id"] != shell_bake
    assert published_sources(layer) == {manifest["addressbase_source"]}
    kept = Manifest.from_json(json.dumps(manifest).encode())
    assert {p.name: p.read_bytes() for p in layer.glob("*.parquet")} == {
        name: (baker.data_root / kept.file_key(f"{LAYER}/", name)).read_bytes()
        for name in kept.files
    }


def test_after_a_daemon_restart_each_drop_still_triggers_exactly_once(
    baker: Baker, first_bake: Run, second_bake: Run
) -> None:
    """Keep this test last: it stops the module's deployment for good.

    The sensors' cursors, stored in ``DAGSTER_HOME``, must survive the restart: the drops sensor
    must not request the drops it has launched again (not even requests that Dagster would
    turn down for their run keys), and the ballots sensor must not start over by recording the
    export's version anew.
    """
    ballots_cursor = baker.deployment.wait_for(
        "first ballots sensor tick",
        lambda: baker.sensor_state(BALLOTS_SENSOR)["typeSpecificData"]["lastCursor"],
        WAIT_SECONDS,
    )
    drops_cursor = baker.sensor_state(DROPS_SENSOR)["typeSpecificData"]["lastCursor"]
    assert DropsCursor.parse(drops_cursor).launched == NEW_DROP
    ballots_runs = [run.run_id for run in baker.runs(**{SENSOR_NAME_TAG: BALLOTS_SENSOR})]

    with restarted(baker) as again:
        assert again.stopped_at is not None
        drops_ticks = again.wait_for_ticks(DROPS_SENSOR, 3, after=again.stopped_at)
        again.wait_for_ticks(BALLOTS_SENSOR, 3, after=again.stopped_at)

        for tick in drops_ticks:
            assert tick["status"] == "SKIPPED", f"{tick}"
            assert tick["runKeys"] == [], tick  # nothing requested, not even turned down
            assert (tick["skipReason"] or "").startswith("no new complete drop"), tick
        assert again.sensor_state(DROPS_SENSOR)["typeSpecificData"]["lastCursor"] == drops_cursor
        assert again.sensor_state(BALLOTS_SENSOR)["typeSpecificData"]["lastCursor"] == (
            ballots_cursor
        )
        drop_runs_before = {r.run_id for r in again.runs(**{SENSOR_NAME_TAG: DROPS_SENSOR})}
        assert len(drop_runs_before) == 2 * len(LAYERS)  # two drops, each baked once per layer
        assert first_bake.run_id in drop_runs_before and second_bake.run_id in drop_runs_before
        assert [r.run_id for r in again.runs(**{SENSOR_NAME_TAG: BALLOTS_SENSOR})] == ballots_runs

        drop = again.drops / DROP_AFTER_RESTART
        delivered_at = time.time()
        copy_drop(SAMPLE_ADDRESSBASE, drop)
        (run,) = again.wait_for_finished_runs(1, **{DROP_TAG: DROP_AFTER_RESTART, **ELECTIONS})

        again.assert_succeeded(run)
        assert run.job_name == LAYER_JOB
        layer = again.latest_materialization(LAYER)
        assert layer.run_id == run.run_id
        assert layer.metadata["addressbase_source"] == str(drop.resolve())
        # One tick since the delivery requested this run; the others, most of them during the
        # bake and (if need be) waited for, requested nothing.
        ticks = again.wait_for_ticks(DROPS_SENSOR, 4, after=delivered_at)
        requested = [tick["runIds"] for tick in ticks if tick["runKeys"] or tick["runIds"]]
        after_restart = again.runs(**{DROP_TAG: DROP_AFTER_RESTART})
        assert len(requested) == 1 and sorted(requested[0]) == sorted(
            r.run_id for r in after_restart
        ), ticks
        assert {r.tags[LAYER_TAG] for r in after_restart} == {layer.name for layer in LAYERS}
        drop_runs = {r.run_id for r in again.runs(**{SENSOR_NAME_TAG: DROPS_SENSOR})}
        assert drop_runs == drop_runs_before | {r.run_id for r in after_restart}
