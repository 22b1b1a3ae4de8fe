"""The organisations table: every current organisation's area and its current divisions', as of
a date, read from the organisations export."""

from databaker.assets.organisations.assets import (
    ORGANISATION_AREAS,
    ORGANISATION_AREAS_TABLE,
    ORGANISATION_TYPES,
    OrganisationsExportConfig,
    organisation_areas,
    organisation_areas_asset,
)

assets = [organisation_areas]
asset_checks: list = []

__all__ = [
    "ORGANISATION_AREAS",
    "ORGANISATION_AREAS_TABLE",
    "ORGANISATION_TYPES",
    "OrganisationsExportConfig",
    "asset_checks",
    "assets",
    "organisation_areas",
    "organisation_areas_asset",
]
