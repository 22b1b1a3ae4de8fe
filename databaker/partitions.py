"""The one partitioning every letter-split table shares: the postcode's first letter."""

import inspect
from collections.abc import Callable
from string import ascii_uppercase
from typing import Any

import dagster as dg

first_letter_partitions = dg.StaticPartitionsDefinition(list(ascii_uppercase))

# A full rebuild (all 26 letters) runs as one run: the keys are contiguous A..Z.
one_run_per_backfill = dg.BackfillPolicy.single_run()

ALL_LETTERS = {
    "dagster/asset_partition_range_start": ascii_uppercase[0],
    "dagster/asset_partition_range_end": ascii_uppercase[-1],
}
"""Run tags that make one run build every letter partition."""


def letter_partitioned_asset(
    *, name: str | None = None, pool: str | None = None, **spec: Any
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """Like ``@dg.asset``, for a table split by first letter whose backfill is one run.

    ``backfill_policy`` is a beta parameter of ``@dg.asset`` (a ``BetaWarning`` in every process
    that loads the code: the webserver's, the daemon's, each run's) and a stable one of
    ``@dg.multi_asset``, so the table is a multi-asset of one asset. ``spec`` takes what
    ``dg.AssetSpec`` takes (``deps``, ``group_name``, ``kinds``, ``owners``, ``metadata``,
    ``description``); the description defaults to the function's docstring, as ``@dg.asset``'s
    does, and the op is named after the asset.
    """

    def decorate(compute: Callable[..., Any]) -> dg.AssetsDefinition:
        key = name or compute.__name__
        description = spec.get("description") or inspect.getdoc(compute)
        return dg.multi_asset(
            name=key,
            specs=[dg.AssetSpec(key, **{**spec, "description": description})],
            partitions_def=first_letter_partitions,
            backfill_policy=one_run_per_backfill,
            pool=pool,
        )(compute)

    return decorate
