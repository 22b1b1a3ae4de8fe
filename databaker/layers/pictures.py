"""Pictures of a bake, drawn as PNG for the version's metadata: maps of addresses over areas.

A map is a :class:`Frame`: the extent in longitude and latitude, drawn with square pixels on
the ground (a degree of longitude is narrower than one of latitude by the cosine of the
latitude), at a known place in the PNG, so that any point's pixel is known
(:meth:`Frame.pixel`). Addresses are painted into a raster of square cells on whole columns
(one numpy pass, however many addresses), each cell coloured by the class most of its
addresses have (ties to the higher class); areas are one path of all their rings, simplified
to the pixel. Nothing is fetched: no base map, only matplotlib's own fonts.

matplotlib is imported when a picture is drawn, not with the module: the command line's
lookups never draw.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.path import Path

MAP_WIDTH, MAP_HEIGHT = 640, 720
"""The most pixels the map takes; the longer side of the extent fills its limit."""
CELL = 4
"""Map sizes are multiples of this, so that cells of 1, 2 or 4 pixels tile the map."""
MARGIN = 10
LEGEND_WIDTH = 230
LEGEND_HEIGHT = 220
"""The least height of a picture, for its legend."""
DPI = 100
OUTLINE = "#202020"
NO_ADDRESS = "#d62728"
"""The fill and ring of an area whose ID reaches no address; no address class uses red."""
NO_ADDRESS_ALPHA = 0.55
BACKGROUND_ADDRESS = "#d9d9d9"


@dataclass(frozen=True)
class Frame:
    """A map's extent and its box in the PNG: ``width`` by ``height`` pixels whose top left
    corner is pixel ``(top, left)``; a pixel spans ``dx`` degrees of longitude and ``dy`` of
    latitude."""

    west: float
    north: float
    dx: float
    dy: float
    width: int
    height: int
    left: int = MARGIN
    top: int = MARGIN

    @property
    def east(self) -> float:
        return self.west + self.width * self.dx

    @property
    def south(self) -> float:
        return self.north - self.height * self.dy

    @property
    def png_width(self) -> int:
        return self.left + self.width + MARGIN + LEGEND_WIDTH

    @property
    def png_height(self) -> int:
        return max(self.top + self.height + MARGIN, LEGEND_HEIGHT)

    def pixel(self, lon: float, lat: float) -> tuple[int, int]:
        """The PNG's ``(row, column)`` of the point."""
        return (
            self.top + math.floor((self.north - lat) / self.dy),
            self.left + math.floor((lon - self.west) / self.dx),
        )

    @classmethod
    def around(cls, lons: np.ndarray, lats: np.ndarray, geometries: np.ndarray) -> Frame | None:
        """The frame of the points and the geometries' bounds, padded by 2%; ``None`` when
        there is nothing to frame."""
        xs, ys = [lons[np.isfinite(lons)]], [lats[np.isfinite(lats)]]
        if len(geometries):
            bounds = shapely.total_bounds(geometries)
            if np.isfinite(bounds).all():
                xs.append(bounds[[0, 2]])
                ys.append(bounds[[1, 3]])
        x, y = np.concatenate(xs), np.concatenate(ys)
        if not len(x):
            return None
        pad = max(float(x.max() - x.min()), float(y.max() - y.min())) * 0.02 or 0.01
        west, east = float(x.min()) - pad, float(x.max()) + pad
        south, north = float(y.min()) - pad, float(y.max()) + pad
        shrink = max(math.cos(math.radians((south + north) / 2)), 0.2)
        dy = max((east - west) * shrink / MAP_WIDTH, (north - south) / MAP_HEIGHT)
        dx = dy / shrink
        # Up to a whole number of cells; the epsilon keeps a side at its limit from rounding up.
        width = CELL * math.ceil((east - west) / dx / CELL - 1e-9)
        height = CELL * math.ceil((north - south) / dy / CELL - 1e-9)
        return cls(west=west, north=north, dx=dx, dy=dy, width=width, height=height)


@dataclass(frozen=True)
class Picture:
    """A PNG and where its map is in it."""

    png: bytes
    frame: Frame

    def markdown(self, alt: str) -> str:
        """The picture inline, as a data URI (the UI shows it on the asset's page)."""
        return f"![{alt}](data:image/png;base64,{base64.b64encode(self.png).decode('ascii')})"


@dataclass(frozen=True)
class Classes:
    """Addresses in classes: ``classes[i]`` of address ``i`` indexes ``colours`` and
    ``labels`` (the legend's, with how many addresses of the class are drawn)."""

    lons: np.ndarray
    lats: np.ndarray
    classes: np.ndarray
    colours: Sequence[str]
    labels: Sequence[str]


@dataclass(frozen=True)
class Shapes:
    """Polygons ready to draw in a frame: one path of all their rings, simplified to half a
    pixel (``None`` when nothing is left), and, when asked for, a point inside each piece (a
    tiny area simplifies to nothing; its point is still drawn)."""

    path: Path | None
    points: np.ndarray

    @classmethod
    def of(cls, geometries: np.ndarray, frame: Frame, *, points: bool = False) -> Shapes:
        inside = shapely.get_coordinates(shapely.point_on_surface(geometries)) if points else None
        return cls(_path(geometries, frame.dy / 2), np.empty((0, 2)) if inside is None else inside)


def load_matplotlib() -> None:
    """Import what drawing uses, a third of a second of work: done while other threads read,
    it is not waited for afterwards."""
    import matplotlib.backends.backend_agg
    import matplotlib.figure
    import matplotlib.lines
    import matplotlib.patches  # noqa: F401


def draw_map(
    frame: Frame,
    addresses: Classes,
    *,
    cell: int,
    areas: Shapes | None = None,
    empty: Shapes | None = None,
    area_label: str = "",
    empty_label: str = "",
    background: tuple[np.ndarray, np.ndarray] | None = None,
) -> Picture:
    """The map, bottom up: ``empty`` areas filled in red, ``background`` points in light
    grey, ``addresses`` in squares of ``cell`` pixels, ``areas`` outlined (half transparent, so
    that addresses show through dense outlines), then a red ring on each empty area."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    figure, axes = _canvas(frame)
    present = np.bincount(addresses.classes, minlength=len(addresses.colours)) > 0
    legend: list = [
        Patch(color=colour, label=label)
        for colour, label, shown in zip(addresses.colours, addresses.labels, present, strict=True)
        if shown
    ]
    if areas is not None and areas.path is not None:
        _add_path(axes, areas.path, face="none", edge=OUTLINE, alpha=0.5, width=0.3, zorder=3)
        legend.append(Line2D([], [], color=OUTLINE, lw=0.8, label=area_label))
    if empty is not None and (empty.path is not None or len(empty.points)):
        if empty.path is not None:
            _add_path(
                axes, empty.path, face=NO_ADDRESS, edge=NO_ADDRESS, alpha=NO_ADDRESS_ALPHA, zorder=1
            )
        axes.scatter(
            empty.points[:, 0],
            empty.points[:, 1],
            s=120,
            facecolors="none",
            edgecolors=NO_ADDRESS,
            linewidths=1.2,
            zorder=4,
        )
        legend.append(
            Line2D([], [], color=NO_ADDRESS, marker="o", mfc="none", ls="none", label=empty_label)
        )
    if background is not None and len(background[0]):
        lons, lats = background
        grey = Classes(lons, lats, np.zeros(len(lons), np.int64), [BACKGROUND_ADDRESS], [""])
        _paint(axes, frame, grey, CELL // 2)
    _paint(axes, frame, addresses, cell)
    figure.legend(
        handles=legend,
        loc="upper left",
        bbox_to_anchor=(
            (frame.left + frame.width + MARGIN) / frame.png_width,
            1 - MARGIN / frame.png_height,
        ),
        frameon=False,
        fontsize=8,
        handlelength=1.2,
    )
    return Picture(_png(figure), frame)


def _canvas(frame: Frame) -> tuple[Figure, Axes]:
    """A figure of the frame's PNG size whose axes cover exactly the frame's box."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = frame.png_width, frame.png_height
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    axes = figure.add_axes(
        (
            frame.left / width,
            1 - (frame.top + frame.height) / height,
            frame.width / width,
            frame.height / height,
        )
    )
    axes.set_xlim(frame.west, frame.east)
    axes.set_ylim(frame.south, frame.north)
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_color("#9a9a9a")
        spine.set_linewidth(0.6)
    return figure, axes


def _paint(axes: Axes, frame: Frame, addresses: Classes, cell: int) -> None:
    """Addresses as a raster of ``cell``-pixel squares, each its addresses' commonest class."""
    from matplotlib.colors import to_rgba_array

    columns, rows = frame.width // cell, frame.height // cell
    x = np.floor((addresses.lons - frame.west) / (frame.dx * cell))
    y = np.floor((frame.north - addresses.lats) / (frame.dy * cell))
    inside = (x >= 0) & (x < columns) & (y >= 0) & (y < rows)
    kinds = len(addresses.colours)
    keys = (y[inside].astype(np.int64) * columns + x[inside].astype(np.int64)) * kinds
    found, counts = np.unique(keys + addresses.classes[inside], return_counts=True)
    cells, classes = found // kinds, found % kinds
    order = np.lexsort((classes, counts, cells))
    last = order[np.append(cells[order][1:] != cells[order][:-1], True)] if len(order) else order
    raster = np.zeros((rows * columns, 4), np.uint8)
    palette = np.round(to_rgba_array(list(addresses.colours)) * 255).astype(np.uint8)
    raster[cells[last]] = palette[classes[last]]
    axes.imshow(
        raster.reshape(rows, columns, 4),
        extent=(frame.west, frame.east, frame.south, frame.north),
        origin="upper",
        interpolation="nearest",
        aspect="auto",
        zorder=2,
    )


def _path(geometries: np.ndarray, tolerance: float) -> Path | None:
    """One path of every ring of the geometries' polygons, simplified to ``tolerance``;
    exteriors and holes wound opposite ways, so that filling leaves the holes empty."""
    from matplotlib.path import Path

    polygons = shapely.simplify(_polygons(geometries), tolerance, preserve_topology=False)
    polygons = shapely.normalize(polygons[~shapely.is_empty(polygons)])
    rings = shapely.get_rings(polygons)
    if not len(rings):
        return None
    vertices = shapely.get_coordinates(rings)
    sizes = shapely.get_num_coordinates(rings)
    codes = np.full(len(vertices), Path.LINETO, dtype=Path.code_type)
    codes[np.cumsum(sizes) - sizes] = Path.MOVETO
    return Path(vertices, codes)


def _polygons(geometries: np.ndarray) -> np.ndarray:
    """The polygons of the geometries and of their parts, in order. Polygons are taken as
    they are: ``get_parts`` would copy every one, millions of coordinates for a country's
    areas, to keep a few."""
    polygon = shapely.GeometryType.POLYGON
    plain = shapely.get_type_id(geometries) == polygon
    if plain.all():
        return geometries
    outer, outer_of = shapely.get_parts(geometries[~plain], return_index=True)
    parts, part_of = shapely.get_parts(outer, return_index=True)
    owners = np.concatenate([np.flatnonzero(plain), np.flatnonzero(~plain)[outer_of[part_of]]])
    every = np.concatenate([geometries[plain], parts])[np.argsort(owners, kind="stable")]
    return every[shapely.get_type_id(every) == polygon]


def _add_path(
    axes: Axes, path: Path, *, face: str, edge: str, alpha: float, zorder: float, width: float = 1
) -> None:
    """Added as a plain artist: ``add_patch`` would walk every vertex in Python to widen the
    axes' limits, which the frame fixes anyway."""
    from matplotlib.patches import PathPatch

    axes.add_artist(
        PathPatch(path, facecolor=face, edgecolor=edge, alpha=alpha, linewidth=width, zorder=zorder)
    )


def _png(figure: Figure) -> bytes:
    sink = io.BytesIO()
    figure.savefig(sink, format="png", dpi=DPI, metadata={"Software": None})
    return sink.getvalue()
