"""The sensors and the schedule, evaluated with Dagster's test contexts on real folders."""

import json
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from databaker.assets import LAYERS
from databaker.assets.current_boundary_reviews import CURRENT_BOUNDARY_REVIEWS
from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.automation.addressbase_drops import (
    DropsCursor,
    build_addressbase_drops_sensor,
)
from databaker.layers.automation import InputCursor as BallotsCursor
from databaker.layers.build import layer_definitions
from databaker.partitions import ALL_LETTERS
from databaker.resources.input_locations import InputLocations
from databaker.sources import SAMPLE_BOUNDARY_REVIEWS
from databaker_tests.conftest import address_line, write_lines

CURRENT = layer_definitions(CURRENT_ELECTIONS)
drops_sensor = build_addressbase_drops_sensor(60, [CURRENT.full_job])
(ballots_sensor,) = CURRENT.sensors(60)
nightly_current_elections = CURRENT.schedule


def deliver(drops: Path, name: str, *, marker: bool = True, parts: int = 1) -> Path:
    """A dated drop folder as producers write it: CSV parts, then the marker."""
    folder = drops / name
    for part in range(parts):
        line = address_line(str(part + 1), f"{part + 1} Briggate, Leeds", "LS1 6AA", -1.54, 53.8)
        write_lines(folder / "addressbase_cleaned" / f"part-{part:03d}.csv", [line])
    if marker:
        (folder / "_SUCCESS").write_bytes(b"")
    return folder


@pytest.fixture
def drops(tmp_path) -> Path:
    (tmp_path / "drops").mkdir()
    return tmp_path / "drops"


@pytest.fixture
def inputs(drops, tmp_path) -> InputLocations:
    ballots = write_lines(
        tmp_path / "ballots.csv", ["election_id,division_id,geometry,source_table"]
    )
    return InputLocations(
        addressbase_drops=str(drops),
        ballots=str(ballots),
        boundary_reviews=str(SAMPLE_BOUNDARY_REVIEWS),
    )


def tick(sensor: dg.SensorDefinition, inputs: InputLocations, cursor: str | None):
    """One evaluation; returns (run requests, new cursor, skip message)."""
    context = dg.build_sensor_context(cursor=cursor, resources={"inputs": inputs})
    result = sensor.evaluate_tick(context)
    skip = result.skip_message
    return result.run_requests or [], result.cursor, skip


def test_a_new_complete_drop_is_baked_from_its_folder(drops, inputs):
    folder = deliver(drops, "2026-02-02")
    requests, cursor, _ = tick(drops_sensor, inputs, None)
    (request,) = requests
    assert request.run_key == "addressbase-drop-2026-02-02-current_elections_layer"
    source = request.run_config["ops"]["addressbase_cleaned_raw"]["config"]["source"]
    assert source == str(folder.resolve())
    assert request.tags["databaker/addressbase_drop"] == "2026-02-02"
    assert ALL_LETTERS.items() <= request.tags.items()
    assert DropsCursor.parse(cursor).launched == "2026-02-02"


def test_the_same_drop_is_baked_once(drops, inputs):
    deliver(drops, "2026-02-02")
    _, cursor, _ = tick(drops_sensor, inputs, None)
    requests, again, skip = tick(drops_sensor, inputs, cursor)
    assert requests == [] and "no new complete drop" in skip
    assert DropsCursor.parse(again) == DropsCursor.parse(cursor)


def test_a_drop_without_a_marker_waits_until_its_listing_stops_changing(drops, inputs):
    deliver(drops, "2026-02-02", marker=False)
    requests, cursor, skip = tick(drops_sensor, inputs, None)
    assert requests == [] and "waiting for ['2026-02-02']" in skip
    deliver(drops, "2026-02-02", marker=False, parts=2)  # the producer is still writing
    requests, cursor, _ = tick(drops_sensor, inputs, cursor)
    assert requests == []
    requests, cursor, _ = tick(drops_sensor, inputs, cursor)  # unchanged since the last tick
    assert [r.run_key for r in requests] == ["addressbase-drop-2026-02-02-current_elections_layer"]


def test_a_folder_without_csv_files_is_never_a_drop(drops, inputs):
    (drops / "2026-02-02").mkdir()
    (drops / "2026-02-02" / "_SUCCESS").write_bytes(b"")
    _, cursor, _ = tick(drops_sensor, inputs, None)
    requests, _, _ = tick(drops_sensor, inputs, cursor)
    assert requests == []


def test_an_older_drop_after_a_newer_one_is_never_baked(drops, inputs):
    deliver(drops, "2026-03-02")
    _, cursor, _ = tick(drops_sensor, inputs, None)
    deliver(drops, "2026-02-02")  # late delivery of an older drop
    requests, cursor, _ = tick(drops_sensor, inputs, cursor)
    assert requests == []
    assert DropsCursor.parse(cursor).launched == "2026-03-02"


def test_of_several_new_drops_only_the_newest_complete_one_is_baked(drops, inputs):
    deliver(drops, "2026-02-02")
    deliver(drops, "2026-03-02")
    deliver(drops, "2026-04-02", marker=False)
    requests, cursor, _ = tick(drops_sensor, inputs, None)
    assert [r.run_key for r in requests] == ["addressbase-drop-2026-03-02-current_elections_layer"]
    assert DropsCursor.parse(cursor).unfinished.keys() == {"2026-04-02"}


def test_folders_that_are_not_dated_are_ignored(drops, inputs):
    deliver(drops, "latest")
    deliver(drops, "2026-02-02-copy")
    requests, _, _ = tick(drops_sensor, inputs, None)
    assert requests == []


def test_the_drops_cursor_survives_a_round_trip():
    cursor = DropsCursor("2026-02-02", {"2026-03-02": "abc123"})
    assert DropsCursor.parse(cursor.serialize()) == cursor
    assert DropsCursor.parse(None) == DropsCursor()
    assert json.loads(cursor.serialize())["launched"] == "2026-02-02"


def test_a_restarted_daemon_picks_up_from_the_stored_cursor(drops, inputs):
    """The daemon stores the cursor; a new evaluation with it launches only what is new."""
    deliver(drops, "2026-02-02")
    _, stored, _ = tick(drops_sensor, inputs, None)
    deliver(drops, "2026-03-02")
    requests, _, _ = tick(drops_sensor, inputs, stored)
    assert [r.run_key for r in requests] == ["addressbase-drop-2026-03-02-current_elections_layer"]


def test_the_ballots_sensor_records_the_first_version_without_a_run(inputs):
    requests, cursor, _ = tick(ballots_sensor, inputs, None)
    assert requests == []
    assert BallotsCursor.parse(cursor).version.startswith("sha256:")


def test_a_changed_ballots_export_requests_one_rebuild(inputs):
    _, cursor, _ = tick(ballots_sensor, inputs, None)
    requests, same, skip = tick(ballots_sensor, inputs, cursor)
    assert requests == [] and "unchanged" in skip
    Path(inputs.ballots).write_text("election_id,division_id,geometry,source_table\nx,y,z,None\n")
    (request,) = tick(ballots_sensor, inputs, same)[0]
    assert request.run_key == "ballots-change-1"
    assert request.tags["databaker/ballots_version"].startswith("sha256:")
    assert ALL_LETTERS.items() <= request.tags.items()


def test_touching_the_ballots_export_without_changing_it_is_not_a_change(inputs):
    _, cursor, _ = tick(ballots_sensor, inputs, None)
    content = Path(inputs.ballots).read_bytes()
    Path(inputs.ballots).write_bytes(content)
    requests, _, _ = tick(ballots_sensor, inputs, cursor)
    assert requests == []


def test_changing_back_is_a_change_too(inputs):
    _, cursor, _ = tick(ballots_sensor, inputs, None)
    original = Path(inputs.ballots).read_bytes()
    Path(inputs.ballots).write_bytes(original + b"a,b,c,None\n")
    _, cursor, _ = tick(ballots_sensor, inputs, cursor)
    Path(inputs.ballots).write_bytes(original)
    (request,) = tick(ballots_sensor, inputs, cursor)[0]
    assert request.run_key == "ballots-change-2"


def test_the_nightly_rebuild_is_at_one_in_the_morning_london_time():
    assert nightly_current_elections.cron_schedule == "0 1 * * *"
    assert nightly_current_elections.execution_timezone == "Europe/London"
    assert nightly_current_elections.default_status == dg.DefaultScheduleStatus.RUNNING
    night = datetime(2027, 5, 6, 1, 0, tzinfo=ZoneInfo("Europe/London"))
    context = dg.build_schedule_context(scheduled_execution_time=night)
    (request,) = nightly_current_elections.evaluate_tick(context).run_requests
    assert request.run_key == "nightly-2027-05-06"
    assert ALL_LETTERS.items() <= request.tags.items()


def test_sensors_run_by_default():
    for sensor in (drops_sensor, ballots_sensor):
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_the_bundled_sample_is_a_complete_dated_drop(tmp_path):
    from databaker.sources import SAMPLE_BALLOTS, SAMPLE_DROPS

    inputs = InputLocations(
        addressbase_drops=str(SAMPLE_DROPS),
        ballots=str(SAMPLE_BALLOTS),
        boundary_reviews=str(SAMPLE_BOUNDARY_REVIEWS),
    )
    drop = inputs.latest_complete_drop()
    assert (drop.name, drop.csv_files, drop.has_marker) == ("2026-01-05", 2, True)
    shutil.copytree(SAMPLE_DROPS, tmp_path / "drops")
    (tmp_path / "drops" / "2026-01-05" / "_SUCCESS").unlink()
    empty = InputLocations(
        addressbase_drops=str(tmp_path / "drops"),
        ballots=str(SAMPLE_BALLOTS),
        boundary_reviews=str(SAMPLE_BOUNDARY_REVIEWS),
    )
    with pytest.raises(dg.Failure, match="no complete AddressBase drop"):
        empty.latest_complete_drop()


def test_drops_and_the_ballots_export_on_s3_are_watched_the_same_way(s3_env):
    bucket = s3_env.new_bucket()
    client = s3_env.client()
    line = address_line("1", "1 Briggate, Leeds", "LS1 6AA", -1.54, 53.8).encode() + b"\n"
    client.put_object(
        Bucket=bucket, Key="addressbase/2026-02-02/addressbase_cleaned/p.csv", Body=line
    )
    client.put_object(Bucket=bucket, Key="ballots/current.csv", Body=b"election_id\n")
    inputs = InputLocations(
        addressbase_drops=f"s3://{bucket}/addressbase",
        ballots=f"s3://{bucket}/ballots/current.csv",
        boundary_reviews=f"s3://{bucket}/boundary_reviews",
    )
    requests, cursor, _ = tick(drops_sensor, inputs, None)
    assert requests == []  # no marker yet, and the listing has been seen once
    client.put_object(Bucket=bucket, Key="addressbase/2026-02-02/_SUCCESS", Body=b"")
    (request,) = tick(drops_sensor, inputs, cursor)[0]
    source = request.run_config["ops"]["addressbase_cleaned_raw"]["config"]["source"]
    assert source == f"s3://{bucket}/addressbase/2026-02-02/"

    _, cursor, _ = tick(ballots_sensor, inputs, None)
    assert BallotsCursor.parse(cursor).version.startswith("etag:")
    client.put_object(Bucket=bucket, Key="ballots/current.csv", Body=b"election_id\n")
    assert tick(ballots_sensor, inputs, cursor)[0] == []  # rewritten, same content
    client.put_object(Bucket=bucket, Key="ballots/current.csv", Body=b"election_id\nx\n")
    (request,) = tick(ballots_sensor, inputs, cursor)[0]
    assert request.run_key == "ballots-change-1"


def test_the_boundary_reviews_export_sensor_rebuilds_that_layer_on_a_change(inputs, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(SAMPLE_BOUNDARY_REVIEWS, export)
    watched = InputLocations(
        addressbase_drops=inputs.addressbase_drops,
        ballots=inputs.ballots,
        boundary_reviews=str(export),
    )
    reviews = layer_definitions(CURRENT_BOUNDARY_REVIEWS)
    (sensor,) = reviews.sensors(60)
    assert sensor.name == "boundary_reviews_export_changes"
    assert sensor.job_name == "current_boundary_reviews_from_export"
    assert reviews.schedule.name == "nightly_current_boundary_reviews"

    requests, cursor, _ = tick(sensor, watched, None)
    assert requests == []
    part = next(export.rglob("part-00000.csv"))
    part.write_bytes(part.read_bytes())  # rewritten, same content
    assert tick(sensor, watched, cursor)[0] == []
    extra = part.with_name("part-00009.csv")
    extra.write_bytes(part.read_bytes().splitlines(keepends=True)[0])  # a part file added
    (request,) = tick(sensor, watched, cursor)[0]
    assert request.run_key == "boundary_reviews-change-1"
    assert request.tags["databaker/boundary_reviews_version"].startswith("sha256:")


def test_a_new_drop_requests_every_layer_s_whole_job(drops, inputs):
    jobs = [layer_definitions(layer).full_job for layer in LAYERS]
    sensor = build_addressbase_drops_sensor(60, jobs)
    deliver(drops, "2026-02-02")
    requests, _, _ = tick(sensor, inputs, None)
    assert [(r.job_name, r.run_key) for r in requests] == [
        ("current_elections_layer", "addressbase-drop-2026-02-02-current_elections_layer"),
        (
            "current_boundary_reviews_layer",
            "addressbase-drop-2026-02-02-current_boundary_reviews_layer",
        ),
        (
            "current_organisations_layer",
            "addressbase-drop-2026-02-02-current_organisations_layer",
        ),
    ]
    assert {r.tags["databaker/addressbase_drop"] for r in requests} == {"2026-02-02"}
