"""The current-elections layer: which ballots are here? Every address with the sorted IDs of
the ballots whose area contains it, from the ballots export."""

from collections.abc import Mapping
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from databaker.assets.current_ballots import CURRENT_BALLOTS, CURRENT_BALLOTS_TABLE, current_ballots
from databaker.assets.current_ballots.assets import WITHOUT_AREA, current_ballots_asset
from databaker.assets.current_ballots.from_every_election import BALLOTS_FROM_EVERY_ELECTION
from databaker.assets.current_elections.guard_rails import RAILS, GuardRails
from databaker.assets.current_elections.join import JOINED_TABLE, join_current_ballots
from databaker.layers import Layer, LayerInput
from databaker.layers.areas import Areas, read_areas
from databaker.resources import LayerStore
from databaker.resources.input_locations import InputLocations


def ballots_named(store: LayerStore, metadata: Mapping[str, Any]) -> set[str]:
    """Every ballot the export names: those with an area in the ballots table, and those whose
    every row was skipped or rejected (a broken export must not pass for a withdrawn ballot).
    A release before this one kept that list as ``ballots_without_area``."""
    with store.open_input(CURRENT_BALLOTS) as source:
        ids = pq.read_table(source, columns=["election_id"])["election_id"]
    without_area = metadata.get(WITHOUT_AREA, metadata.get("ballots_without_area", []))
    return set(pc.unique(ids).to_pylist()) | set(without_area)


def ballot_areas(store: LayerStore) -> Areas:
    """Every piece of every ballot's area, by election ID."""
    return read_areas(store, CURRENT_BALLOTS, "election_id")


def ballots_summary(metadata: Mapping[str, Any]) -> str:
    return (
        f"ballots:            {metadata['ballots']:,} in {metadata['rows']:,} pieces "
        f"({metadata['repaired_geometries']} repaired, "
        f"{metadata['skipped_without_geography']} without geography skipped)"
    )


BALLOTS_EXPORT = LayerInput(
    asset=current_ballots,
    table=CURRENT_BALLOTS_TABLE,
    label="ballots export",
    option="ballots",
    version_key="ballots_version",
    version_of=InputLocations.ballots_version,
    ids_named=ballots_named,
    sensor_name="ballots_export_changes",
    rebuild_job_name="current_elections_from_ballots",
    summary=ballots_summary,
    areas=ballot_areas,
    ids_from=("election_id", "geometry"),
    contained_by="geometry",
    export=BALLOTS_FROM_EVERY_ELECTION,
    asset_after=current_ballots_asset,
)

CURRENT_ELECTIONS = Layer(
    name="current_elections",
    description="the sorted, distinct IDs of the ballots whose area contains the address.",
    ids_column="ballot_ids",
    id_label="ballot",
    joined=JOINED_TABLE,
    join=join_current_ballots,
    config=GuardRails,
    rails=RAILS,
    input=BALLOTS_EXPORT,
    nothing_here="no elections here",
    ids_column_description="The sorted, distinct IDs of every ballot whose area contains the "
    "address (`ST_Contains`: a point on a boundary is in neither area); `[]` where none does, "
    "never null.",
)
