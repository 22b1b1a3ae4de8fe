"""The code location: what it defines, and that Dagster's own validation accepts it."""

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from databaker.definitions import ConfigurationError, Settings, build_defs, build_resources
from databaker.resources import (
    AthenaQueryEngine,
    DuckDBQueryEngine,
    LocalLayerStore,
    S3LayerStore,
)

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {
    "DATABAKER_DATA_ROOT": "s3://layers-bucket/production",
    "DATABAKER_ENGINE": "athena",
    "DATABAKER_ATHENA_DATABASE": "databaker",
    "DATABAKER_ATHENA_WORKGROUP": "bakes",
    "DATABAKER_ATHENA_OUTPUT": "s3://athena-results/databaker/",
}
LAYER_CONTRACT = {
    "addressbase_cleaned_raw",
    "addressbase_partitioned",
    "current_ballots",
    "current_ballots_joined_to_address_base",
    "current_elections_version",
    "current_elections_parquet",
    "boundary_review_divisions",
    "current_boundary_reviews_joined_to_address_base",
    "current_boundary_reviews_version",
    "current_boundary_reviews_parquet",
    "organisation_areas",
    "current_organisations_joined_to_address_base",
    "current_organisations_version",
    "current_organisations_parquet",
}


def test_the_layer_contract_assets_and_their_checks_are_defined(tmp_path):
    defs = build_defs(Settings(data_root=str(tmp_path)))
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == LAYER_CONTRACT
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == {
        ("addressbase_cleaned_raw", "uprns_are_unique"),
        ("current_ballots_joined_to_address_base", "single_addressbase_source"),
        ("current_ballots_joined_to_address_base", "uprns_match_addressbase"),
        ("current_elections_version", "addresses_kept"),
        ("current_elections_version", "ballots_keep_their_addresses"),
        ("current_elections_version", "coverage_steady"),
        ("current_elections_version", "upcoming_ballots_kept"),
        ("current_boundary_reviews_joined_to_address_base", "single_addressbase_source"),
        ("current_boundary_reviews_joined_to_address_base", "uprns_match_addressbase"),
        ("current_boundary_reviews_version", "addresses_kept"),
        ("current_boundary_reviews_version", "reviews_keep_their_addresses"),
        ("current_boundary_reviews_version", "coverage_steady"),
        ("current_boundary_reviews_version", "reviews_reach_addresses"),
        ("current_organisations_joined_to_address_base", "single_addressbase_source"),
        ("current_organisations_joined_to_address_base", "uprns_match_addressbase"),
        ("current_organisations_version", "addresses_kept"),
        ("current_organisations_version", "organisations_keep_their_addresses"),
        ("current_organisations_version", "coverage_steady"),
        ("current_organisations_version", "organisations_reach_addresses"),
        ("current_organisations_version", "councils_and_constituencies_kept"),
    }
    for spec in defs.resolve_all_asset_specs():
        assert spec.description and spec.group_name and spec.kinds, spec.key


def test_letter_tables_are_partitioned_a_to_z_and_backfill_in_one_run(tmp_path):
    graph = build_defs(Settings(data_root=str(tmp_path))).resolve_asset_graph()
    for name in (
        "addressbase_partitioned",
        "current_ballots_joined_to_address_base",
        "current_boundary_reviews_joined_to_address_base",
        "current_organisations_joined_to_address_base",
    ):
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def.get_partition_keys() == [chr(c) for c in range(65, 91)]
        assert node.backfill_policy == dg.BackfillPolicy.single_run()


def test_the_default_resources_are_the_embedded_engine_and_local_files(tmp_path):
    resources = build_defs(Settings(data_root=str(tmp_path / "root"))).resources
    assert isinstance(resources["engine"], DuckDBQueryEngine)
    assert isinstance(resources["reader"], DuckDBQueryEngine)
    assert resources["store"] == LocalLayerStore(root=str(tmp_path / "root"))


def test_the_environment_switches_to_s3_and_athena():
    settings = Settings.from_environment(PRODUCTION)
    resources = build_resources(settings)
    assert resources["store"] == S3LayerStore(root="s3://layers-bucket/production")
    assert resources["engine"] == AthenaQueryEngine(
        database="databaker", workgroup="bakes", output_location="s3://athena-results/databaker/"
    )
    assert isinstance(resources["reader"], DuckDBQueryEngine)


def test_an_s3_data_root_alone_keeps_the_embedded_engine():
    settings = Settings.from_environment({"DATABAKER_DATA_ROOT": "s3://layers-bucket/dev"})
    resources = build_resources(settings)
    assert resources["store"] == S3LayerStore(root="s3://layers-bucket/dev")
    assert isinstance(resources["engine"], DuckDBQueryEngine)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DATABAKER_ATHENA_DATABASE": ""}, "DATABAKER_ATHENA_DATABASE is required"),
        ({"DATABAKER_DATA_ROOT": "/srv/layers"}, "DATABAKER_DATA_ROOT must be an s3:// URL"),
        ({"DATABAKER_ATHENA_OUTPUT": "/tmp/out"}, "DATABAKER_ATHENA_OUTPUT must be an s3:// URL"),
        ({"DATABAKER_ENGINE": "spark"}, "DATABAKER_ENGINE is 'spark'; use one of duckdb, athena"),
        ({"DATABAKER_DATA_ROOT": "gs://bucket/x"}, "use a local path or s3:// URL"),
    ],
)
def test_an_incomplete_production_configuration_refuses_to_start(change, message):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        build_resources(Settings.from_environment({**PRODUCTION, **change}))


def validate_workspace(tmp_path: Path, **environment: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), **environment}
    dagster = Path(sys.executable).with_name("dagster")
    return subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("production", [False, True], ids=["local", "production"])
def test_dagster_validates_the_workspace(tmp_path, production):
    environment = PRODUCTION if production else {"DATABAKER_DATA_ROOT": str(tmp_path)}
    result = validate_workspace(tmp_path, **environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_the_code_location_names_the_missing_production_setting(tmp_path):
    environment = {**PRODUCTION, "DATABAKER_ATHENA_DATABASE": ""}
    result = validate_workspace(tmp_path, **environment)
    assert result.returncode != 0
    assert "DATABAKER_ATHENA_DATABASE is required" in result.stdout + result.stderr


def test_a_sensor_interval_that_is_not_a_number_is_refused():
    with pytest.raises(ConfigurationError, match="whole number of seconds, not 'often'"):
        Settings.from_environment({"DATABAKER_SENSOR_INTERVAL_SECONDS": "often"})


def test_every_run_executes_in_one_process_so_it_holds_the_lease_throughout(tmp_path):
    """The store, and with it the data root's lease, is set up once per run only when the run's
    steps share one process; with a process per step, two runs' steps could interleave."""
    defs = build_defs(Settings(data_root=str(tmp_path)))
    names = [job.name for job in defs.jobs] + ["__ASSET_JOB"]
    for name in names:
        assert defs.resolve_job_def(name).executor_def is dg.in_process_executor, name


def test_lease_settings_come_from_the_environment_and_are_checked():
    settings = Settings.from_environment(
        {"DATABAKER_LEASE_WAIT_SECONDS": "0", "DATABAKER_S3_LEASE_SECONDS": "30"}
    )
    assert (settings.lease_wait_seconds, settings.s3_lease_seconds) == (0, 30)
    store = build_resources(replace(settings, data_root="s3://layers/x"))["store"]
    assert (store.lease_wait_seconds, store.lease_seconds) == (0, 30)
    for name, value in (
        ("DATABAKER_LEASE_WAIT_SECONDS", "-1"),
        ("DATABAKER_S3_LEASE_SECONDS", "0"),
    ):
        with pytest.raises(ConfigurationError, match=f"{name} must be a number of seconds"):
            Settings.from_environment({name: value})


HUGE_PAGES_PROBE = """
import ctypes, subprocess, sys
from databaker.definitions import Settings, build_defs
from databaker.huge_pages import PR_SET_THP_DISABLE, transparent_huge_pages_forbidden

# Start as a process that nobody has forbidden huge pages (this test's own may have been).
ctypes.CDLL(None).prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0)
before = transparent_huge_pages_forbidden()
build_defs(Settings(data_root=sys.argv[1], transparent_huge_pages=sys.argv[2] == "keep"))
child = subprocess.run(["cat", "/proc/self/status"], capture_output=True, text=True).stdout
child_enabled = next(line for line in child.splitlines() if line.startswith("THP_enabled"))
print(before, transparent_huge_pages_forbidden(), child_enabled.split()[1])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="huge pages are Linux's")
@pytest.mark.parametrize(
    ("setting", "expected"), [("forbid", "False True 0"), ("keep", "False False 1")]
)
def test_a_process_that_loads_the_definitions_bakes_without_transparent_huge_pages(
    tmp_path, setting, expected
):
    """Every run's process loads the definitions (the command line, the code server and the
    run worker it starts): from then on it, and every process it starts, has no transparent
    huge pages, unless the settings keep them."""
    probe = subprocess.run(
        [sys.executable, "-c", HUGE_PAGES_PROBE, str(tmp_path), setting],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert probe.stdout.split() == expected.split()


def test_transparent_huge_pages_are_kept_only_when_the_environment_says_so():
    assert not Settings.from_environment({}).transparent_huge_pages
    for text, kept in (("1", True), ("true", True), ("0", False), ("off", False)):
        environ = {"DATABAKER_TRANSPARENT_HUGE_PAGES": text}
        assert Settings.from_environment(environ).transparent_huge_pages is kept, text
    with pytest.raises(ConfigurationError, match="DATABAKER_TRANSPARENT_HUGE_PAGES must be 1"):
        Settings.from_environment({"DATABAKER_TRANSPARENT_HUGE_PAGES": "sometimes"})
