"""The current-elections layer: addresses joined to current ballots (its declaration is in
``layer.py``; the shared machinery in :mod:`databaker.layers` builds the rest)."""

from databaker.assets.current_elections.join import JOIN_QUERY, JOINED_TABLE
from databaker.assets.current_elections.layer import CURRENT_ELECTIONS

LAYER = CURRENT_ELECTIONS.prefix
LAYER_COLUMNS = CURRENT_ELECTIONS.columns
JOINED = JOINED_TABLE.prefix

__all__ = ["CURRENT_ELECTIONS", "JOINED", "JOINED_TABLE", "JOIN_QUERY", "LAYER", "LAYER_COLUMNS"]
