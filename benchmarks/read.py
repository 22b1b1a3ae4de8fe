"""Benchmark reading the baked layer against asking PostGIS live, for the postcode question.

    .venv/bin/python -m benchmarks.read --addresses 30000000 --divisions 20000

Bakes the synthetic inputs (generated once per size and seed, as for the bake benchmark) with
``databaker bake``, unless that layer is already baked; loads the same addresses and ballot
areas into PostGIS on 127.0.0.1 (once per inputs); times "every address of this postcode with
its ballot IDs" for random postcodes on both, cold and warm; checks that both engines give the
same answers; and writes its section of ``docs/benchmarks.md``. Exits 1 if they disagree.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.inputs import Inputs, InputSpec, ensure_inputs
from benchmarks.lookups import (
    Answer,
    Latencies,
    cold_postcodes,
    disagreements,
    postgis_lookup,
    reader_lookup,
    time_lookups,
)
from benchmarks.machine import describe_machine
from benchmarks.our_bake import run_bake
from benchmarks.postgis import Cluster, Installation, Load, evict_from_page_cache
from benchmarks.report import markdown_table, markers, write_section
from databaker.layer_reader import CACHE_BYTES, LayerReader

BENCHMARK = "read"
COLD_FROM_DISK = "cold, from disk"
COLD_PAGE_CACHE = "cold, in page cache"
WARM = "warm"
TARGETS = {"warm p99 ms": 0.5, "cold p99 ms": 5.0, "warm throughput vs PostGIS": 10.0}
"""The issue's targets: warm p99 under 0.5 ms, cold p99 under 5 ms, 10x PostGIS's throughput."""


@dataclass(frozen=True)
class Layer:
    folder: Path
    files: int
    bytes: int
    rows: int
    baked_seconds: float | None
    """None when an earlier run's bake was reused."""


@dataclass(frozen=True)
class PostgisRun:
    version: str
    load: Load
    loaded_now: bool
    latencies: list[Latencies]
    answers: dict[str, Answer]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    installation = None if args.no_postgis else Installation.find(args.pg_bin)
    spec = InputSpec(args.addresses, args.divisions, args.seed, args.files)
    inputs = ensure_inputs(spec, args.cache)
    layer = _baked_layer(inputs, args.cache / "read" / spec.key, args.rebake)
    rng = random.Random(args.seed)
    cold = cold_postcodes(layer.folder, args.lookups, rng)
    _say(f"layer: {layer.folder} ({layer.rows:,} addresses); {len(cold)} cold postcodes")

    evict_from_page_cache(layer.folder.glob("*.parquet"))
    cold_disk, _ = time_lookups("layer reader", COLD_FROM_DISK, cold, reader_lookup(_reader(layer)))
    reader = _reader(layer)
    cold_cached, ours = time_lookups(
        "layer reader", COLD_PAGE_CACHE, cold, reader_lookup(reader), keep_answers=True
    )
    recent = cold[-args.warm_set :]
    warm_postcodes = rng.choices(recent, k=args.warm_lookups)
    before = reader.stats
    warm, _ = time_lookups("layer reader", WARM, warm_postcodes, reader_lookup(reader))
    after = reader.stats
    if (after.footers_read, after.row_groups_read) != (before.footers_read, before.row_groups_read):
        raise RuntimeError(
            f"the warm lookups read the layer ({before} before, {after} after): the last "
            f"{len(recent)} postcodes do not fit the reader's cache; lower --warm-set"
        )
    results = [cold_disk, cold_cached, warm]

    postgis = None
    if installation is not None:
        cluster = Cluster(installation, args.cache / "postgis" / spec.key)
        postgis = _run_postgis(cluster, inputs, cold, warm_postcodes)
        results += postgis.latencies
    mismatched = disagreements(ours, postgis.answers) if postgis else []

    size = f"a{args.addresses}-d{args.divisions}"
    run = ReadRun(
        size=size,
        title=f"{args.addresses:,} addresses, {args.divisions:,} divisions",
        command=_command_line(argv),
        layer=layer,
        results=results,
        postgis=postgis,
        warm_set=len(recent),
        answers=ours,
        mismatched=mismatched,
    )
    write_section(args.output, size, render(run), BENCHMARK)
    print(results_table(results))
    _say(f"wrote {args.output}")
    if mismatched:
        _say(f"{len(mismatched)} postcodes answered differently, e.g. {mismatched[:5]}")
        return 1
    return 0


def _reader(layer: Layer) -> LayerReader:
    """A reader as a service would hold one: the default memory budget; entries kept for an
    hour so that none expires while the warm lookups run."""
    return LayerReader(str(layer.folder), cache_bytes=CACHE_BYTES, max_age=3600)


def _baked_layer(inputs: Inputs, work: Path, rebake: bool) -> Layer:
    """The layer baked from ``inputs`` under ``work``, baking it unless a finished bake of the
    same drop is already published there."""
    data = work / "data"
    folder = data / "current_elections_parquet"
    baked_seconds = None
    if rebake or not _published_from(folder, inputs):
        _say(f"baking {inputs.folder} into {data} ...")
        bake = run_bake(inputs, data)
        if bake.measurement.returncode != 0:
            raise RuntimeError(f"the bake failed: see {data.parent / 'logs' / 'databaker'}")
        folder, baked_seconds = bake.layer, bake.measurement.wall_seconds
    manifest = json.loads((folder / "_manifest.json").read_text())
    files = list(folder.glob("*.parquet"))
    return Layer(
        folder, len(files), sum(p.stat().st_size for p in files), manifest["rows"], baked_seconds
    )


def _published_from(folder: Path, inputs: Inputs) -> bool:
    try:
        manifest = json.loads((folder / "_manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("addressbase_source") == str(inputs.addressbase.resolve())


def _run_postgis(cluster: Cluster, inputs: Inputs, cold: list[str], warm: list[str]) -> PostgisRun:
    """The same lookups on PostGIS: from disk (server restarted, its files out of the page
    cache), with the files in the page cache (restarted: its own buffers empty), and warm (the
    warm postcodes asked once untimed, then timed)."""
    load = cluster.load_marker(inputs)
    loaded_now = load is None
    if load is None:
        with cluster.running() as server:
            _say(f"loading PostGIS in {cluster.folder} ...")
            load = server.load(inputs, cluster)
    cluster.evict_from_page_cache()
    with cluster.running() as server, server.connect() as conn:
        version = server.versions()
        cold_disk, _ = time_lookups("PostGIS", COLD_FROM_DISK, cold, postgis_lookup(conn))
    with cluster.running() as server, server.connect() as conn:
        lookup = postgis_lookup(conn)
        cold_cached, answers = time_lookups(
            "PostGIS", COLD_PAGE_CACHE, cold, lookup, keep_answers=True
        )
        time_lookups("PostGIS", "priming", warm, lookup)
        warm_run, _ = time_lookups("PostGIS", WARM, warm, lookup)
    return PostgisRun(version, load, loaded_now, [cold_disk, cold_cached, warm_run], answers)


RESULTS_HEADER = ("engine", "case", "lookups", "lookups/s", "p50 ms", "p99 ms", "max ms")


def results_table(results: list[Latencies]) -> str:
    return markdown_table(
        RESULTS_HEADER,
        [
            (
                r.engine,
                r.case,
                f"{r.lookups:,}",
                f"{r.per_second:,.0f}",
                f"{r.percentile_ms(50):.3f}",
                f"{r.percentile_ms(99):.3f}",
                f"{r.percentile_ms(100):.3f}",
            )
            for r in results
        ],
    )


def target_lines(results: list[Latencies]) -> list[str]:
    """Each target, the figure measured against it, and whether it is met."""
    by_case = {(r.engine, r.case): r for r in results}
    warm, cold = by_case[("layer reader", WARM)], by_case[("layer reader", COLD_FROM_DISK)]
    cached = by_case[("layer reader", COLD_PAGE_CACHE)]
    lines = [
        _target("warm p99 under 0.5 ms", f"{warm.percentile_ms(99):.3f} ms",
                warm.percentile_ms(99) < TARGETS["warm p99 ms"]),
        _target("cold p99 under 5 ms, from disk", f"{cold.percentile_ms(99):.2f} ms",
                cold.percentile_ms(99) < TARGETS["cold p99 ms"]),
        _target("cold p99 under 5 ms, file in the page cache",
                f"{cached.percentile_ms(99):.2f} ms",
                cached.percentile_ms(99) < TARGETS["cold p99 ms"]),
    ]  # fmt: skip
    if ("PostGIS", WARM) in by_case:
        ratio = warm.per_second / by_case[("PostGIS", WARM)].per_second
        met = ratio >= TARGETS["warm throughput vs PostGIS"]
        lines.append(_target("warm throughput at least 10x PostGIS's", f"{ratio:.1f}x", met))
        ratio = cold.per_second / by_case[("PostGIS", COLD_FROM_DISK)].per_second
        lines.append(f"cold from disk, for comparison: {ratio:.1f}x PostGIS's throughput")
    return lines


def _target(name: str, measured: str, met: bool) -> str:
    return f"{name}: {measured}, {'met' if met else 'MISSED'}"


@dataclass(frozen=True)
class ReadRun:
    """Everything the report says about one run."""

    size: str
    title: str
    command: str
    layer: Layer
    results: list[Latencies]
    postgis: PostgisRun | None
    warm_set: int
    answers: dict[str, Answer]
    """The reader's answers to the cold postcodes."""
    mismatched: list[str]


def render(run: ReadRun) -> str:
    """The benchmark's section of ``docs/benchmarks.md``, markers included."""
    start, end = markers(run.size, BENCHMARK)
    machine = "\n".join(f"- {key}: {value}" for key, value in describe_machine().items())
    layer, postgis = run.layer, run.postgis
    baked = (
        f"baked by this run in {layer.baked_seconds:.0f} s"
        if layer.baked_seconds is not None
        else "baked by an earlier run"
    )
    sizes = [len(answer) for answer in run.answers.values()]
    per_postcode = (
        f"The cold postcodes have {sum(sizes) / len(sizes):.1f} addresses each on average "
        f"(at most {max(sizes)})."
    )
    targets = "\n".join(f"- {line}" for line in target_lines(run.results))
    compared = len(run.answers)
    if postgis is None:
        engines = "PostGIS was not run (`--no-postgis`)."
        agreement = ""
    else:
        load = postgis.load
        steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in load.seconds.items())
        engines = (
            f"{postgis.version}, holding {load.addresses:,} addresses and "
            f"{load.areas:,} area pieces; tables "
            f"{load.table_bytes / 2**30:.2f} GiB, indexes {load.index_bytes / 2**30:.2f} GiB; "
            f"loaded {'by this run' if postgis.loaded_now else 'by an earlier run'} ({steps})."
        )
        agreement = (
            f" Both engines gave the same addresses and ballot IDs for all {compared:,} "
            "cold postcodes."
            if not run.mismatched
            else f" **{len(run.mismatched):,} of {compared:,} postcodes were answered "
            f"differently**, for example {', '.join(run.mismatched[:5])}."
        )
    return f"""{start}
## Reading the layer: {run.title}

Generated by `benchmarks/read.py`; edit that, not this section. What is measured and how:
[benchmarks/README.md](../benchmarks/README.md#read-benchmark).

```sh
{run.command}
```

Run on {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}. The layer: {layer.rows:,} addresses in
{layer.files:,} outcode files, {layer.bytes / 2**20:.0f} MiB, {baked}. {engines}

{results_table(run.results)}

{per_postcode} Warm lookups are drawn, with repeats, from the last {run.warm_set:,} cold
postcodes, which the reader still holds within its default {CACHE_BYTES // 2**20} MiB budget
(the run checks that the warm lookups read nothing).{agreement}

### Targets

{targets}

### Machine

{machine}
{end}
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.read", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--addresses", type=int, required=True)
    parser.add_argument("--divisions", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1, help="inputs' seed; also the sample's")
    parser.add_argument("--files", type=int, default=8, help="AddressBase part files")
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/.cache"))
    parser.add_argument(
        "--lookups", type=int, default=2000, help="cold lookups, each in another outcode"
    )
    parser.add_argument("--warm-lookups", type=int, default=20000)
    parser.add_argument(
        "--warm-set", type=int, default=500, help="the last cold postcodes warm ones repeat"
    )
    parser.add_argument("--rebake", action="store_true", help="bake even if already baked")
    parser.add_argument("--no-postgis", action="store_true", help="time the layer reader only")
    parser.add_argument(
        "--pg-bin", type=Path, help="PostgreSQL binaries (default /usr/lib/postgresql/*/bin)"
    )
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    return parser


def _command_line(argv: list[str]) -> str:
    return shlex.join([".venv/bin/python", "-m", "benchmarks.read", *argv])


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
