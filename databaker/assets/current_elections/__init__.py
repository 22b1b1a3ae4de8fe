"""The current-elections layer: addresses joined to current ballots, published per outcode."""

from databaker.assets.current_elections.assets import (
    JOINED,
    LAYER,
    LAYER_COLUMNS,
    current_ballots_joined_to_address_base,
    current_elections_parquet,
)
from databaker.assets.current_elections.checks import (
    joined_has_single_addressbase_source,
    joined_uprns_match_addressbase,
)

assets = [current_ballots_joined_to_address_base, current_elections_parquet]
asset_checks = [joined_has_single_addressbase_source, joined_uprns_match_addressbase]

__all__ = [
    "JOINED",
    "LAYER",
    "LAYER_COLUMNS",
    "asset_checks",
    "assets",
]
