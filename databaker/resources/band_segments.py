"""Which areas contain every point of a stretch of the map, and which must be asked point by point.

The map is cut into horizontal bands of :data:`BAND_DEGREES`. Within a band, a polygon's
boundary crosses only some stretches of longitude (its edges' extents there, widened by
:data:`MARGIN`): a point in such a stretch must be tested (by GEOS). Between two of them no
edge passes, so every point of the band there is inside the polygon, or every one is outside
it: one test at the stretch's middle tells which. All polygons' stretches cut a band into
segments, each with the areas containing all of it and the polygons to test in it; a point's
segment is found by one binary search over keys ordered by band, then longitude.

A point on an edge is in a tested stretch (the margin is far wider than rounding), so GEOS
decides it, as ``ST_Contains`` would: it is in neither polygon the edge bounds.

The segments hold each area once per segment it covers, so their size grows with the number
of areas over a place. Nested administrative areas put a point in a handful of them: the
17,837 pieces of a map's organisations, wards and constituencies make 872,314 segments and
6.5 million entries, about 70 MB. Thousands of areas stacked on one place would make far more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely

from databaker.arrays import distinct, ranks_within_runs

BAND_DEGREES = 0.002
"""Band height: about 220 m, so a boundary's stretch of a band is short beside a ward."""
MARGIN = 1e-9
"""Degrees (about 0.1 mm) by which an edge's extent in a band is widened on every side: far
more than the rounding of the arithmetic that places points and edges in bands."""


@dataclass(frozen=True)
class BandSegments:
    """Segments of every band, sorted by :meth:`keys <_Keys.of>`; each with the areas (by rank)
    containing all of it and the polygons (by position) to test in it, as CSR arrays."""

    keys: _Keys
    starts: np.ndarray
    """Each segment's first key; the segment runs to the next one's."""
    inside_offsets: np.ndarray
    inside: np.ndarray
    """The ranks of the areas containing every point of the segment, sorted, distinct."""
    tested_offsets: np.ndarray
    tested: np.ndarray
    """The polygons to test a point of the segment against (none of an area in ``inside``)."""

    @classmethod
    def of(cls, polygons: np.ndarray, ranks: np.ndarray, prepared: np.ndarray) -> BandSegments:
        """The segments of ``polygons`` (non-empty), each polygon of the area ranked
        ``ranks[i]``; ``prepared`` holds them prepared, for the tests of whole stretches."""
        bounds = shapely.bounds(polygons)
        keys = _Keys.of(bounds)
        piece, band, lo, hi = _edge_extents(polygons, keys)
        piece, band, lo, hi = _merged(piece, band, lo, hi, keys)
        inside = _inside_gaps(piece, band, lo, hi, keys, prepared)
        # A tested stretch [lo, hi] takes the keys from lo up to just past hi; a gap of
        # inside points the keys from just past the stretch before it to the next one's lo.
        after = np.nextafter(keys.key(band, hi), np.inf)
        run_start = np.concatenate([keys.key(band, lo), after[:-1][inside]])
        run_end = np.concatenate([after, keys.key(band[1:][inside], lo[1:][inside])])
        run_piece = np.concatenate([piece, piece[:-1][inside]])
        is_inside = np.repeat([False, True], [len(piece), int(np.count_nonzero(inside))])
        starts = np.unique(np.concatenate([run_start, run_end]))
        first = np.searchsorted(starts, run_start)
        # A gap narrower than the keys' rounding has no key of its own: its points' keys are
        # those of the stretches beside it, where they are tested.
        count = np.maximum(np.searchsorted(starts, run_end) - first, 0)
        segment = np.repeat(first, count) + ranks_within_runs(count)
        run = np.repeat(np.arange(len(run_start)), count)
        n_segments = len(starts)
        rank = ranks[run_piece[run]]
        within = is_inside[run]
        inside_keys = distinct(segment[within] * np.int64(ranks.max() + 1) + rank[within])
        inside_segment, inside_rank = np.divmod(inside_keys, np.int64(ranks.max() + 1))
        tested_keys = distinct(segment[~within] * np.int64(len(polygons)) + run_piece[run[~within]])
        tested_segment, tested_piece = np.divmod(tested_keys, np.int64(len(polygons)))
        # A polygon of an area that contains the whole segment by another polygon needs no test.
        also_inside = _among(
            tested_segment * np.int64(ranks.max() + 1) + ranks[tested_piece], inside_keys
        )
        tested_segment, tested_piece = tested_segment[~also_inside], tested_piece[~also_inside]
        return cls(
            keys=keys,
            starts=starts,
            inside_offsets=_offsets(inside_segment, n_segments),
            inside=inside_rank,
            tested_offsets=_offsets(tested_segment, n_segments),
            tested=tested_piece,
        )

    def segment_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each point's segment; the points before every segment get the last, which has no
        areas (every run ends at a key that starts a segment)."""
        found = np.searchsorted(self.starts, self.keys.of_points(x, y), "right") - 1
        found[found < 0] = len(self.starts) - 1
        return found


@dataclass(frozen=True)
class _Keys:
    """A point's key: its band times a span wider than the map, plus its longitude from the
    map's west. Keys order points by band, then longitude; a band's keys never reach the
    next band's."""

    y0: float
    x0: float
    x1: float
    span: float

    @classmethod
    def of(cls, bounds: np.ndarray) -> _Keys:
        x0, x1 = float(bounds[:, 0].min()), float(bounds[:, 2].max())
        return cls(float(bounds[:, 1].min()), x0, x1, x1 - x0 + 4.0)

    def band(self, y: np.ndarray) -> np.ndarray:
        return np.floor((y - self.y0) / BAND_DEGREES)

    def key(self, band: np.ndarray, x: np.ndarray) -> np.ndarray:
        return band * self.span + (x - self.x0)

    def of_points(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.key(self.band(y), np.clip(x, self.x0 - 1.0, self.x1 + 1.0))


def _edge_extents(
    polygons: np.ndarray, keys: _Keys
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(polygon, band, west, east)``: the extent in longitude of the edges of every ring of
    the polygons within each band they cross (the band widened by :data:`MARGIN`), widened by
    :data:`MARGIN`; an extent per stretch of a ring within a band."""
    parts, part_of = shapely.get_parts(polygons, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    edge = np.flatnonzero(ring_of[1:] == ring_of[:-1])
    x1, y1, x2, y2 = coords[edge, 0], coords[edge, 1], coords[edge + 1, 0], coords[edge + 1, 1]
    first = keys.band(np.minimum(y1, y2) - MARGIN)
    last = keys.band(np.maximum(y1, y2) + MARGIN)
    bands = (last - first + 1).astype(np.int64)
    which = np.repeat(np.arange(len(edge)), bands)
    band = first[which] + ranks_within_runs(bands)
    x1, y1, x2, y2 = x1[which], y1[which], x2[which], y2[which]
    south = keys.y0 + band * BAND_DEGREES - MARGIN
    north = keys.y0 + (band + 1) * BAND_DEGREES + MARGIN
    rise = y2 - y1
    flat = rise == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t_south = np.where(flat, 0.0, (south - y1) / rise)
        t_north = np.where(flat, 1.0, (north - y1) / rise)
    t_from = np.clip(np.minimum(t_south, t_north), 0.0, 1.0)
    t_to = np.clip(np.maximum(t_south, t_north), 0.0, 1.0)
    xa, xb = x1 + t_from * (x2 - x1), x1 + t_to * (x2 - x1)
    # Consecutive edges of a ring in one band meet at a vertex in it: one extent covers them.
    ring = ring_of[edge[which]]
    joined = np.ones(len(ring), dtype=bool)
    joined[1:] = (ring[1:] != ring[:-1]) | (band[1:] != band[:-1])
    run = np.flatnonzero(joined)
    west = np.minimum.reduceat(np.minimum(xa, xb), run) - MARGIN
    east = np.maximum.reduceat(np.maximum(xa, xb), run) + MARGIN
    return part_of[ring_part[ring[run]]], band[run], west, east


def _merged(
    piece: np.ndarray, band: np.ndarray, lo: np.ndarray, hi: np.ndarray, keys: _Keys
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The overlapping extents of each polygon in each band merged: sorted by polygon, band,
    then west, disjoint within a polygon's band.

    Each extent's ends become whole multiples of a small power of two (west rounded down,
    east up: the extent only widens) packed under the polygon and band in one integer, so
    that a single sort orders the extents and a running maximum finds where each merged one
    ends."""
    band_index = (band - band.min()).astype(np.int64)
    group = piece.astype(np.int64) * np.int64(band_index.max() + 1) + band_index
    shift = min(52, 62 - int(group.max()).bit_length())
    quantum = 2.0 ** (math.ceil(math.log2(keys.span)) - shift)
    origin = keys.x0 - 2.0
    packed = group << np.int64(shift)
    west = packed | np.floor((lo - origin) / quantum).astype(np.int64)
    east = packed | np.ceil((hi - origin) / quantum).astype(np.int64)
    order = np.argsort(west)
    west, running = west[order], np.maximum.accumulate(east[order])
    starts = np.ones(len(west), dtype=bool)
    starts[1:] = west[1:] > running[:-1]
    first = np.flatnonzero(starts)
    last = np.append(first[1:], len(west)) - 1
    within = np.int64((1 << shift) - 1)
    return (
        piece[order[first]],
        band[order[first]],
        origin + (west[first] & within) * quantum,
        origin + (running[last] & within) * quantum,
    )


def _inside_gaps(
    piece: np.ndarray,
    band: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    keys: _Keys,
    prepared: np.ndarray,
) -> np.ndarray:
    """For each pair of consecutive merged extents, whether the gap between them (if they are
    the same polygon's, in the same band) lies inside the polygon: no edge crosses the gap, so
    its middle tells for all of it."""
    same = (piece[1:] == piece[:-1]) & (band[1:] == band[:-1])
    inside = np.zeros(len(same), dtype=bool)
    gap = np.flatnonzero(same)
    middle_x = (hi[gap] + lo[gap + 1]) / 2
    middle_y = keys.y0 + (band[gap] + 0.5) * BAND_DEGREES
    inside[gap] = shapely.contains_xy(prepared[piece[gap]], middle_x, middle_y)
    return inside


def _among(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` is one of ``sorted_values`` (sorted, distinct)."""
    at = np.searchsorted(sorted_values, values).clip(max=max(len(sorted_values) - 1, 0))
    return sorted_values[at] == values if len(sorted_values) else np.zeros(len(values), bool)


def _offsets(segment: np.ndarray, n_segments: int) -> np.ndarray:
    offsets = np.zeros(n_segments + 1, dtype=np.int64)
    np.cumsum(np.bincount(segment, minlength=n_segments), out=offsets[1:])
    return offsets
