"""Exact geometry edits for redrawn divisions: a bite moved across an edge, a cut in two.

Divisions of one divisionset tessellate on the 1e-6 grid, neighbours sharing their
vertices, so that no address falls into two of them. Every edit here keeps that true
without touching any division but the ones edited: a bite crosses its division's boundary
only on the one edge it is taken across (its new vertices land on that edge alone, which
both sides recompute), and a cut runs between two existing vertices of a ring.
"""

from __future__ import annotations

import numpy as np
import shapely

from databaker.generate.wards import polygonal

GRID = 1e-6
# PostGIS's ST_Subdivide default is 256; the synthetic wards are far coarser than real
# ones (50-200 vertices, not thousands), so a lower cap gives a realistic share of
# divisions in several pieces.
MAX_PIECE_VERTICES = 128
_MIN_RADIUS = 2e-4


def neighbours(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)``, ``i < j``, of geometries sharing an edge, and that shared line."""
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    lines = shapely.intersection(shapely.boundary(geoms[left]), shapely.boundary(geoms[right]))
    lines = shapely.line_merge(_lineal(lines))
    edge = shapely.length(lines) > 0
    return np.column_stack([left[edge], right[edge]]), lines[edge]


def _lineal(geoms: np.ndarray) -> np.ndarray:
    """The line parts of each geometry (intersections of boundaries also hold points)."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    keep = shapely.get_type_id(parts) == 1
    out = np.empty(len(geoms), dtype=object)
    return shapely.multilinestrings(parts[keep], indices=owner[keep], out=out)


def bite(geom: shapely.Geometry, edge: shapely.Geometry) -> shapely.Geometry | None:
    """A large piece of ``geom`` next to ``edge`` (a part of its boundary), on the grid.

    The piece is ``geom`` inside a disc whose centre moves from the middle of the edge
    towards the inside of ``geom``; the disc stays clear of the rest of the boundary, so
    the piece's outline meets the boundary only on ``edge``. None when no disc fits.
    """
    other = shapely.difference(shapely.boundary(geom), edge)
    if shapely.is_empty(other):
        return None
    lines = shapely.get_parts(edge)
    longest = lines[np.argmax(shapely.length(lines))]
    start = shapely.line_interpolate_point(longest, 0.5, normalized=True)
    inner = shapely.get_point(shapely.maximum_inscribed_circle(geom), 0)
    start_xy, inner_xy = shapely.get_coordinates(start)[0], shapely.get_coordinates(inner)[0]
    best, best_area = None, 0.0
    for step in np.linspace(0.0, 0.8, 9):
        centre = shapely.Point(start_xy + step * (inner_xy - start_xy))
        radius = 0.9 * shapely.distance(centre, other)
        if radius < _MIN_RADIUS or shapely.distance(centre, edge) > 0.6 * radius:
            continue
        if not shapely.covers(geom, centre):
            continue
        disc = shapely.buffer(centre, radius, quad_segs=8)
        piece = polygonal(np.array([shapely.intersection(geom, disc, grid_size=GRID)]))[0]
        if piece is not None and piece.area > best_area:
            best, best_area = piece, piece.area
    if best is None or best_area > 0.7 * geom.area:
        return None
    return best


def transfer(
    giver: shapely.Geometry, taker: shapely.Geometry, edge: shapely.Geometry
) -> tuple[shapely.Geometry, shapely.Geometry] | None:
    """Move a bite of ``giver`` across their shared ``edge``: (new taker, new giver)."""
    piece = bite(giver, edge)
    if piece is None:
        return None
    grown = shapely.union(taker, piece, grid_size=GRID)
    shrunk = shapely.difference(giver, piece, grid_size=GRID)
    result = polygonal(np.array([grown, shrunk]))
    if shapely.is_missing(result).any() or not shapely.is_valid(result).all():
        return None
    return result[0], result[1]


def clip(geom: shapely.Geometry, outer: shapely.Geometry) -> shapely.Geometry | None:
    """``geom`` less a bite along ``outer``, a part of its boundary no other division shares."""
    piece = bite(geom, outer)
    if piece is None:
        return None
    (left,) = polygonal(np.array([shapely.difference(geom, piece, grid_size=GRID)]))
    return left if left is not None and shapely.is_valid(left) else None


def island(
    giver: shapely.Geometry, taker: shapely.Geometry
) -> tuple[shapely.Geometry, shapely.Geometry] | None:
    """Hand a small area in the middle of ``giver`` to ``taker`` as a detached part (an
    exclave): (new taker, a MultiPolygon; new giver, with a hole). None when ``giver`` is
    not one polygon or the area would not fit well inside it."""
    if shapely.get_type_id(giver) != 3:
        return None
    circle = shapely.maximum_inscribed_circle(giver)
    (cx, cy), radius = shapely.get_coordinates(circle)[0], 0.4 * shapely.length(circle)
    theta = np.linspace(0, 2 * np.pi, 13)[:-1]
    circle_xy = np.column_stack([cx + radius * np.cos(theta), cy + radius * np.sin(theta)])
    ring = np.round(circle_xy, 6) + 0.0
    hole = shapely.Polygon(ring)
    if radius < _MIN_RADIUS or not shapely.contains_properly(giver, hole):
        return None
    interiors = [*(r.coords for r in giver.interiors), ring[::-1]]
    shrunk = shapely.Polygon(giver.exterior.coords, interiors)
    grown = shapely.multipolygons([*shapely.get_parts(taker), hole])
    if not (shapely.is_valid(shrunk) and shapely.is_valid(grown)):
        return None
    return grown, shrunk


def halve(poly: shapely.Geometry) -> tuple[shapely.Polygon, shapely.Polygon] | None:
    """Cut a polygon in two along its shortest chord inside it (clear of its holes)
    between two vertices a third to two thirds of its ring apart; each hole goes with
    the half around it. None when no such chord is found."""
    if shapely.get_type_id(poly) != 3:
        return None
    ring = shapely.get_coordinates(poly.exterior)[:-1]
    n = len(ring)
    if n < 6:
        return None
    starts, ends = np.triu_indices(n, k=n // 3)
    balanced = ends - starts <= n - n // 3
    starts, ends = starts[balanced], ends[balanced]
    order = np.argsort(np.hypot(*(ring[ends] - ring[starts]).T), kind="stable")
    holes = [shapely.get_coordinates(r) for r in poly.interiors]
    for i in order[:400]:
        a, b = int(starts[i]), int(ends[i])
        chord = shapely.LineString([ring[a], ring[b]])
        if not shapely.relate_pattern(chord, poly, "1FFF0F***"):
            continue
        shells = (ring[a : b + 1], np.concatenate([ring[b:], ring[: a + 1]]))
        first = shapely.Polygon(shells[0])
        inside = [bool(shapely.contains_properly(first, shapely.Polygon(h))) for h in holes]
        halves = (
            shapely.Polygon(shells[0], [h for h, k in zip(holes, inside, strict=True) if k]),
            shapely.Polygon(shells[1], [h for h, k in zip(holes, inside, strict=True) if not k]),
        )
        if shapely.is_valid(halves[0]) and shapely.is_valid(halves[1]):
            return halves
    return None


def pieces(geom: shapely.Geometry) -> list[shapely.Geometry]:
    """A division as the rows of a subdivided geography: its parts of at most
    MAX_PIECE_VERTICES vertices together (a Polygon, or a MultiPolygon of several), and
    each bigger part halved along chords until its pieces are that small. The rows cover
    the division exactly, vertex for vertex."""
    parts = shapely.get_parts(geom)
    small = shapely.get_num_coordinates(parts) <= MAX_PIECE_VERTICES
    out: list[shapely.Geometry] = []
    if small.sum() == 1:
        out.append(parts[small][0])
    elif small.any():
        out.append(shapely.multipolygons(parts[small]))
    stack = list(parts[~small])[::-1]
    while stack:
        part = stack.pop()
        halves = None
        if shapely.get_num_coordinates(part) > MAX_PIECE_VERTICES:
            halves = halve(part)
        if halves is None:
            out.append(part)
        else:
            stack.extend(halves[::-1])
    return out
