"""The ballots table: the current ballots and the areas they cover."""

from databaker.assets.current_ballots.assets import (
    CURRENT_BALLOTS,
    CURRENT_BALLOTS_TABLE,
    current_ballots,
)

assets = [current_ballots]
asset_checks: list = []

__all__ = ["CURRENT_BALLOTS", "CURRENT_BALLOTS_TABLE", "asset_checks", "assets", "current_ballots"]
