"""The code location: what it defines, and that Dagster's own validation accepts it."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from databaker.definitions import build_defs
from databaker.resources import DuckDBQueryEngine, LocalLayerStore

ROOT = Path(__file__).resolve().parents[1]
LAYER_CONTRACT = {
    "addressbase_cleaned_raw",
    "addressbase_partitioned",
    "current_ballots",
    "current_ballots_joined_to_address_base",
    "current_elections_parquet",
}


def test_the_layer_contract_assets_and_their_checks_are_defined(tmp_path):
    defs = build_defs(str(tmp_path))
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == LAYER_CONTRACT
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == {
        ("addressbase_cleaned_raw", "uprns_are_unique"),
        ("current_ballots_joined_to_address_base", "single_addressbase_source"),
        ("current_ballots_joined_to_address_base", "uprns_match_addressbase"),
    }
    for spec in defs.resolve_all_asset_specs():
        assert spec.description and spec.group_name and spec.kinds, spec.key


def test_letter_tables_are_partitioned_a_to_z_and_backfill_in_one_run(tmp_path):
    graph = build_defs(str(tmp_path)).resolve_asset_graph()
    for name in ("addressbase_partitioned", "current_ballots_joined_to_address_base"):
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def.get_partition_keys() == [chr(c) for c in range(65, 91)]
        assert node.backfill_policy == dg.BackfillPolicy.single_run()


def test_the_default_resources_are_the_embedded_engine_and_local_files(tmp_path):
    resources = build_defs(str(tmp_path / "root")).resources
    assert isinstance(resources["engine"], DuckDBQueryEngine)
    assert resources["store"] == LocalLayerStore(root=str(tmp_path / "root"))


def test_dagster_validates_the_workspace(tmp_path):
    env = {**os.environ, "DATABAKER_DATA_ROOT": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr
