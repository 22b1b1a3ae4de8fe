"""``databaker status``: per layer, when and from what it was built, and whether it is healthy."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.bake import BakeFailed, bake
from databaker.definitions import Settings
from databaker.resources import LocalLayerStore
from databaker.status import layer_statuses as all_layer_statuses
from databaker_tests.conftest import address_line, write_lines
from databaker_tests.test_bad_inputs import GOOD_ADDRESSES, GOOD_BALLOTS

pytestmark = pytest.mark.slow_module

DATABAKER = str(Path(sys.executable).with_name("databaker"))


def layer_statuses(*args, **kwargs):
    """The current-elections layer's status, the one these tests bake."""
    return all_layer_statuses(*args, layers=(CURRENT_ELECTIONS,), **kwargs)


@pytest.fixture
def inputs(tmp_path) -> tuple[Path, Path]:
    drop = write_lines(tmp_path / "drops" / "2026-02-02" / "part.csv", GOOD_ADDRESSES)
    ballots = write_lines(tmp_path / "ballots.csv", GOOD_BALLOTS)
    return drop.parent, ballots


def test_a_layer_never_baked_is_reported_as_such(instance):
    (status,) = layer_statuses(instance)
    assert status.name == "current_elections_parquet"
    assert not status.healthy
    assert "never materialised" in status.problems


def test_a_fresh_checked_layer_names_its_drop_and_ballots_version(instance, inputs, data_root):
    drop, ballots = inputs
    settings = Settings(data_root=str(data_root))
    bake(addressbase=str(drop), ballots=str(ballots), settings=settings, instance=instance)
    (status,) = layer_statuses(instance)
    assert status.healthy, status.problems
    assert status.addressbase_source == str(drop.resolve())
    assert status.input_version.startswith("sha256:")
    assert status.checks == 7, "three on the tables, four guard rails"
    assert datetime.now(UTC) - status.materialised_at < timedelta(minutes=5)


def test_a_layer_older_than_its_freshness_window_is_stale(instance, inputs, data_root):
    drop, ballots = inputs
    settings = Settings(data_root=str(data_root))
    bake(addressbase=str(drop), ballots=str(ballots), settings=settings, instance=instance)
    (status,) = layer_statuses(instance, now=datetime.now(UTC) + timedelta(hours=27))
    assert not status.healthy
    assert status.freshness_problem.startswith("stale: materialised 27.0 h ago, allowed 26.0 h")


def test_a_layer_left_mid_publish_is_failing(instance, inputs, data_root):
    """Fresh and checked, but its publish was interrupted: its files mix two bakes."""
    drop, ballots = inputs
    settings = Settings(data_root=str(data_root))
    baked = bake(addressbase=str(drop), ballots=str(ballots), settings=settings, instance=instance)
    store = LocalLayerStore(root=str(data_root))
    assert layer_statuses(instance, store=store)[0].healthy
    published = baked.metadata["current_elections_parquet"]["bake_id"]
    marker = {"bake_id": "20261205T010000Z-0a1b2c3d", "previous": published, "started": "then"}
    (data_root / "current_elections_parquet" / "_publishing.json").write_text(json.dumps(marker))
    (status,) = layer_statuses(instance, store=store)
    assert not status.healthy
    assert status.problems == [status.publishing_problem]
    assert status.publishing_problem.startswith(
        f"mid-publish since then: the layer mixes bake {published} with bake "
        "20261205T010000Z-0a1b2c3d (interrupted, or running now)"
    )
    del marker["previous"]  # as the release before this one wrote it
    (data_root / "current_elections_parquet" / "_publishing.json").write_text(json.dumps(marker))
    (status,) = layer_statuses(instance, store=store)
    assert "the layer mixes the bake published before with bake 20261205T" in (
        status.publishing_problem
    )


def test_a_failed_check_after_the_last_bake_makes_the_layer_failing(
    instance, inputs, data_root, tmp_path
):
    drop, ballots = inputs
    settings = Settings(data_root=str(data_root))
    bake(addressbase=str(drop), ballots=str(ballots), settings=settings, instance=instance)
    clash = write_lines(
        tmp_path / "drops" / "2026-03-02" / "part.csv",
        [*GOOD_ADDRESSES, address_line("1", "1 Other Street", "LS1 6AA", -1.54, 53.797)],
    )
    with pytest.raises(BakeFailed):
        bake(addressbase=str(clash), ballots=str(ballots), settings=settings, instance=instance)
    (status,) = layer_statuses(instance)
    assert status.freshness_problem is None
    (problem,) = status.check_problems  # the joined table, unchanged, keeps its passed checks
    assert problem.startswith("addressbase_cleaned_raw / uprns_are_unique failed: 1 UPRN(s)")


def test_the_command_exits_non_zero_until_a_bake_is_recorded(tmp_path, inputs):
    drop, ballots = inputs
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()

    def databaker(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [DATABAKER, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )

    before = databaker("status")
    assert before.returncode == 1
    assert "current_elections_parquet: FAILING" in before.stdout
    assert "problem: never materialised" in before.stdout
    baked = databaker("bake", "--addressbase", str(drop), "--ballots", str(ballots))
    assert baked.returncode == 0, baked.stderr
    assert databaker("status").returncode == 1, "the boundary-reviews layer is not baked yet"
    after = databaker("status", "--layer", "current_elections")
    assert after.returncode == 0, after.stdout
    assert "current_elections_parquet: OK" in after.stdout
    assert f"addressbase_source: {drop.resolve()}" in after.stdout
    assert "checks:             7, all passed" in after.stdout


def test_the_command_needs_the_instance_the_daemon_uses(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    result = subprocess.run(
        [DATABAKER, "status"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    assert "DAGSTER_HOME" in result.stderr
