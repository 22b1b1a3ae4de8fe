"""Guard rails: a truncated drop, a broken ballots export and a drift in coverage are refused,
the published layer is left as it was, and each rail's override publishes anyway."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from databaker.assets.current_elections import LAYER
from databaker.assets.current_elections.guard_rails import RAILS, GuardRails
from databaker.cli import main
from databaker.layers.diff import IdChange, LayerDiff
from databaker.layers.guard_rails import RailInputs, rail_results
from databaker.layers.versions import kept_versions, published_manifest
from databaker.resources import LocalLayerStore
from databaker_tests.conftest import (
    address_line,
    asset_runner,
    ballot_line,
    check_evaluations,
    failure_messages,
    materialization,
    write_lines,
)

LOCAL = "local.leeds.a.2027-05-06"
PCC = "pcc.west-yorkshire.2027-05-06"
PAST = "local.leeds.b.2026-05-07"
"""A ballot whose polling day has passed, over the same area as LOCAL."""
LOCAL_AREA = "POLYGON((-2 53,-1.5 53,-1.5 54,-2 54,-2 53))"
PCC_SOUTH = "POLYGON((-1.5 53,-1 53,-1 53.5,-1.5 53.5,-1.5 53))"
PCC_NORTH = "POLYGON((-1.5 53.5,-1 53.5,-1 54,-1.5 54,-1.5 53.5))"
HEADER = "election_id,division_id,geometry,source_table"


def place(n: int) -> tuple[float, float]:
    """Addresses 0-99 in the local ballot's area, 100-149 in the PCC's south piece, 150-199
    in its north piece; an address ``n + 1000`` lies outside every area."""
    if n >= 1000:
        return -2.5, 53.5
    if n < 100:
        return -1.75, 53.1 + n / 200
    return -1.25, (53.2 if n < 150 else 53.7) + (n % 50) / 200


def drop(folder: Path, numbers: list[int]) -> Path:
    lines = [
        address_line(str(10_000 + n % 1000), f"{n % 1000} Road", f"LS{n % 9 + 1} 1AA", *place(n))
        for n in numbers
    ]
    return write_lines(folder / "part.csv", lines).parent


def export(path: Path, *pieces: tuple[str, str, str]) -> Path:
    lines = [ballot_line(ballot, division, wkt, "Division") for ballot, division, wkt in pieces]
    return write_lines(path, [HEADER, *lines])


LOCAL_PIECE = (LOCAL, "E05000001", LOCAL_AREA)
SOUTH_PIECE = (PCC, "E23000001", PCC_SOUTH)
NORTH_PIECE = (PCC, "E23000001", PCC_NORTH)
PAST_PIECE = (PAST, "E05000002", LOCAL_AREA)
WHOLE = [LOCAL_PIECE, SOUTH_PIECE, NORTH_PIECE, PAST_PIECE]


def layer_files(data_root: Path) -> dict[str, bytes]:
    layer = data_root / "current_elections_parquet"
    return {p.name: p.read_bytes() for p in sorted(layer.iterdir())}


@pytest.fixture(scope="module")
def baked(tmp_path_factory) -> tuple[dict[str, Path], Path]:
    """All 200 addresses and the whole export, and a data root with them baked and published
    (baked once, copied for each test)."""
    root = tmp_path_factory.mktemp("guard_rails")
    inputs = {
        "addressbase": drop(root / "first", list(range(200))),
        "ballots": export(root / "whole.csv", *WHOLE),
    }
    assert asset_runner(root / "data")(**inputs).success
    return inputs, root / "data"


@pytest.fixture
def inputs(baked) -> dict[str, Path]:
    return baked[0]


@pytest.fixture
def published(baked, data_root) -> dict[str, bytes]:
    """This test's data root, holding the published layer of ``inputs``."""
    shutil.copytree(baked[1], data_root)
    return layer_files(data_root)


def verdicts(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, str]]:
    rails = (
        "addresses_kept",
        "ballots_keep_their_addresses",
        "coverage_steady",
        "upcoming_ballots_kept",
    )
    found = check_evaluations(result)
    return {name: (found[name].passed, found[name].severity.value) for name in rails}


def test_a_truncated_drop_is_refused_and_published_when_allowed(
    tmp_path, data_root, run_assets, inputs, published
):
    truncated = drop(tmp_path / "truncated", list(range(195)))  # the last 2.5% cut off
    refused = run_assets(ballots=inputs["ballots"], addressbase=truncated)
    assert not refused.success
    assert verdicts(refused)["addresses_kept"] == (False, "ERROR")
    assert (
        "addresses fell by 2.50% (200 to 195)"
        in check_evaluations(refused)["addresses_kept"].description
    )
    assert layer_files(data_root) == published
    allowed = run_assets(
        ballots=inputs["ballots"],
        addressbase=truncated,
        guard_rails={"allow_address_drop": True},
    )
    assert allowed.success
    assert verdicts(allowed)["addresses_kept"] == (False, "WARN")
    assert materialization(allowed, "current_elections_parquet")["addresses"] == 195


def test_a_threshold_is_configurable(tmp_path, run_assets, inputs, published):
    truncated = drop(tmp_path / "truncated", list(range(195)))
    rails = {"max_address_drop": 0.03}
    assert run_assets(ballots=inputs["ballots"], addressbase=truncated, guard_rails=rails).success


def test_a_small_drop_in_addresses_passes(tmp_path, run_assets, inputs, published):
    assert run_assets(
        ballots=inputs["ballots"],
        addressbase=drop(tmp_path / "smaller", list(range(197))),
    ).success


def test_an_export_missing_a_piece_of_a_ballot_is_refused(
    tmp_path, data_root, run_assets, inputs, published
):
    broken = export(tmp_path / "broken.csv", LOCAL_PIECE, SOUTH_PIECE, PAST_PIECE)
    refused = run_assets(addressbase=inputs["addressbase"], ballots=broken)
    assert not refused.success
    assert verdicts(refused)["ballots_keep_their_addresses"] == (False, "ERROR")
    description = check_evaluations(refused)["ballots_keep_their_addresses"].description
    assert f"{PCC} lost 50 of 100 (50.0%)" in description
    assert layer_files(data_root) == published
    diff = materialization(refused, "current_elections_version")
    assert diff["addresses_changed"] == 50
    assert f"| {PCC} | 100 | 50 | 0 | 50 |" in diff["diff"]
    assert run_assets(
        addressbase=inputs["addressbase"], ballots=broken, guard_rails={"allow_ballot_loss": True}
    ).success


def test_a_ballot_named_only_on_unusable_lines_is_still_in_the_export(
    tmp_path, run_assets, inputs, published
):
    """Its area gone (no geography), the ballot must not pass for one that was withdrawn."""
    pieces = (LOCAL_PIECE, PAST_PIECE)
    lines = [ballot_line(*piece, "Division") for piece in pieces] + [f"{PCC},E23000001,,None"]
    refused = run_assets(
        addressbase=inputs["addressbase"],
        ballots=write_lines(tmp_path / "no_area.csv", [HEADER, *lines]),
    )
    assert not refused.success
    assert verdicts(refused)["ballots_keep_their_addresses"] == (False, "ERROR")


def test_a_ballot_past_its_polling_day_leaves_with_its_addresses(
    tmp_path, run_assets, inputs, published
):
    after_polling_day = export(tmp_path / "after.csv", LOCAL_PIECE, SOUTH_PIECE, NORTH_PIECE)
    result = run_assets(addressbase=inputs["addressbase"], ballots=after_polling_day)
    assert result.success
    diff = materialization(result, "current_elections_version")
    assert diff["ballots_disappearing"] == 1 and diff["addresses_changed"] == 100


def test_an_export_missing_an_upcoming_ballot_is_refused(tmp_path, run_assets, inputs, published):
    """A truncated export: the PCC's lines are gone, and its polling day is still ahead."""
    truncated = export(tmp_path / "truncated.csv", LOCAL_PIECE, PAST_PIECE)
    refused = run_assets(addressbase=inputs["addressbase"], ballots=truncated)
    assert not refused.success
    assert verdicts(refused)["upcoming_ballots_kept"] == (False, "ERROR")
    assert verdicts(refused)["ballots_keep_their_addresses"] == (True, "ERROR")
    description = check_evaluations(refused)["upcoming_ballots_kept"].description
    assert "1 ballot(s) whose polling day is still ahead left the export" in description
    rails = {"allow_upcoming_ballots_gone": True}
    assert run_assets(
        addressbase=inputs["addressbase"], ballots=truncated, guard_rails=rails
    ).success


def test_an_empty_export_replaces_a_layer_whose_ballots_are_all_past_polling_day(
    tmp_path, data_root, run_assets, inputs
):
    """After polling day the export names no ballot at all: the layer empties, every rail
    passing (the export changed, and no ballot whose polling day is ahead left it)."""
    assert run_assets(
        addressbase=inputs["addressbase"], ballots=export(tmp_path / "past.csv", PAST_PIECE)
    ).success
    result = run_assets(addressbase=inputs["addressbase"], ballots=export(tmp_path / "empty.csv"))
    assert result.success, failure_messages(result)
    assert {passed for passed, _ in verdicts(result).values()} == {True}
    diff = materialization(result, "current_elections_version")
    assert diff["ballots_disappearing"] == 1 and diff["addresses_changed"] == 100
    files = layer_files(data_root)
    manifest = published_manifest(LocalLayerStore(root=str(data_root)), LAYER)
    assert (manifest.rows, manifest.rows_with_ids, manifest.empty_outcodes) == (200, 0, 9)
    assert len(files) == 10  # nine outcodes and the manifest


def test_an_empty_export_cannot_replace_a_layer_with_upcoming_ballots(
    tmp_path, data_root, run_assets, inputs, published
):
    refused = run_assets(addressbase=inputs["addressbase"], ballots=export(tmp_path / "empty.csv"))
    assert not refused.success
    assert verdicts(refused) == {
        "addresses_kept": (True, "ERROR"),
        "ballots_keep_their_addresses": (True, "ERROR"),
        "coverage_steady": (True, "ERROR"),
        "upcoming_ballots_kept": (False, "ERROR"),
    }
    description = check_evaluations(refused)["upcoming_ballots_kept"].description
    assert "2 ballot(s) whose polling day is still ahead left the export" in description
    assert f"{LOCAL}, {PCC}" in description
    assert layer_files(data_root) == published


def test_coverage_drifting_with_unchanged_ballots_is_refused(
    tmp_path, data_root, run_assets, inputs, published
):
    """Four addresses of each ballot's area move outside every area: each ballot loses 4%,
    within its rail, but the share of addresses with a ballot falls by 4 points."""
    moved = [n + 1000 if n % 50 in (0, 1) else n for n in range(200)]
    refused = run_assets(
        ballots=inputs["ballots"],
        addressbase=drop(tmp_path / "moved", moved),
    )
    assert not refused.success
    assert verdicts(refused) == {
        "addresses_kept": (True, "ERROR"),
        "ballots_keep_their_addresses": (True, "ERROR"),
        "coverage_steady": (False, "ERROR"),
        "upcoming_ballots_kept": (True, "ERROR"),
    }
    assert layer_files(data_root) == published


def diff(**changes) -> LayerDiff:
    fields = dict(
        bake_id="2",
        baseline="1",
        addresses_before=1000,
        addresses_after=1000,
        with_ids_before=800,
        with_ids_after=800,
    )
    return LayerDiff(**{**fields, **changes})


def results(
    found: LayerDiff, in_export=(), changed=False, **config
) -> dict[str, dg.AssetCheckResult]:
    checks = rail_results(
        RAILS,
        RailInputs(
            diff=found,
            ids_named=set(in_export),
            input_changed=changed,
            today=date(2026, 11, 27),
        ),
        GuardRails(**config),
        asset="current_elections_version",
    )
    return {check.check_name: check for check in checks}


def test_each_rail_fails_just_beyond_its_threshold():
    assert results(diff(addresses_after=980))["addresses_kept"].passed
    assert not results(diff(addresses_after=979))["addresses_kept"].passed
    ids = {"a": IdChange(before=100, after=95, gained=0, lost=5), "b": IdChange(100, 100, 6, 6)}
    assert not results(diff(ids=ids), in_export={"a", "b"})["ballots_keep_their_addresses"].passed
    assert results(diff(ids=ids), in_export={"a"})["ballots_keep_their_addresses"].passed
    assert results(diff(with_ids_after=810))["coverage_steady"].passed
    assert not results(diff(with_ids_after=811))["coverage_steady"].passed
    assert results(diff(with_ids_after=900), changed=True)["coverage_steady"].passed


def test_only_ballots_leaving_the_export_before_their_polling_day_count():
    gone = {
        name: IdChange(before=10, after=0, gained=0, lost=10)
        for name in ("local.a.2026-11-26", "local.b.2026-11-27", "local.c.2027-05-06", "x.y")
    }
    in_export = {"local.c.2027-05-06"}
    found = results(diff(ids=gone), in_export)["upcoming_ballots_kept"]
    assert not found.passed
    assert found.metadata["gone"].value.splitlines()[2:] == [
        "| local.b.2026-11-27 | 2026-11-27 |",
        "| x.y | unknown, taken to be ahead |",
    ]
    allowing_two = results(diff(ids=gone), in_export, max_upcoming_ballots_gone=2)
    assert allowing_two["upcoming_ballots_kept"].passed


def test_a_first_bake_passes_every_rail():
    found = results(diff(baseline=None, addresses_before=0, with_ids_before=0))
    assert all(check.passed for check in found.values())


def test_a_refused_bake_is_not_published_by_materialising_the_layer_alone(
    tmp_path, data_root, run_assets, inputs, instance
):
    assert run_assets(**inputs, instance=instance).success
    published = layer_files(data_root)
    broken = export(tmp_path / "broken.csv", LOCAL_PIECE, SOUTH_PIECE, PAST_PIECE)
    assert not run_assets(
        addressbase=inputs["addressbase"], ballots=broken, instance=instance
    ).success
    alone = run_assets(["current_elections_parquet"], instance=instance)
    assert not alone.success
    assert "current_elections_version / ballots_keep_their_addresses failed" in failure_messages(
        alone
    )
    assert layer_files(data_root) == published


def test_a_bake_compared_with_another_layer_than_the_published_one_is_not_published(
    data_root, run_assets, inputs, instance
):
    """Bakes B and C are both compared with A; once B is published, C's diff says nothing
    about what publishing C would change."""
    assert run_assets(**inputs, instance=instance).success
    version_only = ["current_elections_version"]
    bakes = []
    for _ in range(2):
        result = run_assets(version_only, instance=instance)
        bakes.append(materialization(result, "current_elections_version")["bake_id"])
    assert main(["rollback", "--to", bakes[0], "--data-root", str(data_root)]) == 0
    alone = run_assets(["current_elections_parquet"], instance=instance)
    assert not alone.success
    assert f"but {bakes[0]} is published now: bake again" in failure_messages(alone)


def test_refused_bakes_are_pruned_too(tmp_path, data_root, run_assets, inputs, published):
    """Night after night of refused bakes must not fill the disk: beyond ``kept_versions``
    they are pruned like any other, never the published one."""
    store = LocalLayerStore(root=str(data_root))
    (first,) = [m.bake_id for m in kept_versions(store, LAYER)]
    truncated = drop(tmp_path / "truncated", list(range(150)))
    refused = []
    for _ in range(2):
        result = run_assets(
            ballots=inputs["ballots"], addressbase=truncated, guard_rails={"kept_versions": 1}
        )
        assert not result.success
        refused.append(materialization(result, "current_elections_version")["bake_id"])
    assert [m.bake_id for m in kept_versions(store, LAYER)] == [first, refused[-1]]
    assert published_manifest(store, LAYER).bake_id == first


def test_a_refused_bake_is_listed_as_refused_and_rolled_out_only_by_force(
    tmp_path, data_root, run_assets, inputs, published, capsys
):
    truncated = drop(tmp_path / "truncated", list(range(150)))
    refused = run_assets(ballots=inputs["ballots"], addressbase=truncated)
    bake_id = materialization(refused, "current_elections_version")["bake_id"]
    root = ["--data-root", str(data_root)]
    assert main(["versions", *root]) == 0
    listed = capsys.readouterr().out
    assert f"{bake_id}  " in listed and "REFUSED by addresses_kept" in listed
    assert main(["rollback", "--to", bake_id, *root]) == 1
    assert "refused by addresses_kept" in capsys.readouterr().err
    assert layer_files(data_root) == published
    assert main(["rollback", "--to", bake_id, "--force", *root]) == 0
    store = LocalLayerStore(root=str(data_root))
    assert published_manifest(store, LAYER).bake_id == bake_id
