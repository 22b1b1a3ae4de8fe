"""The boundary-reviews layer's guard rails: the shared ones, named for reviews, and one of its
own: every review in the export reaches an address."""

from typing import Any

import dagster as dg
from pydantic import Field

from databaker.layers.guard_rails import (
    SAMPLE,
    CoverageConfig,
    LayerConfig,
    Rail,
    RailInputs,
    addresses_kept,
    coverage_steady,
    ids_keep_their_addresses,
    overrides,
    verdict,
)
from databaker.markdown import markdown_table


class GuardRails(LayerConfig, CoverageConfig):
    max_review_loss: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Largest share of its addresses a review still in the export may lose.",
    )
    allow_review_loss: bool = Field(default=False, description="Publish despite review losses.")
    allow_reviews_without_addresses: bool = Field(
        default=False, description="Publish although a review in the export reaches no address."
    )


def _reviews_reach_addresses(rail: Rail, inputs: RailInputs, config: Any) -> dg.AssetCheckResult:
    """A review reaches an address when one lies inside both an old and a new division of it.
    One that reaches none has broken geometry, a missing generation, or coordinates that are
    not lon/lat: publishing it would silently tell nobody about the review."""
    reached = {review for review, count in inputs.addresses_per_id.items() if count > 0}
    unreached = sorted(inputs.ids_named - reached, key=lambda review: (len(review), review))
    return verdict(
        rail,
        config,
        failed=bool(unreached),
        problem=f"{len(unreached):,} boundary review(s) in the export reach no address (none "
        f"lies inside both an old and a new division of theirs): "
        f"{', '.join(unreached[:SAMPLE])}{', ...' if len(unreached) > SAMPLE else ''}",
        metadata={
            "reviews_in_export": len(inputs.ids_named),
            "reviews_without_addresses": markdown_table(
                ["boundary review reaching no address"], ([r] for r in unreached[:SAMPLE])
            ),
        },
    )


ADDRESSES_KEPT = addresses_kept()
REVIEWS_KEEP_ADDRESSES = ids_keep_their_addresses(
    name="reviews_keep_their_addresses",
    threshold="max_review_loss",
    override="allow_review_loss",
    label="boundary review",
)
COVERAGE_STEADY = coverage_steady(label="boundary review")
REVIEWS_REACH_ADDRESSES = Rail(
    "reviews_reach_addresses",
    "allow_reviews_without_addresses",
    "Every boundary review in the export reaches at least one address (inside both an old and a "
    "new division of it), from the first bake on.",
    _reviews_reach_addresses,
    compares=False,
)
RAILS = (ADDRESSES_KEPT, REVIEWS_KEEP_ADDRESSES, COVERAGE_STEADY, REVIEWS_REACH_ADDRESSES)
OVERRIDES = overrides(RAILS)
