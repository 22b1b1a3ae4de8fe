"""The current-elections layer: addresses joined to current ballots, baked as a version,
compared with the published layer, and published per outcode."""

from databaker.assets.current_elections.checks import (
    joined_has_single_addressbase_source,
    joined_uprns_match_addressbase,
)
from databaker.assets.current_elections.joined import (
    JOINED,
    JOINED_TABLE,
    current_ballots_joined_to_address_base,
)
from databaker.assets.current_elections.layer import current_elections_parquet
from databaker.assets.current_elections.version import (
    LAYER,
    LAYER_COLUMNS,
    current_elections_version,
)

assets = [
    current_ballots_joined_to_address_base,
    current_elections_version,
    current_elections_parquet,
]
asset_checks = [joined_has_single_addressbase_source, joined_uprns_match_addressbase]

__all__ = [
    "JOINED",
    "JOINED_TABLE",
    "LAYER",
    "LAYER_COLUMNS",
    "asset_checks",
    "assets",
]
