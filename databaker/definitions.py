"""The one ``Definitions`` object: assets, checks, jobs and the resources they run with."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from databaker.assets import all_asset_checks, all_assets
from databaker.jobs import current_elections_layer
from databaker.resources import DuckDBQueryEngine, LocalLayerStore

DEFAULT_DATA_ROOT = "data"


def local_resources(data_root: str) -> dict[str, dg.ConfigurableResource]:
    """The embedded default: DuckDB with its spatial extension and files under ``data_root``."""
    return {
        "engine": DuckDBQueryEngine(),
        "store": LocalLayerStore(root=str(Path(data_root).expanduser().resolve())),
    }


def build_defs(data_root: str = DEFAULT_DATA_ROOT) -> dg.Definitions:
    return dg.Definitions(
        assets=all_assets,
        asset_checks=all_asset_checks,
        jobs=[current_elections_layer],
        resources=local_resources(data_root),
    )


defs = build_defs(os.environ.get("DATABAKER_DATA_ROOT", DEFAULT_DATA_ROOT))
