"""Wards that tessellate the whole map, as councils do in life, not just the town cores.

The ballots' wards cover each town's footprint only, and some addresses (village edges,
stragglers) lie outside every ward. Here the land between towns is shared out: every town
gets a territory (a cell of the Voronoi diagram of the town centres, on a box a little
larger than the one addresses are clipped to), and the land of its territory outside every
town is cut into wedges fanning out from the town centre, one per run of the town's outline
that a ward owns. Each outer ward is extended by its wedges, so it keeps its town polygon
exactly (a ballot's ward is a part of the export's ward) and its outline still meets its
neighbours vertex for vertex inside the town; out of town, where two towns' wedges meet,
the wards are then noded so that they meet vertex for vertex there too.
"""

from __future__ import annotations

import numpy as np
import shapely

from databaker.generate.areas import LAT_MAX, LAT_MIN, LON_MAX, LON_MIN
from databaker.generate.townmaps import TownMap
from databaker.generate.unions import union_of

MARGIN = 0.5
BOX = shapely.box(LON_MIN - MARGIN, LAT_MIN - MARGIN, LON_MAX + MARGIN, LAT_MAX + MARGIN)
_FAR = 25.0
_STEP = 0.5
_LON_SCALE = 0.62
_SNAP = 1e-9


def tessellate(maps: list[TownMap]) -> list[np.ndarray]:
    """Per town, its ward polygons with the outer ones extended over its rural land; all
    towns' wards together cover ``BOX``."""
    covers = np.array([union_of(m.cells) for m in maps], dtype=object)
    centres = np.array([[m.town.lon, m.town.lat] for m in maps])
    lands = territories(centres)
    tree = shapely.STRtree(covers)
    out = []
    for m, cover, land in zip(maps, covers, lands, strict=True):
        near = tree.query(land, predicate="intersects")
        towns = shapely.multipolygons(shapely.get_parts(covers[near]))
        out.append(_extended(m, cover, shapely.difference(land, towns)))
    sizes = [len(cells) for cells in out]
    joined = _noded(
        np.concatenate(out),
        np.concatenate([c != e for c, e in zip((m.cells for m in maps), out, strict=True)]),
    )
    return np.split(joined, np.cumsum(sizes)[:-1])


def _noded(wards: np.ndarray, extended: np.ndarray) -> np.ndarray:
    """The wards with their neighbours' vertices added where those lie on their edges, so
    that wards of two towns meet vertex for vertex out of town too.

    Along a territory edge each side has vertices the other lacks (where the other town's
    rays cross it), and where a town pokes into a neighbour's territory the neighbour's
    wards meet its outline with such vertices too; they lie a few 1e-16 degrees off the
    other side's edges, and two sides' copies of one crossing may differ as much. Snapping
    with a tolerance far below the 1e-6 grid of the towns, first each ward of a touching
    pair with the higher index to the other, then the other to the result, makes both
    sides the same. A ward that snapping would make invalid is left as it was.
    """
    rims = np.flatnonzero(extended)
    near, other = shapely.STRtree(wards).query(wards[rims], predicate="dwithin", distance=_SNAP)
    pairs = np.unique(np.sort(np.column_stack([rims[near], other]), axis=1), axis=0)
    low, high = pairs[pairs[:, 0] != pairs[:, 1]].T
    return _snapped(_snapped(wards, high, low), low, high)


def _snapped(wards: np.ndarray, targets: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """``wards`` with each of ``targets`` snapped to the vertices of its ``sources``.

    Only the sources' vertices off the towns' 1e-6 grid (made out of town) and inside the
    target's bounds can matter, and keeping only those keeps the memory small.
    """
    xy, of = shapely.get_coordinates(wards, return_index=True)
    rural = (np.abs(xy * 1e6 - np.rint(xy * 1e6)) > 1e-3).any(axis=1)
    xy, of = xy[rural], of[rural]
    counts = np.bincount(of, minlength=len(wards))
    firsts = np.cumsum(counts) - counts
    order = np.argsort(targets, kind="stable")
    targets, sources = targets[order], sources[order]
    per_pair = counts[sources]
    pair = np.repeat(np.arange(len(sources)), per_pair)
    at = (
        firsts[sources][pair]
        + np.arange(len(pair))
        - np.repeat(np.cumsum(per_pair) - per_pair, per_pair)
    )
    xy, target = xy[at], targets[pair]
    x0, y0, x1, y1 = (shapely.bounds(wards)[target] + [-_SNAP, -_SNAP, _SNAP, _SNAP]).T
    keep = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    refs = shapely.multipoints(
        xy[keep], indices=target[keep], out=np.empty(len(wards), dtype=object)
    )
    has = np.flatnonzero(~shapely.is_missing(refs))
    snapped = shapely.snap(wards[has], refs[has], _SNAP)
    good = shapely.is_valid(snapped)
    out = wards.copy()
    out[has[good]] = snapped[good]
    return out


def territories(centres: np.ndarray) -> np.ndarray:
    """Voronoi cells of the town centres (lon shrunk to look like distance), on ``BOX``."""
    scale = np.array([_LON_SCALE, 1.0])
    scaled = shapely.transform(BOX, lambda xy: xy * scale)
    cells = shapely.voronoi_polygons(
        shapely.multipoints(centres * scale), extend_to=scaled, ordered=True
    )
    parts = shapely.transform(shapely.get_parts(cells), lambda xy: xy / scale)
    return shapely.intersection(parts, BOX)


def _extended(m: TownMap, cover: shapely.Geometry, rural: shapely.Geometry) -> np.ndarray:
    """The town's cells, each outer one united with its wedges of ``rural``."""
    if shapely.get_type_id(cover) != 3:
        raise RuntimeError(f"town {m.town.name} is not one polygon")
    ring = shapely.get_coordinates(cover.exterior)[:-1]
    if not shapely.is_ccw(cover.exterior):
        ring = ring[::-1]
    centre = np.array([m.town.lon, m.town.lat])
    middles = shapely.points((ring + np.roll(ring, -1, axis=0)) / 2)
    owner = shapely.STRtree(m.cells).query_nearest(middles, all_matches=False)[1]
    starts = np.flatnonzero(owner != np.roll(owner, 1))
    cells = m.cells.copy()
    if starts.size == 0:
        cells[owner[0]] = shapely.union(cells[owner[0]], rural)
        return cells
    ends = np.roll(starts, -1)
    wedges = [_wedge(centre, ring[a], ring[b]) for a, b in zip(starts, ends, strict=True)]
    spans = sum(_span(centre, ring[a], ring[b]) for a, b in zip(starts, ends, strict=True))
    if not np.isclose(spans, 2 * np.pi):
        raise RuntimeError(f"the outline of town {m.town.name} is not star-shaped")
    pieces = shapely.intersection(np.array(wedges, dtype=object), rural)
    for ward in np.unique(owner[starts]):
        mine = pieces[owner[starts] == ward]
        cells[ward] = union_of(np.array([cells[ward], *mine], dtype=object))
    return cells


def _angle(centre: np.ndarray, point: np.ndarray) -> float:
    return float(np.arctan2(point[1] - centre[1], point[0] - centre[0]))


def _span(centre: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Counter-clockwise angle from ``a`` to ``b`` around ``centre``, in (0, 2 pi]."""
    span = (_angle(centre, b) - _angle(centre, a)) % (2 * np.pi)
    return span or 2 * np.pi


def _wedge(centre: np.ndarray, a: np.ndarray, b: np.ndarray) -> shapely.Polygon:
    """The fan from ``centre`` through outline vertices ``a`` then ``b`` (counter-clockwise)
    out beyond the map. Neighbouring wedges share their ray exactly: centre, the vertex,
    then a far point computed from that vertex alone."""
    start, span = _angle(centre, a), _span(centre, a, b)
    steps = int(np.ceil(span / _STEP))
    theta = start + span * np.arange(1, steps) / steps
    arc = centre + _FAR * np.column_stack([np.cos(theta), np.sin(theta)])
    far_a = centre + (a - centre) * (_FAR / np.hypot(*(a - centre)))
    far_b = centre + (b - centre) * (_FAR / np.hypot(*(b - centre)))
    return shapely.Polygon(np.vstack([centre, a, far_a, arc, far_b, b]))
