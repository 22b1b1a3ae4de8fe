"""The read benchmark's section of ``docs/benchmarks.md``: the results, the targets, the setup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.consumer_rounds import FROM_S3, ORIGINAL, OURS
from benchmarks.lookups import Answer, Latencies
from benchmarks.machine import describe_machine
from benchmarks.postgis import Load
from benchmarks.read_rounds import COLD_FROM_DISK, COLD_PAGE_CACHE, WARM
from benchmarks.report import markdown_table, markers
from databaker.layer_reader import CACHE_BYTES

BENCHMARK = "read"
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
class PostgisSetup:
    version: str
    load: Load
    loaded_now: bool


RESULTS_HEADER = (
    "engine", "case", "lookups", "lookups/s", "by round", "p50 ms", "p99 ms", "max ms",
)  # fmt: skip


def results_table(results: list[Latencies]) -> str:
    """Each case pooled over the rounds, with the slowest and fastest round's throughput."""
    return markdown_table(
        RESULTS_HEADER,
        [
            (
                r.engine,
                r.case,
                f"{r.lookups:,}",
                f"{r.per_second:,.0f}",
                f"{min(r.round_per_second):,.0f} to {max(r.round_per_second):,.0f}",
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
    return lines + _consumer_lines(by_case) + _client_lines(by_case)


def _client_lines(by_case: dict[tuple[str, str], Latencies]) -> list[str]:
    """Several clients at once, beside one: each engine's warm throughput and p99, for
    comparison (the issue sets no target)."""
    pairs = [
        ("8 threads", "layer reader, 8 threads", "PostGIS, 8 connections from threads"),
        ("4 processes", "layer reader, 4 processes", "PostGIS, 4 connections from processes"),
    ]
    lines = []
    for label, reader, postgis in pairs:
        ours, theirs = by_case.get((reader, WARM)), by_case.get((postgis, WARM))
        if ours is None or theirs is None:
            continue
        lines.append(
            f"{label}, warm, for comparison: the reader {ours.per_second:,.0f} lookups/s "
            f"(p99 {ours.percentile_ms(99):.3f} ms), PostGIS {theirs.per_second:,.0f} "
            f"(p99 {theirs.percentile_ms(99):.3f} ms): {ours.per_second / theirs.per_second:.1f}x"
        )
    return lines


def _consumer_lines(by_case: dict[tuple[str, str], Latencies]) -> list[str]:
    """For each polars version and case, our files against the original's: at least as fast
    at the median and at p99."""
    lines = []
    for engine in sorted({engine for engine, _ in by_case if engine.endswith(OURS)}):
        version = engine.removesuffix(f", {OURS}")
        for case in (COLD_FROM_DISK, COLD_PAGE_CACHE, FROM_S3):
            ours, theirs = (
                by_case.get((engine, case)),
                by_case.get((f"{version}, {ORIGINAL}", case)),
            )
            if ours is None or theirs is None:
                continue
            measured = (
                f"{ours.percentile_ms(50):.3f} / {ours.percentile_ms(99):.3f} ms against "
                f"{theirs.percentile_ms(50):.3f} / {theirs.percentile_ms(99):.3f} ms"
            )
            met = all(ours.percentile_ms(q) <= theirs.percentile_ms(q) for q in (50, 99))
            name = f"{version}, {case}: our files read as fast as the original's (p50 / p99)"
            lines.append(_target(name, measured, met))
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
    postgis: PostgisSetup | None
    rounds: int
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

Each case is pooled over {run.rounds} rounds, the engines taking turns: lookups/s over all of
them, and the slowest and fastest round. {per_postcode} Warm lookups are drawn, with repeats,
from the last {run.warm_set:,} cold postcodes, which the reader still holds within its default
{CACHE_BYTES // 2**20} MiB budget (the run checks that the warm lookups read nothing).{agreement}

### Targets

{targets}

### Machine

{machine}
{end}
"""
