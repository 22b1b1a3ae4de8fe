"""The embedded engine's point-in-area join: whole columns at a time, letters in parallel.

DuckDB's own ``ST_Contains`` join tests every point against an R-tree of areas row by row and
then groups the matches with a hash aggregate; at tens of millions of addresses that is most of
a bake. Here pyarrow reads and writes the tables (local files or S3 alike), and the join is
done on arrays:

1. points are sorted into horizontal bands of :data:`BAND_DEGREES`, by longitude within a band;
2. each area's bounding box becomes one contiguous slice of that order per band it spans, found
   with a binary search, so candidate (point, area) pairs cost no per-point Python work;
3. GEOS decides containment for all candidates in one vectorised ``contains_xy`` call on
   prepared polygons, outside the GIL;
4. numpy turns the matching pairs into each point's sorted, distinct list of area IDs.

The output is what the join's SQL writes: same columns, same lists, one partition per letter.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import shapely

from databaker.parquet_leaves import string_leaves
from databaker.progress import Progress, logged
from databaker.resources.aws import S3Location, arrow_s3_filesystem, is_s3_url

BAND_DEGREES = 0.005
"""Band height: about 550 m, a few bands per urban ward."""
POINTS_PER_CHUNK = 1 << 18
"""Points joined at a time (see ``AreaIndex.containing_by_chunk``)."""
CANDIDATES_PER_CHUNK = 1 << 20
"""Candidate pairs made and tested at a time (see ``AreaIndex._containing_pairs``)."""


class AreaIndex:
    """Areas (IDs and polygons) ready to answer "which areas contain each of these points"."""

    def __init__(self, area_ids: pa.Array, wkb: pa.Array) -> None:
        wkb_values = wkb.to_numpy(zero_copy_only=False)
        bounds = shapely.bounds(shapely.from_wkb(wkb_values))
        # An empty geometry has no bounds and contains nothing.
        kept = np.isfinite(bounds).all(axis=1)
        self._wkb, self._bounds = wkb_values[kept], bounds[kept]
        self._per_thread = threading.local()
        ids, ranks = np.unique(area_ids.to_numpy(zero_copy_only=False), return_inverse=True)
        self._ids = pa.array(ids, type=pa.string())
        self._rank = ranks.astype(np.int64)[kept]

    @classmethod
    def from_arrow(cls, areas: pa.Table, id_column: str) -> AreaIndex:
        return cls(areas[id_column].combine_chunks(), areas["wkb"].combine_chunks())

    @property
    def ids(self) -> pa.Array:
        """The distinct area IDs, sorted: what :meth:`containing` numbers them by."""
        return self._ids

    def containing(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every ``(point, ID)`` pair where a piece of the area with that ID contains the point
        ``(x[point], y[point])``, once, ordered by point then ID; the ID as its position in
        :attr:`ids`."""
        parts = [(start + p, r) for start, p, r in self.containing_by_chunk(x, y)]
        if not parts:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate([p for p, _ in parts]), np.concatenate([r for _, r in parts])

    def containing_by_chunk(
        self, x: np.ndarray, y: np.ndarray
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """:meth:`containing`, :data:`POINTS_PER_CHUNK` points at a time: ``(start, point,
        ID)`` with ``point`` counted from ``start``. Arrays of a chunk's pairs stay small
        enough for the C allocator to reuse (see :meth:`_containing_pairs`)."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        n_ids = max(len(self._ids), 1)
        for start in range(0, len(x), POINTS_PER_CHUNK):
            part = slice(start, start + POINTS_PER_CHUNK)
            point, area = self._containing_pairs(x[part], y[part])
            yield (start, *np.divmod(_distinct(point * n_ids + self._rank[area]), n_ids))

    def ids_containing(self, x: np.ndarray, y: np.ndarray) -> pa.ListArray:
        """For each point ``(x[i], y[i])``, the sorted distinct IDs of the areas containing it."""
        point, rank = self.containing(x, y)
        offsets = np.zeros(len(x) + 1, dtype=np.int32)
        np.cumsum(np.bincount(point, minlength=len(x)), out=offsets[1:])
        return pa.ListArray.from_arrays(pa.array(offsets), self._ids.take(rank))

    def _containing_pairs(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(point, area)`` index pairs where the area contains the point.

        The candidates (each area's slices of the sorted points, band by band) are made and
        tested :data:`CANDIDATES_PER_CHUNK` at a time: arrays of a whole letter's candidates
        (tens of millions where areas nest, as councils in counties) are larger than the C
        allocator keeps for reuse, so each would be new memory, every page of which costs a
        fault when first written: on this project's 2-core machine that was most of a join.
        """
        if len(x) == 0 or len(self._bounds) == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        x0, y0 = min(x.min(), self._bounds[:, 0].min()), min(y.min(), self._bounds[:, 1].min())
        span = max(x.max(), self._bounds[:, 2].max()) - x0 + 1.0

        def band(lat: np.ndarray) -> np.ndarray:
            return np.floor((lat - y0) / BAND_DEGREES)

        point_keys = band(y) * span + (x - x0)
        order = np.argsort(point_keys)
        keys = point_keys[order]

        first, last = band(self._bounds[:, 1]), band(self._bounds[:, 3])
        bands_per_area = (last - first + 1).astype(np.int64)
        slice_area = np.repeat(np.arange(len(self._bounds)), bands_per_area)
        band_of = first[slice_area] + _ranks_within_runs(bands_per_area)
        lo = np.searchsorted(keys, band_of * span + (self._bounds[slice_area, 0] - x0), "left")
        hi = np.searchsorted(keys, band_of * span + (self._bounds[slice_area, 2] - x0), "right")
        sizes = hi - lo
        ends = np.cumsum(sizes)
        cuts = np.searchsorted(
            ends, np.arange(CANDIDATES_PER_CHUNK, ends[-1], CANDIDATES_PER_CHUNK)
        )
        bounds = np.unique(np.concatenate([[0], cuts + 1, [len(sizes)]]).clip(0, len(sizes)))
        prepared = self._prepared()
        points, areas = [], []
        for start, stop in itertools.pairwise(bounds):
            part = slice(start, stop)
            area = np.repeat(slice_area[part], sizes[part])
            point = order[np.repeat(lo[part], sizes[part]) + _ranks_within_runs(sizes[part])]
            in_box = (y[point] >= self._bounds[area, 1]) & (y[point] <= self._bounds[area, 3])
            point, area = point[in_box], area[in_box]
            inside = shapely.contains_xy(prepared[area], x[point], y[point])
            points.append(point[inside])
            areas.append(area[inside])
        return np.concatenate(points), np.concatenate(areas)

    def _prepared(self) -> np.ndarray:
        """This thread's own prepared polygons. GEOS builds a prepared polygon's index lazily,
        on its first query, so threads sharing one would race to build it (and have crashed
        the process doing so); each thread parses and prepares its own copy instead."""
        polygons = getattr(self._per_thread, "polygons", None)
        if polygons is None:
            polygons = shapely.from_wkb(self._wkb)
            shapely.prepare(polygons)
            self._per_thread.polygons = polygons
        return polygons


def _distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values (``np.unique`` is many times slower on large int arrays)."""
    values = np.sort(values)
    keep = np.ones(len(values), dtype=bool)
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _ranks_within_runs(lengths: np.ndarray) -> np.ndarray:
    """``[0, 1, .., lengths[0]-1, 0, 1, .., lengths[1]-1, ...]`` without a Python loop."""
    starts = np.cumsum(lengths) - lengths
    return np.arange(lengths.sum()) - np.repeat(starts, lengths)


def write_contains_join(
    *,
    points: str,
    areas: str,
    letters: Sequence[str],
    output: str,
    carried: Sequence[str],
    area_id: str,
    ids_column: str,
    repeating: Sequence[str] = (),
    workers: int,
    progress: Progress = logged,
) -> None:
    """Write ``output/first_letter=<L>/data_0.parquet`` for each letter that has points, each
    point with the sorted distinct ``area_id`` of the areas containing it
    (:func:`write_point_lists` says how).

    pyarrow reads the areas' geometry as the WKB it is stored as (DuckDB would read it as a
    geometry, but as a plain BLOB from a table of no rows, whose file has no GeoParquet
    metadata).
    """
    index = AreaIndex.from_arrow(area_table(areas, [area_id]), area_id)
    write_point_lists(
        points=points,
        letters=letters,
        output=output,
        carried=carried,
        ids_column=ids_column,
        lists=index.ids_containing,
        repeating=repeating,
        workers=workers,
        progress=progress,
    )


def area_table(areas: str, columns: Sequence[str]) -> pa.Table:
    """The ``columns`` of the areas table in the folder ``areas`` and its geometry as ``wkb``."""
    filesystem, path = filesystem_of(areas)
    table = pq.read_table(path, columns=[*columns, "geometry"], filesystem=filesystem)
    return table.rename_columns([*columns, "wkb"])


def write_point_lists(
    *,
    points: str,
    letters: Sequence[str],
    output: str,
    carried: Sequence[str],
    ids_column: str,
    lists: Callable[[np.ndarray, np.ndarray], pa.Array],
    repeating: Sequence[str] = (),
    workers: int,
    progress: Progress = logged,
) -> None:
    """Write ``output/first_letter=<L>/data_0.parquet`` for each letter that has points: each
    point with its ``carried`` columns and ``ids_column``, the list ``lists`` gives for the
    letter's longitudes and latitudes.

    ``points`` and ``output`` are folders, local or ``s3://``. pyarrow reads and writes the
    letters, ``workers`` at a time; memory is bounded by the largest letters in flight. The
    ``repeating`` columns are read and written dictionary-encoded: a string repeated on every
    row would cost more to materialise and encode than the rest of the row. ``progress``
    counts the letters joined.
    """
    filesystem, points_path = filesystem_of(points)
    _, output_path = filesystem_of(output)

    def write_letter(letter: str) -> None:
        folder = f"{points_path}first_letter={letter}"
        if filesystem.get_file_info(folder).type != pafs.FileType.Directory:
            return
        rows = pq.read_table(
            folder,
            columns=[*carried, "longitude", "latitude"],
            filesystem=filesystem,
            read_dictionary=list(repeating),
        )
        if rows.num_rows == 0:
            return
        ids = lists(rows["longitude"].to_numpy(), rows["latitude"].to_numpy())
        target = f"{output_path}first_letter={letter}"
        filesystem.create_dir(target, recursive=True)
        joined = rows.select(list(carried)).append_column(ids_column, ids)
        pq.write_table(
            joined,
            f"{target}/data_0.parquet",
            filesystem=filesystem,
            compression="snappy",
            # Other carried columns are mostly unique strings: encoding them as dictionaries
            # and gathering their statistics would cost time for a table that is read whole.
            use_dictionary=string_leaves(joined.schema, [ids_column, *repeating]),
            write_statistics=False,
        )

    with (
        progress("joining points and areas", len(letters), "letters") as joined,
        ThreadPoolExecutor(max_workers=max(workers, 1)) as pool,
    ):
        for _ in pool.map(write_letter, sorted(letters)):
            joined.advance()


def filesystem_of(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding ``uri`` and the path pyarrow knows it by there."""
    if is_s3_url(uri):
        location = S3Location.parse(uri)
        return arrow_s3_filesystem(), f"{location.bucket}/{location.key}"
    return pafs.LocalFileSystem(), uri
