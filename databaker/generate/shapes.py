"""Geometry helpers for the ballots export: unions, grid subdivision and WKT text."""

from __future__ import annotations

import numpy as np
import shapely

from databaker.generate.wards import polygonal, valid_rounded


def cover(cells: np.ndarray) -> shapely.Geometry:
    """Union of cells that tessellate exactly (coverage union, with a general fallback)."""
    merged = shapely.coverage_union_all(cells)
    return merged if shapely.is_valid(merged) else shapely.union_all(cells)


def subdivide(geom: shapely.Geometry) -> np.ndarray:
    """Cut each polygon of ``geom`` with a grid into pieces (like PostGIS ST_Subdivide).

    Each part gets a 2x2 to 6x6 grid depending on its vertex count; the pieces are rounded
    to 6 decimals, kept valid, and returned as single Polygons.
    """
    pieces = []
    for part in shapely.get_parts(geom):
        side = int(np.clip(np.ceil(np.sqrt(shapely.get_num_coordinates(part) / 256)), 2, 6))
        x0, y0, x1, y1 = part.bounds
        xs = np.round(np.linspace(x0, x1, side + 1), 6)
        ys = np.round(np.linspace(y0, y1, side + 1), 6)
        xs[0], ys[0], xs[-1], ys[-1] = x0 - 1, y0 - 1, x1 + 1, y1 + 1
        i, j = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        boxes = shapely.box(xs[i.ravel()], ys[j.ravel()], xs[i.ravel() + 1], ys[j.ravel() + 1])
        pieces.append(polygonal(shapely.intersection(part, boxes)))
    cut = np.concatenate(pieces)
    cut = cut[~shapely.is_missing(cut)]
    rounded = shapely.transform(cut, lambda xy: np.round(xy, 6) + 0.0)
    parts = shapely.get_parts(polygonal(valid_rounded(rounded)))
    return parts[~shapely.is_missing(parts) & (shapely.area(parts) > 0)]


def wkt(geoms: np.ndarray) -> list[str]:
    """PostGIS-style WKT with 6 decimals: ``POLYGON((x y,x y,...))`` (no optional spaces)."""
    text = shapely.to_wkt(geoms, rounding_precision=6, trim=False)
    return [t.replace(" (", "(").replace(", ", ",") for t in text.tolist()]
