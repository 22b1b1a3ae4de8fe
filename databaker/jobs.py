"""Jobs: the selections of assets that are baked together."""

import dagster as dg

from databaker.assets import all_assets

current_elections_layer = dg.define_asset_job(
    "current_elections_layer",
    selection=dg.AssetSelection.assets(*all_assets),
    description="Bake the current-elections layer from the AddressBase drop and ballots export.",
)
