"""The one partitioning every letter-split table shares: the postcode's first letter."""

from string import ascii_uppercase

import dagster as dg

first_letter_partitions = dg.StaticPartitionsDefinition(list(ascii_uppercase))

# A full rebuild (all 26 letters) runs as one run: the keys are contiguous A..Z.
one_run_per_backfill = dg.BackfillPolicy.single_run()

ALL_LETTERS = {
    "dagster/asset_partition_range_start": ascii_uppercase[0],
    "dagster/asset_partition_range_end": ascii_uppercase[-1],
}
"""Run tags that make one run build every letter partition."""
