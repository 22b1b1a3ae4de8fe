"""Software-defined assets: one package per layer, SQL and checks beside the assets."""

from databaker.assets import addressbase, current_ballots, current_elections

all_assets = [*addressbase.assets, *current_ballots.assets, *current_elections.assets]
all_asset_checks = [
    *addressbase.asset_checks,
    *current_ballots.asset_checks,
    *current_elections.asset_checks,
]

__all__ = ["all_asset_checks", "all_assets"]
