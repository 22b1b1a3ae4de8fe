"""Areas cut into pieces of a bounded size, as an export of subdivided geographies has them.

Like PostGIS's ST_Subdivide, a geometry of more than ``MAX_VERTICES`` vertices is halved
across its longer side (at its median vertex, so that a ward with a wide rural fringe is
not cut into many near-empty pieces), and the halves again, until every piece is small
enough; all the geometries of a batch are cut together, one level at a time. Cut lines lie halfway
between the 1e-6 degree steps addresses are written on, so no address ever falls on the
seam between two pieces (where it would be in neither); the new vertices on a seam are
the same floats in both pieces, which therefore meet exactly.
"""

from __future__ import annotations

import numpy as np
import shapely

from databaker.generate.wards import polygonal

# PostGIS's default is 256; the synthetic areas are coarser than real ones, so a lower cap
# gives a realistic share of areas in several pieces (as redraw.MAX_PIECE_VERTICES).
MAX_VERTICES = 128
_SMALLEST = 2e-4
_HUGE = 1e3
_LEVELS = 60


def cut(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pieces, index of the geometry each piece is of), pieces grouped by geometry in
    ``geoms`` order and, within one, in cutting order. A piece is a Polygon or, when
    small parts of one geometry end up together, a MultiPolygon."""
    pending, owner = np.asarray(geoms, dtype=object), np.arange(len(geoms))
    path = np.zeros(len(geoms), dtype=np.int64)
    done_geoms, done_owner, done_path = [], [], []
    depth = 0
    while len(pending):
        x0, y0, x1, y1 = shapely.bounds(pending).T
        wide = (x1 - x0) * np.cos(np.radians((y0 + y1) / 2)) >= (y1 - y0)
        small = (shapely.get_num_coordinates(pending) <= MAX_VERTICES) | (
            np.maximum(x1 - x0, y1 - y0) < _SMALLEST
        )
        done_geoms.append(pending[small])
        done_owner.append(owner[small])
        done_path.append(path[small] << (_LEVELS - depth))
        keep = ~small
        pending, owner, path, wide = pending[keep], owner[keep], path[keep], wide[keep]
        at = _half_step(_middle_vertex(pending, wide))
        lower = shapely.box(-_HUGE, -_HUGE, np.where(wide, at, _HUGE), np.where(wide, _HUGE, at))
        upper = shapely.box(np.where(wide, at, -_HUGE), np.where(wide, -_HUGE, at), _HUGE, _HUGE)
        halves = polygonal(shapely.intersection(np.repeat(pending, 2), _interleave(lower, upper)))
        side = np.tile([0, 1], len(pending))
        owner, path = np.repeat(owner, 2), (np.repeat(path, 2) << 1) | side
        present = ~shapely.is_missing(halves)
        pending, owner, path = halves[present], owner[present], path[present]
        depth += 1
        if depth > _LEVELS:
            raise RuntimeError("an area could not be cut into small enough pieces")
    pieces, owners, paths = (np.concatenate(x) for x in (done_geoms, done_owner, done_path))
    order = np.lexsort((paths, owners))
    return pieces[order], owners[order]


def _middle_vertex(geoms: np.ndarray, wide: np.ndarray) -> np.ndarray:
    """Per geometry, the median of its vertices' x (where ``wide``) or y, so each half
    gets about half the vertices even when most of them crowd into a corner."""
    xy, of = shapely.get_coordinates(geoms, return_index=True)
    values = np.where(wide[of], xy[:, 0], xy[:, 1])
    order = np.lexsort((values, of))
    counts = np.bincount(of, minlength=len(geoms))
    firsts = np.cumsum(counts) - counts
    return values[order[firsts + counts // 2]]


def _half_step(values: np.ndarray) -> np.ndarray:
    """The nearest value halfway between two multiples of 1e-6 (as the nearest float)."""
    return (np.floor(values * 1e6) + 0.5) / 1e6


def _interleave(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(2 * len(a), dtype=object)
    out[0::2], out[1::2] = a, b
    return out
