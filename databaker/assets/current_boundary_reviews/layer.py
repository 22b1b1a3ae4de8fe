"""The current-boundary-reviews layer: is this address's ward or division being redrawn, and how?
Every address with a JSON object per boundary review whose old and new divisions both contain
it, from the boundary-reviews export."""

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databaker.assets.boundary_reviews import (
    BOUNDARY_REVIEW_DIVISIONS,
    BOUNDARY_REVIEW_DIVISIONS_TABLE,
    boundary_review_divisions,
)
from databaker.assets.boundary_reviews.assets import boundary_review_divisions_asset
from databaker.assets.boundary_reviews.from_every_election import (
    BOUNDARY_REVIEWS_FROM_EVERY_ELECTION,
)
from databaker.assets.current_boundary_reviews.guard_rails import RAILS, GuardRails
from databaker.assets.current_boundary_reviews.join import JOINED_TABLE, join_boundary_reviews
from databaker.assets.current_boundary_reviews.review_lists import DETAILS, DIVISION_FIELDS
from databaker.layers import Layer, LayerInput
from databaker.layers.areas import Areas, read_areas
from databaker.resources import LayerStore
from databaker.resources.input_locations import InputLocations

REVIEW_ID = r'^\{"boundary_review_id":(?P<review>[0-9]+),'
"""Each element starts with its review's ID (the join writes the keys in a fixed order)."""


def review_ids(elements: pa.Array) -> pa.Array:
    """The review each element is about: its ``boundary_review_id``, as text."""
    return pc.struct_field(pc.extract_regex(elements, REVIEW_ID), "review")


def reviews_named(store: LayerStore, metadata: Mapping[str, Any]) -> set[str]:
    """Every review the export names: those with a division in the table, and those whose every
    row was rejected (a broken review must not pass for a withdrawn one)."""
    with store.open_input(BOUNDARY_REVIEW_DIVISIONS) as source:
        ids = pq.read_table(source, columns=["boundary_review_id"])["boundary_review_id"]
    kept = {str(review) for review in pc.unique(ids).to_pylist()}
    return kept | {str(review) for review in metadata.get("reviews_in_export", [])}


def review_areas(store: LayerStore) -> Areas:
    """Every piece of every division of every review, old and new, by review ID (as
    :func:`review_ids` gives it)."""
    return read_areas(store, BOUNDARY_REVIEW_DIVISIONS, "boundary_review_id")


def export_summary(metadata: Mapping[str, Any]) -> str:
    return (
        f"boundary reviews:   {metadata['boundary_reviews']:,} with {metadata['divisions']:,} "
        f"divisions in {metadata['rows']:,} pieces ({metadata['repaired_geometries']} repaired)"
    )


def change_text(element: str) -> str:
    """An element for a table: ``963 DIW old-slug -> new-slug BOUNDARY_CHANGED``."""
    review = json.loads(element)
    changes = ", ".join(
        f"{c['division_type']} {c['old_division_slug']} -> {c['new_division_slug']} "
        f"{c['change_scenario']}"
        for c in review["changes"]
    )
    return f"{review['boundary_review_id']} {changes}"


BOUNDARY_REVIEWS_EXPORT = LayerInput(
    asset=boundary_review_divisions,
    table=BOUNDARY_REVIEW_DIVISIONS_TABLE,
    label="boundary-reviews export",
    option="boundary_reviews",
    version_key="boundary_reviews_version",
    version_of=InputLocations.boundary_reviews_version,
    ids_named=reviews_named,
    sensor_name="boundary_reviews_export_changes",
    rebuild_job_name="current_boundary_reviews_from_export",
    summary=export_summary,
    areas=review_areas,
    ids_from=(
        "boundary_review_id",
        *DETAILS,
        "divisionset_generation",
        "division_type",
        *DIVISION_FIELDS,
        "geometry",
    ),
    export=BOUNDARY_REVIEWS_FROM_EVERY_ELECTION,
    asset_after=boundary_review_divisions_asset,
)

CURRENT_BOUNDARY_REVIEWS = Layer(
    name="current_boundary_reviews",
    description="a JSON object per boundary review redrawing a division the address is in.",
    ids_column="boundary_reviews",
    id_label="boundary review",
    joined=JOINED_TABLE,
    join=join_boundary_reviews,
    config=GuardRails,
    rails=RAILS,
    input=BOUNDARY_REVIEWS_EXPORT,
    element_ids=review_ids,
    element_json=json.loads,
    element_text=change_text,
    nothing_here="no boundary reviews here",
    ids_column_description="One compact JSON object per boundary review redrawing a division "
    "the address lies in (inside a division of its old divisionset and one of the new), "
    "ordered by review ID: the review's details and, per division type, the old and new "
    "division and the change (`NO_CHANGE`, `NAME_CHANGED`, `BOUNDARY_CHANGED`, "
    "`BOTH_CHANGED`); `[]` for an address in no review, never null.",
)
