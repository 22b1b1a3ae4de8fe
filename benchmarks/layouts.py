"""Benchmark layouts of the outcode files for the people who read them: the same rows written
several ways, each read as the consumers read it and by the layer reader.

    .venv/bin/python -m benchmarks.layouts --addresses 30000000 --divisions 20000

Takes the read benchmark's layer (baking it if missing, as that benchmark does), draws
``--lookups`` of its outcode files with addresses and one postcode of each, and writes those files
again in each layout of :data:`LAYOUTS`, timing the encoding. Then, for each layout, in
``--rounds`` rounds taking turns: ``polars.read_parquet`` of the file and the postcode's rows,
with each polars version the consumers pin (:mod:`benchmarks.polars_envs`), the file dropped
from the page cache and in it; and the layer reader, a new one per round with the files in the
page cache (cold), then asked again for the last 500 postcodes (warm). Writes its section of
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import io
import random
import shlex
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.console import positive, say
from benchmarks.consumer_rounds import original_layout
from benchmarks.inputs import InputSpec, add_input_arguments, ensure_inputs
from benchmarks.lookups import (
    Latencies,
    cold_postcodes,
    outcode_file,
    reader_lookup,
    time_lookups,
)
from benchmarks.machine import describe_machine
from benchmarks.polars_envs import CONSUMER_VERSIONS, polars_lookups, polars_python
from benchmarks.read import baked_layer
from benchmarks.report import markdown_table, markers, write_section
from databaker.layer_reader import LayerReader
from databaker.layers.outcode_files import _parquet_bytes
from databaker.layers.versions import MANIFEST

BENCHMARK = "layouts"
IDS = "ballot_ids"


def _pyarrow(**options) -> Callable[[pa.Table], bytes]:
    """The bake's writing options before this layout change, with ``options`` over them."""

    def write(table: pa.Table) -> bytes:
        sink = io.BytesIO()
        settings = {
            "compression": "zstd",
            "use_dictionary": ["postcode", "outcode", "addressbase_source", IDS],
            "write_statistics": ["postcode", "uprn"],
            "store_schema": False,
            **options,
        }
        pq.write_table(table, sink, **settings)
        return sink.getvalue()

    return write


LAYOUTS: dict[str, Callable[[pa.Table], bytes]] = {
    "the bake's: one row group, ID dictionaries": lambda table: _parquet_bytes(table, IDS),
    "the bake's before: row groups of 1,024 rows": _pyarrow(row_group_size=1024),
    "row groups of 4,096 rows": _pyarrow(row_group_size=4096),
    "one row group, IDs plain": _pyarrow(row_group_size=1 << 30),
    "the original baker's: polars write_parquet": original_layout,
}
"""Each layout's writer, of an outcode file's rows as the bake cuts them. ("IDs plain": the
bake named the list column rather than its leaf to pyarrow, which wrote the IDs plainly.)"""


@dataclass(frozen=True)
class Written:
    folder: Path
    bytes: int
    encode_ms: float
    """Mean time to encode one file, in milliseconds."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    spec = InputSpec(args.addresses, args.divisions, args.seed, args.files)
    inputs = ensure_inputs(spec, args.cache)
    layer = baked_layer(inputs, args.cache / "read" / spec.key, rebake=False)
    rng = random.Random(args.seed)
    postcodes = cold_postcodes(layer.folder, args.lookups, rng)
    names = [outcode_file(postcode) for postcode in postcodes]
    work = args.cache / "layouts" / spec.key
    written = {
        name: _write(layer.folder, names, work / f"layout-{number}", write)
        for number, (name, write) in enumerate(LAYOUTS.items())
    }
    pythons = {version: polars_python(version, args.cache) for version in args.polars}
    results: dict[tuple[str, str], list[Latencies]] = defaultdict(list)
    warm = random.Random(args.seed).choices(postcodes[-500:], k=args.warm_lookups)
    for number in range(1, args.rounds + 1):
        say(f"round {number} of {args.rounds} ...")
        for name, files in written.items():
            lookups = [(str(files.folder / n), p) for n, p in zip(names, postcodes, strict=True)]
            for version, python in pythons.items():
                for case in ("disk", "page cache"):
                    label = f"polars {version}, {case}"
                    timed, _ = polars_lookups(python, case, lookups, engine=name, label=label)
                    results[(name, label)].append(timed)
            reader = LayerReader(str(files.folder), max_age=3600)
            lookup = reader_lookup(reader)
            cold, _ = time_lookups(name, "layer reader, cold", postcodes, lookup)
            warmed, _ = time_lookups(name, "layer reader, warm", warm, lookup)
            results[(name, cold.case)].append(cold)
            results[(name, warmed.case)].append(warmed)
    pooled = {key: Latencies.pooled(parts) for key, parts in results.items()}
    size = f"a{args.addresses}-d{args.divisions}"
    section = _render(size, args, layer.rows, len(names), written, pooled)
    write_section(args.output, size, section, BENCHMARK)
    print(_table(written, pooled))
    say(f"wrote {args.output}")
    return 0


def _write(
    layer: Path, names: list[str], folder: Path, write: Callable[[pa.Table], bytes]
) -> Written:
    """The files ``names`` of ``layer`` written again under ``folder`` by ``write``, with the
    layer's manifest (which the reader asks for)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(layer / MANIFEST, folder / MANIFEST)
    total, seconds = 0, 0.0
    for name in names:
        table = pq.read_table(layer / name)
        started = time.perf_counter()
        data = write(table)
        seconds += time.perf_counter() - started
        (folder / name).write_bytes(data)
        total += len(data)
    return Written(folder, total, seconds / len(names) * 1000)


def _table(written: dict[str, Written], pooled: dict[tuple[str, str], Latencies]) -> str:
    cases = list(dict.fromkeys(case for _, case in pooled))
    header = ("layout", "MiB", "encode ms/file", *(f"{case}: p50 / p99 ms" for case in cases))
    rows = []
    for name, files in written.items():
        cells = [
            f"{pooled[(name, case)].percentile_ms(50):.3f} / "
            f"{pooled[(name, case)].percentile_ms(99):.3f}"
            for case in cases
        ]
        rows.append((name, f"{files.bytes / 2**20:.1f}", f"{files.encode_ms:.2f}", *cells))
    return markdown_table(header, rows)


def _render(
    size: str,
    args: argparse.Namespace,
    rows: int,
    files: int,
    written: dict[str, Written],
    pooled: dict[tuple[str, str], Latencies],
) -> str:
    start, end = markers(size, BENCHMARK)
    machine = "\n".join(f"- {key}: {value}" for key, value in describe_machine().items())
    command = shlex.join([".venv/bin/python", "-m", "benchmarks.layouts", *sys.argv[1:]])
    title = f"{args.addresses:,} addresses, {args.divisions:,} divisions"
    return f"""{start}
## Outcode file layouts for their readers: {title}

Generated by `benchmarks/layouts.py`; edit that, not this section.

```sh
{command}
```

Run on {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}: {files:,} outcode files with
addresses drawn from the read benchmark's layer ({rows:,} addresses), one postcode of each,
the same rows written in each layout. Each case pooled over {args.rounds} rounds, the layouts
taking turns: polars `read_parquet` of the file then the postcode's rows (the consumers'
lookup), with the file dropped from the page cache ("disk") or in it; the layer reader new
each round with the files in the page cache ("cold"), then {args.warm_lookups:,} lookups of the
last 500 postcodes ("warm"). Encoding: the mean time to write one file's bytes.

{_table(written, pooled)}

### Machine

{machine}
{end}
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.layouts", description=__doc__.split("\n\n")[0]
    )
    add_input_arguments(parser)
    parser.add_argument(
        "--lookups", type=positive, default=1500, help="outcode files timed, a postcode each"
    )
    parser.add_argument("--warm-lookups", type=positive, default=20000)
    parser.add_argument("--rounds", type=positive, default=2)
    parser.add_argument(
        "--polars", nargs="+", default=list(CONSUMER_VERSIONS), help="polars versions timed"
    )
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    return parser


if __name__ == "__main__":
    sys.exit(main())
