"""One area from many: the union of wards (or of councils) for the organisations export.

The wards meet vertex for vertex (``rural`` nodes them where two towns meet), so coverage
union, which is fast and keeps every vertex, does the work. Should it ever meet edges it
cannot node, the general union is used instead, and any hair-thin hole left along such an
edge is dropped.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.errors import GEOSException

from databaker.generate.wards import polygonal

SLIVER = 1e-10


def union_of(geoms: np.ndarray) -> shapely.Geometry:
    """The union of polygonal ``geoms``: a Polygon, or a MultiPolygon of several parts."""
    geoms = geoms[~shapely.is_empty(geoms)]
    if len(geoms) == 1:
        return geoms[0]
    try:
        merged = shapely.coverage_union_all(geoms)
        if not shapely.is_valid(merged):
            raise ValueError("not a valid coverage")
    except (GEOSException, ValueError):
        merged = shapely.union_all(geoms)
    return _without_slivers(merged)


def _without_slivers(geom: shapely.Geometry) -> shapely.Geometry:
    """``geom`` less the interior rings (and parts) of negligible area."""
    parts = shapely.get_parts(polygonal(np.array([geom], dtype=object)))
    parts = parts[shapely.area(parts) > SLIVER]
    kept = []
    for part in parts:
        holes = [r for r in part.interiors if shapely.area(shapely.Polygon(r)) > SLIVER]
        kept.append(
            part if len(holes) == len(part.interiors) else shapely.Polygon(part.exterior, holes)
        )
    return kept[0] if len(kept) == 1 else shapely.MultiPolygon(kept)
