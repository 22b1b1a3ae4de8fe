"""Jobs: the selections of assets that are baked together.

Every job that writes a layer carries the ``databaker/layer`` tag; the run queue in
``dagster_home/dagster.yaml`` runs one run per value of that tag at a time, so two bakes of a
layer never overlap and a trigger that arrives during a bake waits in the queue.
"""

import dagster as dg

from databaker.assets import all_assets
from databaker.assets.current_ballots import current_ballots

LAYER_TAG = "databaker/layer"
CURRENT_ELECTIONS = {LAYER_TAG: "current_elections"}

current_elections_layer = dg.define_asset_job(
    "current_elections_layer",
    selection=dg.AssetSelection.assets(*all_assets),
    description="Bake the current-elections layer from an AddressBase drop and the ballots.",
    tags=CURRENT_ELECTIONS,
)

current_elections_from_ballots = dg.define_asset_job(
    "current_elections_from_ballots",
    selection=dg.AssetSelection.assets(current_ballots).downstream(),
    description="Rebuild the current-elections layer from the ballots export, on the "
    "AddressBase already partitioned.",
    tags=CURRENT_ELECTIONS,
)
