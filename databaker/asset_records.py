"""What the Dagster instance recorded about an asset's latest materialisation."""

import dagster as dg


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict:
    """The plain metadata values of the asset's latest materialisation; empty if it has none."""
    event = instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event else None
    return {k: v.value for k, v in materialization.metadata.items()} if materialization else {}
