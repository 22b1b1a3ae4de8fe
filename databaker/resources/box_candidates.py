"""Which polygons contain a few points: each polygon's bounding box finds its candidates among
the points, and GEOS tests them all in one call.

Points are sorted into horizontal bands of :data:`BAND_DEGREES`, by longitude within a band;
each polygon's box becomes one slice of that order per band it spans, found by binary search,
so making the candidates costs no Python per point. The work grows with the candidates, not
with the polygons' edges, so nothing is built ahead: the way to join a rebake's few addresses
(:mod:`databaker.resources.band_segments` pays a build that a letter's million repays).
"""

from __future__ import annotations

import itertools

import numpy as np
import shapely

from databaker.arrays import ranks_within_runs

BAND_DEGREES = 0.005
"""Band height: about 550 m, a few bands per urban ward."""
CANDIDATES_PER_CHUNK = 1 << 20
"""Candidate pairs made and tested at a time: arrays of many more (tens of millions where
areas nest, as councils in counties) are larger than the C allocator keeps for reuse, so each
would be new memory, every page of which costs a fault when first written."""


def containing_pairs(
    bounds: np.ndarray, prepared: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(point, polygon)`` index pairs where the polygon (``prepared``, its box a row of
    ``bounds``) contains the point ``(x[point], y[point])``, in no particular order."""
    if len(x) == 0 or len(bounds) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    x0, y0 = min(x.min(), bounds[:, 0].min()), min(y.min(), bounds[:, 1].min())
    span = max(x.max(), bounds[:, 2].max()) - x0 + 1.0

    def band(lat: np.ndarray) -> np.ndarray:
        return np.floor((lat - y0) / BAND_DEGREES)

    point_keys = band(y) * span + (x - x0)
    order = np.argsort(point_keys)
    keys = point_keys[order]

    first, last = band(bounds[:, 1]), band(bounds[:, 3])
    bands_per_box = (last - first + 1).astype(np.int64)
    slice_box = np.repeat(np.arange(len(bounds)), bands_per_box)
    band_of = first[slice_box] + ranks_within_runs(bands_per_box)
    lo = np.searchsorted(keys, band_of * span + (bounds[slice_box, 0] - x0), "left")
    hi = np.searchsorted(keys, band_of * span + (bounds[slice_box, 2] - x0), "right")
    sizes = hi - lo
    ends = np.cumsum(sizes)
    cuts = np.searchsorted(ends, np.arange(CANDIDATES_PER_CHUNK, ends[-1], CANDIDATES_PER_CHUNK))
    chunks = np.unique(np.concatenate([[0], cuts + 1, [len(sizes)]]).clip(0, len(sizes)))
    points, polygons = [], []
    for start, stop in itertools.pairwise(chunks):
        part = slice(start, stop)
        polygon = np.repeat(slice_box[part], sizes[part])
        point = order[np.repeat(lo[part], sizes[part]) + ranks_within_runs(sizes[part])]
        in_box = (y[point] >= bounds[polygon, 1]) & (y[point] <= bounds[polygon, 3])
        point, polygon = point[in_box], polygon[in_box]
        inside = shapely.contains_xy(prepared[polygon], x[point], y[point])
        points.append(point[inside])
        polygons.append(polygon[inside])
    return np.concatenate(points), np.concatenate(polygons)
