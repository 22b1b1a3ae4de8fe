"""The AddressBase layer: the raw drop, validated, and its split by postcode first letter."""

from databaker.assets.addressbase.assets import (
    ADDRESSBASE_PARTITIONED,
    ADDRESSBASE_PARTITIONED_TABLE,
    ADDRESSBASE_RAW,
    ADDRESSBASE_RAW_TABLE,
    addressbase_cleaned_raw,
    addressbase_partitioned,
)
from databaker.assets.addressbase.checks import addressbase_uprns_are_unique

assets = [addressbase_cleaned_raw, addressbase_partitioned]
asset_checks = [addressbase_uprns_are_unique]

__all__ = [
    "ADDRESSBASE_PARTITIONED",
    "ADDRESSBASE_PARTITIONED_TABLE",
    "ADDRESSBASE_RAW",
    "ADDRESSBASE_RAW_TABLE",
    "addressbase_cleaned_raw",
    "addressbase_partitioned",
    "asset_checks",
    "assets",
]
