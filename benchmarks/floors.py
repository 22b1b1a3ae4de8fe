"""Each bake stage's floor on this machine: the least time the stage's unavoidable work takes.

A stage can be no faster than the library calls it cannot do without, run on the same threads
over the same bytes with nothing else around them. Each floor below is one such call, timed
alone (best of ``--repeat`` runs, wall and CPU seconds of the whole process, ``--threads``
threads, a file per thread where there are files), so that a stage's time in the bake
benchmark can be read against it: close to its floor, a stage can only get faster with a faster
library or more cores; far from it, the time goes in the stage's own work.

- **inflate**: every gzip part file of the drop decompressed to nowhere, in 1 MiB reads, with
  zlib and with ISA-L (``isal``, what the bake inflates with); both release the GIL. The read
  stage cannot read the drop faster than it can inflate it.
- **parse**: the inflated CSV, held in memory, cut into blocks of whole lines as the bake cuts
  them and parsed by Arrow's CSV reader with the bake's options (five string columns), the
  blocks spread over the threads: parsing alone, no validation, no writing.
- **inflate + parse**: each part file streamed through Arrow's own gzip stream (and through
  ISA-L's) into Arrow's streaming CSV reader, a file per thread: the read stage's practical
  floor, the two above as they overlap when streamed (plain part files are read, not inflated).
- **encode outcode files**: the joined table of a previous bake (``--data-root``) read a first
  letter at a time, with its address columns from the partitioned AddressBase as the version
  takes them, and cut by outcode with the bake's own ``_split_by_outcode`` (untimed), then
  every outcode file encoded with the bake's ``_parquet_bytes`` into memory, letters spread over
  the threads: no disk, no hashing, no store. The write stage cannot encode faster. The layer
  is current elections unless ``--layer`` names the one the data root's bake wrote; a layer
  of records' lists has its structs made as the bake makes them, untimed.
- **write outcode files**: the same bytes written to one file each in a fresh scratch folder
  (beside the data root unless ``--scratch``), files spread over the threads, without fsync
  (as the bake writes them): the disk's floor for the write stage.
- **encode AddressBase letters**: the partitioned AddressBase of that bake read a first letter
  at a time (untimed), then encoded into memory with the read stage's own writer settings
  (``LETTER_PARQUET``, row groups of ``ROW_GROUP_ROWS``), letters spread over the threads: what
  the read stage pays to write the partitioned AddressBase, however fast it parses.
- **decode the join's columns**: the columns the current-elections join reads from each letter
  (its carried UPRN and the location) read from the partitioned AddressBase.
- **encode the joined table**: that bake's joined table read a letter at a time (untimed), then
  encoded into memory with the join's own writer settings (``joined_parquet``). With the decode
  above, the parquet the join cannot do without: the rest of its time is the point-in-area work.
- **ballots WKT**: every geometry of the ballots export (its ``SRID=<n>;`` prefix removed, read
  with Python's csv module, untimed) parsed by ``shapely.from_wkt`` and checked by
  ``shapely.is_valid``, the geometries spread over the threads: the geometry floor of the
  ballots stage, which parses and validates the same WKT in DuckDB. ``from_wkt`` reads Python
  strings and holds the GIL (two threads measured no faster than one), so this floor is one
  core's: its CPU seconds over the cores is what parsing on every core could reach.

The checks have no floor here: their work is the bake's own queries, not a library call that
could be timed apart from them. Inputs are in the page cache after the first run, so every
floor reads from memory, as a bake of inputs just generated does.
"""

from __future__ import annotations

import argparse
import csv
import functools
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import shapely
from isal import igzip, isal_zlib

from benchmarks.inputs import InputSpec, ensure_inputs
from databaker.assets import layer_named
from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.assets.addressbase.fast_reading import (
    _PARSING,
    BLOCK_BYTES,
    LETTER_PARQUET,
    REPEATED_COLUMNS,
    ROW_GROUP_ROWS,
)
from databaker.assets.current_elections.join import JOIN_QUERY
from databaker.assets.current_elections.join import JOINED_TABLE as CURRENT_ELECTIONS_JOINED
from databaker.definitions import Settings
from databaker.huge_pages import forbid_transparent_huge_pages
from databaker.layers.element_files import LetterElements
from databaker.layers.joined_addresses import read_joined, with_address_columns
from databaker.layers.outcode_files import (
    LETTER_FOLDER,
    _file_rows,
    _parquet_bytes,
    _split_by_outcode,
    _with_letter_elements,
    keys_by_letter,
)
from databaker.resources import LocalLayerStore
from databaker.resources.point_in_area import joined_parquet
from databaker.staging import partition_record

READ_BYTES = 1 << 20
HEADER = ("floor", "what it does", "wall s", "CPU s", "MB/s or rows/s")
LAYER = "current_elections"
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Floor:
    """One measured floor: the best run's seconds and what it went through."""

    name: str
    what: str
    wall: float
    cpu: float
    megabytes: float
    """Of the bytes the floor produces or parses: inflated CSV, parquet, WKT."""
    rows: int | None = None
    unit: str = "rows"

    def row(self) -> list[str]:
        rate = f"{figure(self.megabytes / self.wall)} MB/s"
        if self.rows is not None:
            per_second = self.rows / self.wall
            count = f"{per_second / 1e6:,.2f}M" if per_second >= 1e6 else figure(per_second)
            rate += f", {count} {self.unit}/s"
        return [self.name, self.what, f"{self.wall:.3f}", f"{self.cpu:.3f}", rate]


def figure(value: float) -> str:
    """Whole numbers from 100, three significant digits below (a tiny input's rates too)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def timed(run: Callable[[], R]) -> tuple[float, float, R]:
    """Wall and CPU seconds of one run (CPU of every thread of the process), and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def best_of(repeat: int, run: Callable[[], R]) -> tuple[float, float, R]:
    """The fastest of ``repeat`` runs, by wall time."""
    return min((timed(run) for _ in range(repeat)), key=lambda one: one[0])


def on_threads(threads: int, items: Iterable[T], work: Callable[[T], R]) -> list[R]:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(work, items))


def inflated_bytes(path: Path, library: ModuleType) -> int:
    """Inflate a gzip file (every member of it) with ``library``'s zlib API; bytes out."""
    out = 0
    inflater = library.decompressobj(16 + library.MAX_WBITS)
    with path.open("rb") as file:
        while chunk := file.read(READ_BYTES):
            while chunk:
                out += len(inflater.decompress(chunk))
                chunk = b""
                if inflater.eof:
                    chunk = inflater.unused_data
                    inflater = library.decompressobj(16 + library.MAX_WBITS)
    return out


def whole_file(path: Path) -> bytes:
    if path.suffix == ".gz":
        with igzip.open(path, "rb") as file:
            return file.read()
    return path.read_bytes()


def line_blocks(data: bytes) -> list[memoryview]:
    """``data`` in blocks of whole lines of about ``BLOCK_BYTES``, as the bake cuts them."""
    view, blocks, start = memoryview(data), [], 0
    while start < len(data):
        cut = data.find(b"\n", start + BLOCK_BYTES)
        end = len(data) if cut < 0 else cut + 1
        blocks.append(view[start:end])
        start = end
    return blocks


def parsed_rows(block: memoryview) -> int:
    return pcsv.read_csv(pa.BufferReader(pa.py_buffer(block)), **_PARSING).num_rows


def streamed_rows(stream: pa.NativeFile) -> int:
    with stream, pcsv.open_csv(stream, **_PARSING) as reader:
        return sum(batch.num_rows for batch in reader)


def arrow_stream(path: Path) -> pa.NativeFile:
    return pa.input_stream(str(path), compression="gzip" if path.suffix == ".gz" else None)


def isal_stream(path: Path) -> pa.NativeFile:
    return pa.PythonFile(igzip.open(path, "rb"), mode="r")


def read_floors(files: Sequence[Path], threads: int, repeat: int) -> list[Floor]:
    """Inflate, parse, and both streamed together, over the drop's part files."""
    floors = []
    compressed = [path for path in files if path.suffix == ".gz"]
    if compressed:
        packed = sum(path.stat().st_size for path in compressed) / 1e6
        for label, library in (("zlib", zlib), ("ISA-L", isal_zlib)):
            wall, cpu, sizes = best_of(
                repeat,
                lambda library=library: on_threads(
                    threads, compressed, lambda path: inflated_bytes(path, library)
                ),
            )
            what = f"gzip parts to nowhere, 1 MiB reads ({packed:,.0f} MB in, MB/s out)"
            floors.append(Floor(f"inflate ({label})", what, wall, cpu, sum(sizes) / 1e6))
    else:
        print("no gzip part files: the inflate floors are skipped", file=sys.stderr)
    data = [whole_file(path) for path in files]
    blocks = [block for one in data for block in line_blocks(one)]
    size = sum(len(one) for one in data) / 1e6
    wall, cpu, rows = best_of(repeat, lambda: on_threads(threads, blocks, parsed_rows))
    what = f"Arrow CSV of the inflated drop in memory, {len(blocks):,} blocks"
    floors.append(Floor("parse", what, wall, cpu, size, sum(rows)))
    streams = [("Arrow gzip", arrow_stream), ("ISA-L", isal_stream)] if compressed else []
    for label, opened in streams or [("plain files", arrow_stream)]:
        wall, cpu, rows = best_of(
            repeat,
            lambda opened=opened: on_threads(
                threads, files, lambda path: streamed_rows(opened(path))
            ),
        )
        what = f"{len(files)} part files streamed into Arrow's streaming CSV reader"
        name = f"inflate + parse ({label})" if compressed else "read + parse"
        floors.append(Floor(name, what, wall, cpu, size, sum(rows)))
    return floors


def outcode_parts(data_root: Path, layer_name: str) -> list[list[pa.Table]]:
    """Per first letter, the tables the bake encodes as outcode files, cut as it cuts them; a
    layer of records' lists as structs of each file's own dictionaries, as the bake gives
    them to the encoder (:mod:`databaker.layers.element_files`)."""
    layer = layer_named(layer_name)
    store = LocalLayerStore(root=str(data_root))
    ids = layer.ids_column
    letters = []
    for folder, keys in keys_by_letter(store, layer.joined.prefix).items():
        letter = folder.removeprefix(LETTER_FOLDER)
        table = with_address_columns(
            store,
            read_joined(store, keys, lists=[ids]),
            letter=letter,
            record=partition_record(store, layer.joined.prefix, letter),
            addresses=ADDRESSBASE_PARTITIONED_TABLE.prefix,
            columns=[name for name in layer.columns if name != "outcode"],
        )
        elements = None
        if layer.element_fields is not None:
            elements = LetterElements.of(layer.element_fields, table[ids])
        parts = []
        for _, part, with_ids in _split_by_outcode(
            _with_letter_elements(table, ids, elements), ids
        ):
            rows = part.select(layer.columns) if with_ids else pa.table({})
            parts.append(_file_rows(rows, ids, elements)[1]())
        letters.append(parts)
    if not letters:
        raise SystemExit(
            f"no joined table under {data_root / layer.joined.prefix}: give the data root of a bake"
        )
    return letters


def write_floors(
    data_root: Path, scratch: Path, threads: int, repeat: int, layer_name: str = LAYER
) -> list[Floor]:
    """Encoding the outcode files of ``layer_name`` into memory, then writing their bytes to
    files."""
    ids = layer_named(layer_name).ids_column
    letters = outcode_parts(data_root, layer_name)
    rows = sum(part.num_rows for parts in letters for part in parts)
    files = sum(len(parts) for parts in letters)

    def encoded(parts: list[pa.Table]) -> list[bytes]:
        return [_parquet_bytes(part, ids) for part in parts]

    wall, cpu, encoded_letters = best_of(repeat, lambda: on_threads(threads, letters, encoded))
    contents = [data for parts in encoded_letters for data in parts]
    size = sum(len(data) for data in contents) / 1e6
    what = f"{files:,} outcode files, `_parquet_bytes` into memory"
    floors = [Floor("encode outcode files", what, wall, cpu, size, rows)]
    shares = [list(enumerate(contents))[start::threads] for start in range(threads)]
    scratch.mkdir(parents=True, exist_ok=True)
    timings = []
    for _ in range(repeat):
        folder = Path(tempfile.mkdtemp(prefix="floors-", dir=scratch))
        try:
            timings.append(
                timed(functools.partial(on_threads, threads, shares, written_to(folder)))
            )
        finally:
            shutil.rmtree(folder)
    wall, cpu, _ = min(timings, key=lambda one: one[0])
    what = f"the same {files:,} files' bytes to files in {scratch}, no fsync"
    floors.append(Floor("write outcode files", what, wall, cpu, size))
    return floors


def table_floors(data_root: Path, threads: int, repeat: int) -> list[Floor]:
    """Encoding the partitioned AddressBase's letters, decoding the columns the
    current-elections join reads from them, and encoding its joined table, each into memory."""
    partitioned = sorted((data_root / ADDRESSBASE_PARTITIONED_TABLE.prefix).glob("first_letter=*"))
    joined = sorted((data_root / CURRENT_ELECTIONS_JOINED.prefix).glob("first_letter=*"))
    if not partitioned or not joined:
        raise SystemExit(f"no partitioned AddressBase or joined table under {data_root}")
    letters = [pq.read_table(f, read_dictionary=list(REPEATED_COLUMNS)) for f in partitioned]
    floors = [
        encoded_floor(
            "encode AddressBase letters",
            f"{len(letters)} letters of the partitioned AddressBase, into memory",
            letters,
            letter_parquet,
            threads,
            repeat,
        )
    ]
    del letters
    columns = [*JOIN_QUERY.carried, "longitude", "latitude"]

    def decoded(folder: Path) -> tuple[int, int]:
        table = pq.read_table(folder, columns=columns)
        return table.nbytes, table.num_rows

    wall, cpu, sizes = best_of(repeat, lambda: on_threads(threads, partitioned, decoded))
    what = f"the join's {len(columns)} columns of every letter, from its parquet files"
    size, rows = (sum(part) for part in zip(*sizes, strict=True))
    floors.append(Floor("decode the join's columns", what, wall, cpu, size / 1e6, rows))
    tables = [pq.read_table(f) for f in joined]
    floors.append(
        encoded_floor(
            "encode the joined table",
            f"{len(tables)} letters of the joined table, into memory",
            tables,
            lambda sink, table: pq.write_table(
                table, sink, **joined_parquet(table.schema, [JOIN_QUERY.ids_column])
            ),
            threads,
            repeat,
        )
    )
    return floors


def letter_parquet(sink: pa.NativeFile, letter: pa.Table) -> None:
    """A letter as the read stage writes it (in one file here, where each reading thread
    writes its own)."""
    with pq.ParquetWriter(sink, letter.schema, **LETTER_PARQUET) as writer:
        writer.write_table(letter, row_group_size=ROW_GROUP_ROWS)


def encoded_floor(
    name: str,
    what: str,
    tables: list[pa.Table],
    write: Callable[[pa.NativeFile, pa.Table], None],
    threads: int,
    repeat: int,
) -> Floor:
    """``write`` of every table into memory, tables spread over the threads."""

    def size(table: pa.Table) -> int:
        sink = pa.BufferOutputStream()
        write(sink, table)
        return sink.getvalue().size

    wall, cpu, sizes = best_of(repeat, lambda: on_threads(threads, tables, size))
    rows = sum(table.num_rows for table in tables)
    return Floor(name, what, wall, cpu, sum(sizes) / 1e6, rows)


def written_to(folder: Path) -> Callable[[list[tuple[int, bytes]]], None]:
    def write(share: list[tuple[int, bytes]]) -> None:
        for number, data in share:
            (folder / f"{number}.parquet").write_bytes(data)

    return write


def ballots_floor(ballots: Path, threads: int, repeat: int) -> Floor:
    """``shapely.from_wkt`` and ``shapely.is_valid`` of every geometry of the export."""
    csv.field_size_limit(sys.maxsize)
    with ballots.open(newline="") as file:
        fields = [row["geometry"] for row in csv.DictReader(file) if row["geometry"]]
    wkt = pc.replace_substring_regex(pa.array(fields, pa.string()), r"^SRID=[0-9]+;", "")
    shares = np.array_split(wkt.to_numpy(zero_copy_only=False), threads)

    def parsed(share: np.ndarray) -> int:
        return int(shapely.is_valid(shapely.from_wkt(share)).sum())

    wall, cpu, _ = best_of(repeat, lambda: on_threads(threads, shares, parsed))
    size = sum(pc.binary_length(wkt).to_numpy()) / 1e6
    what = f"{len(fields):,} geometries of the ballots export, parsed and validated (GIL held)"
    return Floor("ballots WKT", what, wall, cpu, size, len(fields), "geometries")


def markdown(floors: Sequence[Floor]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(floor.row()) + " |" for floor in floors]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floors", description=__doc__)
    parser.add_argument("--addresses", type=int)
    parser.add_argument("--divisions", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/.cache"))
    parser.add_argument("--inputs", type=Path, help="a folder of that layout, not generated")
    parser.add_argument("--data-root", type=Path, help="a bake's data root, for the write")
    parser.add_argument("--scratch", type=Path, help="where the write floor writes files")
    parser.add_argument(
        "--layer", default=LAYER, help="whose outcode files the data root's bake wrote"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if not Settings.from_environment().transparent_huge_pages:
        # The floors run on the memory a bake's process runs on (databaker.huge_pages).
        forbid_transparent_huge_pages()
    if args.inputs is not None:
        folder = args.inputs
    elif args.addresses is None or args.divisions is None:
        parser.error("give --addresses and --divisions, or --inputs")
    else:
        spec = InputSpec(args.addresses, args.divisions, args.seed, args.files)
        folder = ensure_inputs(spec, args.cache).folder
    drop = folder / "addressbase_cleaned"
    files = sorted(
        p for p in drop.glob("addressbase_cleaned_*.csv*") if p.suffix in {".csv", ".gz"}
    )
    if not files:
        parser.error(f"no part files in {drop}")
    floors = read_floors(files, args.threads, args.repeat)
    if args.data_root is None:
        print("no --data-root: the outcode-file floors are skipped", file=sys.stderr)
    else:
        scratch = args.scratch or args.data_root.resolve().parent
        floors += write_floors(args.data_root, scratch, args.threads, args.repeat, args.layer)
        if args.layer == LAYER:
            floors += table_floors(args.data_root, args.threads, args.repeat)
    floors.append(ballots_floor(folder / "ballots.csv", args.threads, args.repeat))
    print(markdown(floors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
