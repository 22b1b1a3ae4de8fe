"""Letters of a joined table that a rebuild keeps as they are: their rows cannot have changed.

A nightly rebuild after a changed input (one ballot more in the export) runs on an AddressBase
that has not changed. In a layer whose list for an address depends only on the input's rows
whose geometry contains the address (``LayerInput.contained_by``), an address's list can change
only where it lies in the box of an input row that was added or removed (a changed row is both).
A letter none of whose addresses lies in such a box already holds exactly the rows the join
would write: the rebuild keeps it, and its partition's token with it, so the version stage
reuses what it derived from the letter too (:mod:`databaker.layers.outcode_files`).

What a joined letter was built from is in its record (``PartitionRecord.built_from``): the
token of the AddressBase letter it was joined from, the code that joined it, and the version of
the input's rows. That version is the digest of the set of the rows' digests, and the rows it
stands for are kept in the joined table as ``_areas/<version>.parquet``: each row's digest and
its geometry's box. Anything not known (a letter without a record, an areas file gone, other
code) rebuilds the letter.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

import databaker
from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.concurrency import threads_for
from databaker.partitions import first_letter_partitions
from databaker.resources import LayerStore
from databaker.staging import (
    PartitionRecord,
    is_data_file,
    partition_prefix,
    partition_records,
    write_partition_record,
)

AREAS_FOLDER = "_areas/"
"""In a joined table: the input rows its letters were built from, one file per version."""
_EDGES = ("xmin", "ymin", "xmax", "ymax")
_AREAS_SCHEMA = pa.schema([("digest", pa.string())] + [(edge, pa.float64()) for edge in _EDGES])
_CELLS = 1024
"""Cells a side of the grid that tests addresses against the changed areas' boxes."""


@dataclass(frozen=True)
class InputRows:
    """The input table's rows as the join sees them: a digest of each row's ``columns``, and
    each row's geometry as WKB (boxes are computed only where needed)."""

    digests: np.ndarray
    """The SHA-256 of each row's columns, in hex (``U64``: numpy's fixed-width bytes would drop
    a digest's trailing zero bytes)."""
    wkb: pa.Array

    @cached_property
    def version(self) -> str:
        """The digest of the set of rows: the same rows in any order have the same version."""
        return hashlib.sha256("".join(np.sort(self.digests)).encode()).hexdigest()

    def boxes(self, positions: np.ndarray | None = None) -> np.ndarray:
        """:func:`boxes_of` the rows at ``positions`` (all by default)."""
        return boxes_of(
            self.wkb if positions is None else self.wkb.take(pa.array(positions, pa.int64()))
        )


def boxes_of(wkb: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``(n, 4)`` boxes (xmin, ymin, xmax, ymax) of WKB geometries; NaN for a row without
    geometry."""
    return shapely.bounds(shapely.from_wkb(_plain(wkb).to_numpy(zero_copy_only=False)))


def table_rows(
    store: LayerStore, prefix: str, columns: Sequence[str] | None = None
) -> pa.Table | None:
    """The ``columns`` (all by default) of the table whose files are under ``prefix``; None
    when it has no data files."""
    tables = []
    for key in store.list_keys(prefix):
        if is_data_file(key):
            with store.open_input(key) as source:
                tables.append(pq.read_table(source, columns=columns))
    return pa.concat_tables(tables) if tables else None


def input_rows(
    store: LayerStore, table_prefix: str, columns: Sequence[str], geometry: str
) -> InputRows:
    """The rows of the input table under ``table_prefix``. A row's digest covers ``columns``
    (those the join reads: a change elsewhere, such as a row's line in the export, changes no
    address), each value length-prefixed. The loop is per input row (tens of thousands of areas),
    never per address."""
    read = table_rows(store, table_prefix, list(dict.fromkeys([*columns, geometry])))
    table = read if read is not None else pa.table({c: pa.array([]) for c in columns})
    wkb = _plain(table[geometry]) if read is not None else pa.array([], pa.binary())
    values = [_plain(table[c]).to_pylist() for c in columns]
    digests = np.array([_row_digest(row) for row in zip(*values, strict=True)], dtype="U64")
    return InputRows(digests.reshape(-1), wkb)


def _plain(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return array.storage if isinstance(array, pa.ExtensionArray) else array


def _row_digest(row: Iterable[object]) -> str:
    digest = hashlib.sha256()
    for value in row:
        if value is None:
            digest.update(b"\xff" * 8)
            continue
        data = value if isinstance(value, bytes) else str(value).encode()
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


@cache
def code_version() -> str:
    """A digest of the project's code (its Python and SQL): a letter joined by other code is
    rebuilt, whichever part of the join changed."""
    root = Path(databaker.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".sql") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class LetterPlan:
    """Which letters of a rebuild are joined again, which are kept, and what each is built
    from (its record's ``built_from``)."""

    rebuilt: list[str]
    kept: dict[str, PartitionRecord]
    """Each kept letter with its record as the plan read it."""
    built_from: dict[str, dict[str, str]]
    rejoinable: dict[str, Rejoinable] = field(default_factory=dict)
    """Rebuilt letters whose rows can have changed only at the addresses in changed areas
    (:mod:`databaker.layers.rejoined_addresses`)."""


@dataclass(frozen=True)
class Rejoinable:
    """A letter with addresses in changed areas, whose other addresses keep the lists it holds
    under ``record``."""

    record: PartitionRecord
    changed: BoxGrid
    """Covers the boxes of the input rows added or removed since the letter was built."""


def letter_plan(
    store: LayerStore,
    *,
    joined_prefix: str,
    letters: Sequence[str],
    engine: str,
    rows: InputRows | None,
) -> LetterPlan:
    """The plan for rebuilding ``letters`` of the joined table under ``joined_prefix`` with
    ``engine`` from the input ``rows`` (``None``: the layer's join is not local to the
    addresses, and every letter is joined again)."""
    join = f"{engine} {code_version()}"
    built_from = {}
    grids: dict[str, BoxGrid | None] = {}  # by earlier areas version; None: rows not known
    candidates: dict[str, BoxGrid] = {}
    records: dict[str, PartitionRecord] = {}
    addressbase_records = partition_records(store, ADDRESSBASE_PARTITIONED_TABLE.prefix, letters)
    joined_records = partition_records(store, joined_prefix, letters) if rows is not None else {}
    for letter in letters:
        addressbase = addressbase_records[letter]
        built_from[letter] = {"addressbase": addressbase.token if addressbase else "", "join": join}
        if rows is None:
            continue
        built_from[letter]["areas"] = rows.version
        record = joined_records[letter]
        if addressbase is None or record is None:
            continue
        earlier = record.built_from
        if earlier.get("addressbase") != addressbase.token or earlier.get("join") != join:
            continue
        version = earlier.get("areas", "")
        if version not in grids:
            boxes = _changed_boxes(store, joined_prefix, version, rows)
            grids[version] = None if boxes is None else BoxGrid.of(boxes)
        grid = grids[version]
        if grid is not None:
            candidates[letter], records[letter] = grid, record

    def unchanged(letter: str) -> bool:
        grid = candidates[letter]
        return grid.empty or not _any_address_in(store, letter, grid)

    with ThreadPoolExecutor(threads_for(store.in_flight(), len(candidates))) as pool:
        keep = dict(zip(candidates, pool.map(unchanged, candidates), strict=True))
    kept = {letter: records[letter] for letter in letters if keep.get(letter)}
    rebuilt = [letter for letter in letters if letter not in kept]
    rejoinable = {
        letter: Rejoinable(records[letter], candidates[letter])
        for letter in rebuilt
        if letter in candidates
    }
    return LetterPlan(rebuilt, kept, built_from, rejoinable)


def _changed_boxes(
    store: LayerStore, joined_prefix: str, version: str, rows: InputRows
) -> np.ndarray | None:
    """The boxes of the rows in one of the two versions and not the other; ``None`` when the
    earlier version's rows are not known."""
    key = f"{joined_prefix}{AREAS_FOLDER}{version}.parquet"
    if not version or not store.exists(key):
        return None
    with store.open_input(key) as source:
        earlier = pq.read_table(source)
    before, now = earlier["digest"].to_pylist(), rows.digests.tolist()
    before_set, now_set = set(before), set(now)
    removed = np.array([digest not in now_set for digest in before], np.bool_)
    added = np.array([i for i, digest in enumerate(now) if digest not in before_set], np.int64)
    removed_boxes = np.column_stack(
        [earlier[edge].to_numpy(zero_copy_only=False)[removed] for edge in _EDGES]
    )
    boxes = np.concatenate([removed_boxes.reshape(-1, 4), rows.boxes(added).reshape(-1, 4)])
    return boxes[~np.isnan(boxes).any(axis=1)]


def _any_address_in(store: LayerStore, letter: str, grid: BoxGrid) -> bool:
    """Whether an address of the AddressBase letter may lie in one of the grid's boxes, read a
    row group at a time: a letter with an address in a changed area is usually settled by its
    first group, and a group whose locations' statistics put it outside every box is not read
    (most of them, when few areas changed)."""
    prefix = partition_prefix(ADDRESSBASE_PARTITIONED_TABLE.prefix, letter)
    for key in store.list_keys(prefix):
        if is_data_file(key):
            with store.open_input(key) as source:
                parquet = pq.ParquetFile(source)
                for group in range(parquet.num_row_groups):
                    extent = group_extent(parquet.metadata.row_group(group))
                    if extent is not None and not grid.covers_box(*extent):
                        continue
                    points = parquet.read_row_group(group, columns=["longitude", "latitude"])
                    x, y = points["longitude"].to_numpy(), points["latitude"].to_numpy()
                    if grid.covers_any(x, y):
                        return True
    return False


def group_extent(group: pq.RowGroupMetaData) -> tuple[float, float, float, float] | None:
    """The row group's locations' box from its statistics; ``None`` when it has none."""
    found = {}
    for i in range(group.num_columns):
        column = group.column(i)
        if column.path_in_schema in ("longitude", "latitude"):
            statistics = column.statistics
            if statistics is None or not statistics.has_min_max:
                return None
            found[column.path_in_schema] = (statistics.min, statistics.max)
    if len(found) < 2:
        return None
    (xmin, xmax), (ymin, ymax) = found["longitude"], found["latitude"]
    return xmin, ymin, xmax, ymax


@dataclass(frozen=True)
class BoxGrid:
    """Cells over the extent of some boxes (at most ``_CELLS`` a side), marked where a box
    covers them: any number of boxes tested against millions of points in one pass."""

    origin: tuple[float, float]
    size: tuple[float, float]
    covered: np.ndarray

    @classmethod
    def of(cls, boxes: np.ndarray) -> BoxGrid:
        if not len(boxes):
            return cls((0.0, 0.0), (1.0, 1.0), np.zeros((0, 0), np.bool_))
        x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
        width = max(boxes[:, 2].max() - x0, 1e-9) / _CELLS
        height = max(boxes[:, 3].max() - y0, 1e-9) / _CELLS
        grid = cls((x0, y0), (width, height), np.zeros((_CELLS, _CELLS), np.bool_))
        low = grid._cells(boxes[:, 0], boxes[:, 1])
        high = grid._cells(boxes[:, 2], boxes[:, 3])
        for (i0, j0), (i1, j1) in zip(zip(*low, strict=True), zip(*high, strict=True), strict=True):
            grid.covered[j0 : j1 + 1, i0 : i1 + 1] = True
        return grid

    @property
    def empty(self) -> bool:
        """No box: no address can have changed."""
        return not self.covered.size

    def _cells(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each point's column and row, clipped to the grid (a point without coordinates is
        put in a corner: callers test the extent too)."""
        with np.errstate(invalid="ignore"):
            i = ((x - self.origin[0]) / self.size[0]).astype(np.int64)
            j = ((y - self.origin[1]) / self.size[1]).astype(np.int64)
        return np.clip(i, 0, _CELLS - 1, out=i), np.clip(j, 0, _CELLS - 1, out=j)

    def covers_box(self, xmin: float, ymin: float, xmax: float, ymax: float) -> bool:
        """Whether a box meets a covered cell."""
        return bool(self.meets(np.array([[xmin, ymin, xmax, ymax]]))[0])

    def meets(self, boxes: np.ndarray) -> np.ndarray:
        """Whether each of ``(n, 4)`` boxes (xmin, ymin, xmax, ymax) meets a covered cell, as
        :meth:`covers_box` says, on whole columns: a box holding a point that :meth:`covers`
        meets that point's cell. A box without bounds (NaN) meets none."""
        if self.empty or not len(boxes):
            return np.zeros(len(boxes), np.bool_)
        x0, y0 = self.origin
        xmin, ymin, xmax, ymax = boxes.T
        with np.errstate(invalid="ignore"):
            near = (
                (xmax >= x0)
                & (ymax >= y0)
                & (xmin <= x0 + self.size[0] * _CELLS)
                & (ymin <= y0 + self.size[1] * _CELLS)
            )
        (i0, i1), (j0, j1) = self._cells(boxes[:, [0, 2]].T, boxes[:, [1, 3]].T)
        total = self._covered_below_left
        inside = total[j1 + 1, i1 + 1] - total[j0, i1 + 1] - total[j1 + 1, i0] + total[j0, i0]
        return near & (inside > 0)

    @cached_property
    def _covered_below_left(self) -> np.ndarray:
        """How many cells are covered below and left of each cell corner: a box's count is
        four lookups."""
        total = np.zeros((_CELLS + 1, _CELLS + 1), np.int64)
        total[1:, 1:] = self.covered.cumsum(axis=0).cumsum(axis=1)
        return total

    def covers_any(self, x: np.ndarray, y: np.ndarray) -> bool:
        return bool(self.covers(x, y).any())

    def covers(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether each point lies in a covered cell (every point in a box does)."""
        if self.empty:
            return np.zeros(len(x), np.bool_)
        x0, y0 = self.origin
        inside = (
            (x >= x0)
            & (x <= x0 + self.size[0] * _CELLS)
            & (y >= y0)
            & (y <= y0 + self.size[1] * _CELLS)
        )
        i, j = self._cells(x, y)
        j *= _CELLS
        j += i
        return self.covered.ravel()[j] & inside


def write_areas(store: LayerStore, joined_prefix: str, rows: InputRows) -> None:
    """Keep ``rows`` (digests and boxes) under their version in the joined table, unless kept
    already: what a later rebuild compares its input with."""
    key = f"{joined_prefix}{AREAS_FOLDER}{rows.version}.parquet"
    if store.exists(key):
        return
    boxes = rows.boxes().reshape(-1, 4)
    table = pa.table(
        [pa.array(rows.digests, pa.string())] + [pa.array(boxes[:, i]) for i in range(4)],
        schema=_AREAS_SCHEMA,
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    store.write_bytes(key, sink.getvalue())


def restamp_kept(store: LayerStore, joined_prefix: str, plan: LetterPlan) -> None:
    """Record that each kept letter holds the rows of the input's new version too (same token:
    its rows did not change), so that the next rebuild compares with this input."""

    def restamp(letter: str) -> None:
        record = plan.kept[letter]
        if record.built_from != plan.built_from[letter]:
            restamped = replace(record, built_from=plan.built_from[letter])
            write_partition_record(store, joined_prefix, letter, restamped)

    store.for_each(restamp, list(plan.kept))


def prune_areas(store: LayerStore, joined_prefix: str) -> None:
    """Delete the areas files that no letter's record names any more."""
    letters = first_letter_partitions.get_partition_keys()
    named = {
        record.built_from.get("areas")
        for record in partition_records(store, joined_prefix, letters).values()
        if record is not None
    }
    folder = joined_prefix + AREAS_FOLDER
    store.delete(
        [
            key
            for key in store.list_keys(folder)
            if key[len(folder) :].removesuffix(".parquet") not in named
        ]
    )
