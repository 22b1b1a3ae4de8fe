"""The embedded engine's point-in-area join: whole columns at a time, letters in parallel.

DuckDB's own ``ST_Contains`` join tests every point against an R-tree of areas row by row and
then groups the matches with a hash aggregate; at tens of millions of addresses that is most of
a bake. Here pyarrow reads and writes the tables (local files or S3 alike), and the join is
done on arrays:

1. the areas' polygons cut the map into segments of horizontal bands
   (:mod:`databaker.resources.band_segments`), each with the areas containing all of it and the
   polygons whose boundary crosses it;
2. a binary search finds each point's segment, which gives most of its areas with no test;
3. GEOS decides the points of segments a boundary crosses, in one vectorised ``contains_xy``
   call on prepared polygons, outside the GIL;
4. numpy merges the two into each point's sorted, distinct list of area IDs.

A few points (a rebake's) are joined by their polygons' bounding boxes instead
(:mod:`databaker.resources.box_candidates`), which builds nothing ahead.

The output is what the join's SQL writes: same columns, same lists, one partition per letter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import shapely

from databaker.arrays import distinct, ranks_within_runs
from databaker.parquet_leaves import string_leaves
from databaker.progress import Progress, logged
from databaker.resources.aws import S3Location, arrow_s3_filesystem, is_s3_url
from databaker.resources.band_segments import BandSegments
from databaker.resources.box_candidates import containing_pairs

POINTS_PER_CHUNK = 1 << 18
"""Points joined at a time (see ``AreaIndex.containing_by_chunk``): a chunk's arrays stay small
enough for the C allocator to reuse, where a whole letter's would be new memory, every page of
which costs a fault when first written (on this project's 2-core machine, most of a join)."""


FEW_POINTS = 200_000
"""Fewer points than this, asked of an index that has built no segments yet, are joined by
their polygons' bounding boxes instead (:mod:`databaker.resources.box_candidates`): building
the segments takes a second or more (0.9 s for 20,000 ballots' pieces, 2 to 5 s for a map's
organisations and divisions), which a letter of a million addresses repays and a rebake's
addresses in changed boxes, tens of thousands a letter, do not."""

LETTERS_READ_AHEAD = 1
"""On S3, letters read while others are joined: a letter's reading waits a few round trips
(a listing, each file's footer and columns) that would otherwise leave a core idle."""


class AreaIndex:
    """Areas (IDs and polygons) ready to answer "which areas contain each of these points"."""

    def __init__(self, area_ids: pa.Array, wkb: pa.Array) -> None:
        wkb_values = wkb.to_numpy(zero_copy_only=False)
        bounds = shapely.bounds(shapely.from_wkb(wkb_values))
        # An empty geometry has no bounds and contains nothing.
        kept = np.isfinite(bounds).all(axis=1)
        self._wkb, self._bounds = wkb_values[kept], bounds[kept]
        self._per_thread = threading.local()
        self._segments_lock = threading.Lock()
        self._built: BandSegments | None = None
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

    def _segments(self) -> BandSegments:
        """Built once, on first use, by whichever thread comes first."""
        with self._segments_lock:
            if self._built is None:
                self._built = BandSegments.of(
                    shapely.from_wkb(self._wkb), self._rank, self._prepared()
                )
            return self._built

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
        ID)`` with ``point`` counted from ``start``."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        if not len(self._wkb) or not len(x):
            return
        n_ids = np.int64(max(len(self._ids), 1))
        if self._built is None and len(x) < FEW_POINTS:
            point, polygon = containing_pairs(self._bounds, self._prepared(), x, y)
            yield (0, *np.divmod(distinct(point * n_ids + self._rank[polygon]), n_ids))
            return
        segments = self._segments()
        for start in range(0, len(x), POINTS_PER_CHUNK):
            part = slice(start, start + POINTS_PER_CHUNK)
            keys = self._containing_keys(segments, x[part], y[part], n_ids)
            yield (start, *np.divmod(keys, n_ids))

    def ids_containing(self, x: np.ndarray, y: np.ndarray) -> pa.ListArray:
        """For each point ``(x[i], y[i])``, the sorted distinct IDs of the areas containing it."""
        point, rank = self.containing(x, y)
        offsets = np.zeros(len(x) + 1, dtype=np.int32)
        np.cumsum(np.bincount(point, minlength=len(x)), out=offsets[1:])
        return pa.ListArray.from_arrays(pa.array(offsets), self._ids.take(rank))

    def _containing_keys(
        self, segments: BandSegments, x: np.ndarray, y: np.ndarray, n_ids: np.int64
    ) -> np.ndarray:
        """``point * n_ids + ID`` for each area containing a point, sorted, distinct: the
        areas containing the point's whole segment, and those of the polygons GEOS finds
        containing it among the ones whose boundary crosses the segment."""
        segment = segments.segment_of(x, y)
        point, rank = _expanded(segment, segments.inside_offsets, segments.inside)
        inside = point * n_ids + rank
        point, polygon = _expanded(segment, segments.tested_offsets, segments.tested)
        found = shapely.contains_xy(self._prepared()[polygon], x[point], y[point])
        tested = np.sort(point[found] * n_ids + self._rank[polygon[found]])
        # Two sorted runs: a stable sort merges them in one pass.
        return distinct(np.concatenate([inside, tested]), kind="stable")

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


def _expanded(
    segment: np.ndarray, offsets: np.ndarray, members: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(point, member)`` for every member of each point's segment (CSR ``offsets`` and
    ``members``), ordered by point, then as the segment lists them."""
    first = offsets[segment]
    counts = offsets[segment + 1] - first
    point = np.repeat(np.arange(len(segment)), counts)
    return point, members[np.repeat(first, counts) + ranks_within_runs(counts)]


def write_contains_join(
    *,
    points: str,
    areas: str,
    letters: Sequence[str],
    output: str,
    carried: Sequence[str],
    area_id: str,
    ids_column: str,
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
    workers: int,
    progress: Progress = logged,
) -> None:
    """Write ``output/first_letter=<L>/data_0.parquet`` for each letter that has points: each
    point with its ``carried`` columns and ``ids_column``, the list ``lists`` gives for the
    letter's longitudes and latitudes.

    ``points`` and ``output`` are folders, local or ``s3://``. pyarrow reads and writes the
    letters, ``workers`` joined at a time, and on S3 ``LETTERS_READ_AHEAD`` more read
    meanwhile: memory is bounded by the largest letters in flight (eight at once on S3 took a
    30M bake's peak from 2.1 to 3.2 GB; one read ahead, 2.22 to 2.30 GB, for a join step of
    5.1 to 5.4 s against 6.4 s at 1M addresses and 50 ms a request), and the rows keep each
    letter's order. ``progress`` counts the letters joined.
    """
    filesystem, points_path = filesystem_of(points)
    _, output_path = filesystem_of(output)
    joining = threading.Semaphore(max(workers, 1))
    ahead = LETTERS_READ_AHEAD if isinstance(filesystem, pafs.S3FileSystem) else 0

    def write_letter(letter: str) -> None:
        folder = f"{points_path}first_letter={letter}"
        rows = read_parquet_folder(filesystem, folder, [*carried, "longitude", "latitude"])
        if rows is None or rows.num_rows == 0:
            return
        with joining:
            ids = lists(rows["longitude"].to_numpy(), rows["latitude"].to_numpy())
        joined = rows.select(list(carried)).append_column(ids_column, ids)
        write_parquet_file(
            filesystem,
            f"{output_path}first_letter={letter}/data_0.parquet",
            joined,
            **joined_parquet(joined.schema, [ids_column]),
        )

    with (
        progress("joining points and areas", len(letters), "letters") as joined,
        ThreadPoolExecutor(max_workers=max(workers, 1) + ahead) as pool,
    ):
        for _ in pool.map(write_letter, sorted(letters)):
            joined.advance()


def joined_parquet(schema: pa.Schema, lists: Sequence[str]) -> dict[str, Any]:
    """How a joined table's letter is written: the strings of the ``lists`` columns
    dictionary-encoded; the UPRNs are unique strings, whose dictionaries and statistics would
    cost time for a table that is read whole."""
    return {
        "compression": "snappy",
        "use_dictionary": string_leaves(schema, lists),
        "write_statistics": False,
    }


def read_parquet_folder(
    filesystem: pafs.FileSystem, folder: str, columns: Sequence[str]
) -> pa.Table | None:
    """The ``columns`` of the parquet files under ``folder`` (a path on ``filesystem``), in
    the order of their paths, as ``pq.read_table`` of the folder reads them; None when it holds
    none. Files whose names start with ``.`` or ``_`` are not read.

    The folder is listed once, and the listing gives each file's size: on S3 every request
    waits a round trip, and ``pq.read_table`` of a folder first asks twice whether the path is
    a file or a folder (a HEAD and a listing each time) before listing it."""
    factory = ds.FileSystemDatasetFactory(
        filesystem,
        pafs.FileSelector(folder, allow_not_found=True, recursive=True),
        ds.ParquetFileFormat(
            default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=True)
        ),
    )
    dataset = factory.finish()
    if not dataset.files:
        return None
    return dataset.to_table(columns=list(columns))


def write_parquet_file(
    filesystem: pafs.FileSystem, path: str, table: pa.Table, **options: Any
) -> None:
    """``pq.write_table`` to ``path`` on ``filesystem``, its folder made first where folders
    exist: on S3, pyarrow's ``create_dir`` would write an empty marker object for each level
    of the path, a request each, that no reader needs."""
    if not isinstance(filesystem, pafs.S3FileSystem):
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    pq.write_table(table, path, filesystem=filesystem, **options)


def filesystem_of(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding ``uri`` and the path pyarrow knows it by there."""
    if is_s3_url(uri):
        location = S3Location.parse(uri)
        return arrow_s3_filesystem(), f"{location.bucket}/{location.key}"
    return pafs.LocalFileSystem(), uri
