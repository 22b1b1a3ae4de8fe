"""The boundary-reviews table: every division of the current boundary reviews, read from
Democracy Club's boundary-reviews export."""

from databaker.assets.boundary_reviews.assets import (
    BOUNDARY_REVIEW_DIVISIONS,
    BOUNDARY_REVIEW_DIVISIONS_TABLE,
    BoundaryReviewsExportConfig,
    boundary_review_divisions,
)

assets = [boundary_review_divisions]
asset_checks: list = []

__all__ = [
    "BOUNDARY_REVIEW_DIVISIONS",
    "BOUNDARY_REVIEW_DIVISIONS_TABLE",
    "BoundaryReviewsExportConfig",
    "asset_checks",
    "assets",
    "boundary_review_divisions",
]
