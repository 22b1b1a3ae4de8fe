"""The current-boundary-reviews layer: is this address's ward or division being redrawn, and
how? Every address with a JSON object per boundary review whose old and new divisions both
contain it (declared in ``layer.py``, joined in ``join.py``; the shared machinery in
:mod:`databaker.layers` builds the rest)."""

from databaker.assets.current_boundary_reviews.join import JOINED_TABLE
from databaker.assets.current_boundary_reviews.layer import CURRENT_BOUNDARY_REVIEWS

__all__ = ["CURRENT_BOUNDARY_REVIEWS", "JOINED_TABLE"]
