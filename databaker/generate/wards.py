"""Ward (division) polygons of one town: clipped Voronoi cells that tessellate exactly.

All wards of a town, electing or not, come from one Voronoi diagram of jittered hexagonal
seeds clipped to the town footprint, so neighbours share edges vertex for vertex. Every
edge is densified with one per-town step length (same points on both sides), then the
cells are moved to lon/lat and rounded to 6 decimals. Councils are balanced spatial
groups of wards, so a council boundary is a union of ward edges, as in real life.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from databaker.generate.places import Town

FOOTPRINT_SIGMAS = 2.1
TARGET_VERTICES = 90


@dataclass(frozen=True)
class TownWards:
    """Rounded lon/lat ward polygons of a town and the council (local index) of each."""

    town: Town
    cells: np.ndarray
    council: np.ndarray


def _footprint(rng: np.random.Generator, town: Town) -> tuple[shapely.Polygon, np.ndarray]:
    """Wobbly disc around the town centre; returns it and its harmonic coefficients."""
    harmonics = np.column_stack(
        [np.arange(2, 6), rng.uniform(0, 0.09, 4), rng.uniform(0, 2 * np.pi, 4)]
    )
    theta = np.linspace(0, 2 * np.pi, 97)[:-1]
    radius = FOOTPRINT_SIGMAS * town.sigma_km * _wobble(harmonics, theta)
    ring = np.column_stack([radius * np.cos(theta), radius * np.sin(theta)])
    return shapely.Polygon(ring), harmonics


def _wobble(harmonics: np.ndarray, theta: np.ndarray) -> np.ndarray:
    k, amp, phase = harmonics.T
    return 1.0 + (amp[:, None] * np.sin(k[:, None] * theta + phase[:, None])).sum(axis=0)


def _seeds(
    rng: np.random.Generator, town: Town, shape: shapely.Polygon, harmonics: np.ndarray, count: int
) -> np.ndarray:
    """``count`` jittered hex-lattice points filling the footprint from the centre outwards."""
    reach = FOOTPRINT_SIGMAS * town.sigma_km * 1.4
    step = np.sqrt(2 * shape.area / count / np.sqrt(3))
    angle, shift = rng.uniform(0, np.pi / 3), rng.uniform(0, 1, 2)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    while True:
        span = int(np.ceil(reach / step)) + 2
        i, j = np.meshgrid(np.arange(-span, span + 1), np.arange(-span, span + 1))
        lattice = np.column_stack(
            [(i + 0.5 * j).ravel() + shift[0], (j * np.sqrt(3) / 2).ravel() + shift[1]]
        )
        pts = (lattice * step) @ rot.T + rng.uniform(-0.3, 0.3, lattice.shape) * step
        theta = np.arctan2(pts[:, 1], pts[:, 0])
        depth = np.hypot(pts[:, 0], pts[:, 1]) / (
            FOOTPRINT_SIGMAS * town.sigma_km * _wobble(harmonics, theta)
        )
        order = np.argsort(depth, kind="stable")[:count]
        if depth[order[-1]] < 0.97:
            return pts[order] * 0.97 / depth[order[-1]]
        step *= 0.93


def split_counts(
    pts: np.ndarray, idx: np.ndarray, counts: list[int], out: list[np.ndarray]
) -> None:
    """Recursive bisection of ``idx`` into spatially compact groups of the given sizes."""
    if len(counts) == 1:
        out.append(idx)
        return
    half = len(counts) // 2
    sub = pts[idx]
    axis = int(np.ptp(sub[:, 1]) > np.ptp(sub[:, 0]))
    order = idx[np.argsort(sub[:, axis], kind="stable")]
    cut = sum(counts[:half])
    split_counts(pts, order[:cut], counts[:half], out)
    split_counts(pts, order[cut:], counts[half:], out)


def polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the areal parts of each geometry: Polygon, or MultiPolygon if several."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
    parts, owner = parts[keep], owner[keep]
    counts = np.bincount(owner, minlength=len(geoms))
    multi = shapely.multipolygons(parts, indices=owner, out=np.empty(len(geoms), dtype=object))
    single = np.empty(len(geoms), dtype=object)
    single[owner[counts[owner] == 1]] = parts[counts[owner] == 1]
    return np.where(counts == 1, single, multi)


def _ngon(centre: shapely.Point, radius: float, rng: np.random.Generator) -> np.ndarray:
    theta = np.linspace(0, 2 * np.pi, 53)[:-1]
    r = radius * (1 + 0.08 * np.sin(3 * theta + rng.uniform(0, 6.3)))
    return np.column_stack([centre.x + r * np.cos(theta), centre.y + r * np.sin(theta)])


def carve_specials(cells: np.ndarray, candidates: np.ndarray, rng: np.random.Generator) -> int:
    """Cut an enclave ward out of one candidate ward (leaving a hole), and hand a piece in
    the middle of a second ward to a neighbour of it as an exclave (a two-part MultiPolygon).

    Small but not sliver-thin wards are used so the extra rings keep them within 200
    vertices. ``cells`` is updated in place; returns the index of the enclave's host ward.
    """
    plain = candidates[shapely.get_type_id(cells[candidates]) == 3]
    circles = shapely.maximum_inscribed_circle(cells[plain])
    labels, depth = shapely.get_point(circles, 0), shapely.length(circles)
    shallow = depth < 0.5 * np.median(depth)
    ranked = np.lexsort((shapely.length(cells[plain]), shallow))
    a, d = plain[ranked[0]], plain[ranked[1]]
    rest = [c for c in plain[ranked[2:]] if shapely.intersects(cells[c], cells[d])]
    c = rest[0] if rest else plain[ranked[2]]
    enclave = _ngon(labels[ranked[0]], 0.45 * depth[ranked[0]], rng)
    exclave = _ngon(labels[ranked[1]], 0.4 * depth[ranked[1]], rng)
    cells[a] = shapely.Polygon(cells[a].exterior.coords, [enclave[::-1]])
    cells[d] = shapely.Polygon(cells[d].exterior.coords, [exclave[::-1]])
    cells[c] = shapely.MultiPolygon([cells[c], shapely.Polygon(exclave)])
    return int(a)


def town_wards(
    town: Town, counts: list[int], electing: list[bool], rng: np.random.Generator, special: bool
) -> TownWards:
    """Wards for councils with ``counts`` wards each (in that order, spatially grouped).

    With ``special`` one extra enclave ward is added to an electing council, and two of
    its wards get a hole and an exclave, so the town has exactly ``sum(counts) + 1``.
    """
    shape, harmonics = _footprint(rng, town)
    seeds = _seeds(rng, town, shape, harmonics, sum(counts))
    groups: list[np.ndarray] = []
    split_counts(seeds, np.arange(len(seeds)), counts, groups)
    council = np.empty(len(seeds), dtype=np.int64)
    for g, members in enumerate(groups):
        council[members] = g
    vor = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=shape, ordered=True)
    cells = polygonal(shapely.intersection(shapely.get_parts(vor), shape))
    voting = np.isin(council, np.flatnonzero(electing))
    if special:
        first = np.flatnonzero(council == electing.index(True))
        polygons = shapely.get_type_id(cells[first]) == 3
        candidates = first if polygons.sum() >= 3 else np.flatnonzero(voting)
        cells = np.append(cells, None)
        host = carve_specials(cells, candidates, rng)
        cells[-1] = shapely.Polygon(cells[host].interiors[0].coords)
        council = np.append(council, council[host])
        voting = np.append(voting, True)
    cells = shapely.segmentize(cells, _step(cells[voting]))
    cells = shapely.transform(cells, lambda xy: _to_lonlat(town, xy))
    return TownWards(town=town, cells=valid_rounded(cells), council=council)


def _step(cells: np.ndarray) -> float:
    """One densify step for the whole town that keeps every ward within 50-200 vertices
    when the spread of ward sizes allows it (median ward about TARGET_VERTICES)."""
    parts, part_of = shapely.get_parts(cells, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    ring_of = part_of[ring_of]
    xy, point_of = shapely.get_coordinates(rings, return_index=True)
    same = point_of[1:] == point_of[:-1]
    seg = np.hypot(*np.diff(xy, axis=0).T)[same]
    seg_cell = ring_of[point_of[1:][same]]
    extra = np.bincount(ring_of, minlength=len(cells))
    base = float(np.median(shapely.length(cells))) / TARGET_VERTICES
    factors = np.geomspace(0.25, 4.0, 41)
    miss = np.empty(factors.size)
    for i, factor in enumerate(factors):
        counts = np.bincount(seg_cell, np.ceil(seg / (base * factor)), len(cells)) + extra
        miss[i] = np.clip(50 - counts, 0, None).sum() + np.clip(counts - 200, 0, None).sum()
    best = np.lexsort((np.abs(np.log(factors)), miss))[0]
    return base * float(factors[best])


def _to_lonlat(town: Town, xy: np.ndarray) -> np.ndarray:
    lon, lat = town.to_lonlat(xy[:, 0], xy[:, 1])
    return np.round(np.column_stack([lon, lat]), 6) + 0.0


def valid_rounded(geoms: np.ndarray) -> np.ndarray:
    """Geometries already on the 1e-6 grid; the rare ones rounding made invalid are re-snapped."""
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        fixed = shapely.set_precision(geoms[bad], 1e-6)
        geoms = geoms.copy()
        geoms[bad] = polygonal(shapely.transform(fixed, lambda xy: xy + 0.0))
    return geoms
