"""EveryElection's database as the ballots' location: ``databaker bake --ballots
postgresql://...`` exports the ballots from it first, then bakes exactly what the same ballots
give as a file, and never shows the database's password."""

from __future__ import annotations

import datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from databaker.bake import bake
from databaker.cli import main
from databaker.definitions import ConfigurationError, Settings, build_defs, build_resources
from databaker.resources import S3LayerStore
from databaker.sources import SAMPLE_ADDRESSBASE, SAMPLE_BALLOTS
from databaker_tests.every_election_db import (
    BAKER_PASSWORD,
    EveryElectionDb,
    every_election_fixture,  # noqa: F401
    every_election_server_fixture,  # noqa: F401
)
from databaker_tests.s3_server import S3Server

LAYER = "current_elections_parquet"
EXPORT = "every_election/ballots_export/ballots.csv"


def bake_cli(data_root: Path, ballots: str) -> int:
    return main([
        "bake", "--addressbase", str(SAMPLE_ADDRESSBASE), "--ballots", ballots,
        "--data-root", str(data_root), "--lease-wait", "0",
    ])  # fmt: skip


def outcode_files(data_root: Path) -> dict[str, bytes]:
    files = {path.name: path.read_bytes() for path in (data_root / LAYER).glob("*.parquet")}
    assert files, f"no outcode files under {data_root / LAYER}"
    return files


def test_a_layer_baked_from_every_election_is_the_one_its_ballots_give_as_a_file(
    every_election: EveryElectionDb,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The bundled ballots, held in EE as EE holds ballots, all current (polling in 30 days).
    every_election.load_ballots_export(
        SAMPLE_BALLOTS, datetime.date.today() + datetime.timedelta(days=30)
    )
    monkeypatch.setenv("PGPASSWORD", BAKER_PASSWORD)
    without_password = every_election.server.url(every_election.name, password=None)

    assert bake_cli(tmp_path / "from_file", str(SAMPLE_BALLOTS)) == 0
    capsys.readouterr()
    assert bake_cli(tmp_path / "from_ee", without_password) == 0
    printed = capsys.readouterr()

    assert outcode_files(tmp_path / "from_ee") == outcode_files(tmp_path / "from_file")
    exported = (tmp_path / "from_ee" / EXPORT).read_text().splitlines()
    assert exported[0] == "election_id,division_id,geometry,source_table"
    sample_ballots = {line.split(",", 1)[0] for line in SAMPLE_BALLOTS.read_text().splitlines()}
    assert {line.split(",", 1)[0] for line in exported} == sample_ballots
    assert BAKER_PASSWORD not in printed.out + printed.err
    assert f"exported:           ballots export from {without_password} as of " in printed.out


def test_a_wrong_password_stops_the_bake_at_the_export_without_showing_it(
    every_election: EveryElectionDb, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = "not-" + BAKER_PASSWORD
    url = every_election.server.url(every_election.name, password=wrong)

    assert bake_cli(tmp_path, url) == 1
    printed = capsys.readouterr()

    assert "ballots export not exported" in printed.err
    assert "password authentication failed" in printed.err
    assert wrong not in printed.out + printed.err
    assert not (tmp_path / LAYER).exists()


def test_the_graph_exports_the_ballots_only_when_they_come_from_every_election() -> None:
    from_file = build_defs(Settings()).resolve_asset_graph()
    defs = build_defs(Settings(ballots="postgresql://baker@127.0.0.1/ee"))
    from_ee = defs.resolve_asset_graph()
    # An input of the op, not only an edge of the graph: a run exports before it reads.
    reading = defs.get_assets_def(dg.AssetKey("current_ballots"))
    assert dg.AssetKey("ballots_export") in reading.keys_by_input_name.values()

    assert "ballots_export" not in {key.to_user_string() for key in from_file.get_all_asset_keys()}
    (export,) = [k for k in from_ee.get_all_asset_keys() if k.to_user_string() == "ballots_export"]
    assert from_ee.get(export).child_keys == {
        key for key in from_ee.get_all_asset_keys() if key.to_user_string() == "current_ballots"
    }


def test_an_events_queue_without_a_database_source_is_refused() -> None:
    queue = "https://sqs.eu-west-2.amazonaws.com/123456789012/CurrentElectionsEventQueue.fifo"

    with pytest.raises(ConfigurationError, match="no input comes from EveryElection's database"):
        build_resources(Settings(events_queue=queue))


def test_a_password_in_the_url_is_neither_shown_nor_stored_with_the_runs() -> None:
    url = "postgresql://baker:not-for-the-ui@127.0.0.1:5432/every_election"

    # As the command line gives it: the UI and every run's snapshot show the variable's name.
    job = build_defs(Settings(ballots=url)).resolve_job_def("current_elections_layer")

    snapshot = serialize_value(job.get_job_snapshot())
    assert "not-for-the-ui" not in snapshot
    assert "DATABAKER_BALLOTS" in snapshot
    inputs = build_resources(Settings(ballots=url))["inputs"]
    assert inputs.process_config_and_initialize().ballots == url


def test_the_export_goes_to_an_s3_data_root_and_bakes_what_it_bakes_on_disk(
    every_election: EveryElectionDb, s3_env: S3Server, tmp_path: Path
) -> None:
    every_election.load_ballots_export(
        SAMPLE_BALLOTS, datetime.date.today() + datetime.timedelta(days=30)
    )
    root = f"s3://{s3_env.new_bucket()}/layers"
    common = {"addressbase": str(SAMPLE_ADDRESSBASE), "ballots": every_election.url}

    on_s3 = bake(settings=Settings(data_root=root), **common)
    on_disk = bake(settings=Settings(data_root=str(tmp_path)), **common)

    s3_store = S3LayerStore(root=root)
    assert s3_store.read_bytes(EXPORT) == (tmp_path / EXPORT).read_bytes()
    files = [key for key in s3_store.list_keys(LAYER) if key.endswith(".parquet")]
    assert len(files) == on_disk.metadata[LAYER]["outcodes"] == 168
    assert all(s3_store.read_bytes(key) == (tmp_path / key).read_bytes() for key in files)
    assert (
        on_s3.metadata["ballots_export"]["export_version"]
        == (on_disk.metadata["ballots_export"]["export_version"])
    )
