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
import shutil
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.console import say
from benchmarks.consumer_rounds import (
    Bucket,
    ConsumerFiles,
    consumer_files,
    consumer_round,
    upload,
)
from benchmarks.inputs import Inputs, InputSpec, add_input_arguments, ensure_inputs
from benchmarks.lookups import Latencies, cold_postcodes, disagreements
from benchmarks.many_clients import PROCESSES, THREADS, postgis_clients, reader_clients
from benchmarks.our_bake import run_bake
from benchmarks.polars_envs import CONSUMER_VERSIONS, polars_python
from benchmarks.postgis import Cluster, Installation
from benchmarks.read_report import (
    BENCHMARK,
    Layer,
    PostgisSetup,
    ReadRun,
    render,
    results_table,
)
from benchmarks.read_rounds import postgis_round, reader_round
from benchmarks.report import write_section
from databaker_tests.s3_server import ACCESS_KEY, SECRET_KEY, seaweedfs


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    if min(args.rounds, args.lookups, args.warm_lookups, args.warm_set) < 1:
        raise SystemExit("--rounds, --lookups, --warm-lookups and --warm-set must be positive")
    installation = None if args.no_postgis else Installation.find(args.pg_bin)
    spec = InputSpec(args.addresses, args.divisions, args.seed, args.files)
    inputs = ensure_inputs(spec, args.cache)
    layer = baked_layer(inputs, args.cache / "read" / spec.key, args.rebake)
    rng = random.Random(args.seed)
    cold = cold_postcodes(layer.folder, args.lookups, rng)
    recent = cold[-args.warm_set :]
    warm = rng.choices(recent, k=args.warm_lookups)
    say(f"layer: {layer.folder} ({layer.rows:,} addresses); {len(cold)} cold postcodes")

    cluster, postgis = None, None
    if installation is not None:
        cluster = Cluster(installation, args.cache / "postgis" / spec.key)
        postgis = _loaded(cluster, inputs)
    work = args.cache / "read" / spec.key
    pythons = {version: polars_python(version, args.cache) for version in args.polars}
    files = consumer_files(layer.folder, cold, work) if pythons else None
    rounds: dict[tuple[str, str], list[Latencies]] = defaultdict(list)
    mismatched: set[str] = set()
    with _s3(files, work, args.no_s3) as bucket:
        for number in range(1, args.rounds + 1):
            say(f"round {number} of {args.rounds} ...")
            ours = reader_round(layer.folder, cold, warm)
            engines = [ours] if cluster is None else [ours, postgis_round(cluster, cold, warm)]
            for measured in engines:
                for latencies in measured.latencies:
                    rounds[(latencies.engine, latencies.case)].append(latencies)
            if cluster is not None:
                mismatched |= set(disagreements(ours.answers, engines[1].answers))
            if files is not None:
                timed, rows = consumer_round(number, pythons, files, cold, bucket)
                for latencies in timed:
                    rounds[(latencies.engine, latencies.case)].append(latencies)
                for counts in rows.values():
                    sizes = zip(cold, counts, strict=True)
                    mismatched |= {p for p, n in sizes if n != len(ours.answers[p])}
            if not args.no_clients:
                for latencies in _many_clients(layer.folder, cluster, cold, warm):
                    rounds[(latencies.engine, latencies.case)].append(latencies)
    results = [Latencies.pooled(parts) for parts in rounds.values()]

    size = f"a{args.addresses}-d{args.divisions}"
    run = ReadRun(
        size=size,
        title=f"{args.addresses:,} addresses, {args.divisions:,} divisions",
        command=_command_line(argv),
        layer=layer,
        results=results,
        postgis=postgis,
        rounds=args.rounds,
        warm_set=len(recent),
        answers=ours.answers,
        mismatched=sorted(mismatched),
    )
    write_section(args.output, size, render(run), BENCHMARK)
    print(results_table(results))
    say(f"wrote {args.output}")
    if mismatched:
        say(f"{len(mismatched)} postcodes answered differently, e.g. {sorted(mismatched)[:5]}")
        return 1
    return 0


def _many_clients(
    layer: Path, cluster: Cluster | None, cold: list[str], warm: list[str]
) -> list[Latencies]:
    """The reader from threads sharing it and from processes, then PostGIS the same ways."""
    found = [
        *reader_clients(layer, cold, warm, threads=THREADS),
        *reader_clients(layer, cold, warm, processes=PROCESSES),
    ]
    if cluster is not None:
        found += postgis_clients(cluster, cold, warm, threads=THREADS)
        found += postgis_clients(cluster, cold, warm, processes=PROCESSES)
    return found


@contextmanager
def _s3(files: ConsumerFiles | None, work: Path, skip: bool) -> Iterator[Bucket | None]:
    """The consumers' files in a bucket of SeaweedFS on 127.0.0.1, for as long as the block
    runs (its data removed at the end); None without consumers or with ``--no-s3``."""
    if files is None or skip:
        yield None
        return
    data = work / "seaweedfs"
    shutil.rmtree(data, ignore_errors=True)
    try:
        with seaweedfs(data) as server:
            upload(files, server.client(), "layer")
            yield Bucket(server.endpoint, "layer", ACCESS_KEY, SECRET_KEY)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _loaded(cluster: Cluster, inputs: Inputs) -> PostgisSetup:
    """The cluster, loaded with ``inputs`` unless an earlier run did."""
    load = cluster.load_marker(inputs)
    loaded_now = load is None
    with cluster.running() as server:
        if load is None:
            say(f"loading PostGIS in {cluster.folder} ...")
            load = server.load(inputs, cluster)
        version = server.versions()
    return PostgisSetup(version, load, loaded_now)


def baked_layer(inputs: Inputs, work: Path, rebake: bool) -> Layer:
    """The layer baked from ``inputs`` under ``work``, baking it unless a finished bake of the
    same drop is already published there."""
    data = work / "data"
    folder = data / "current_elections_parquet"
    baked_seconds = None
    if rebake or not _published_from(folder, inputs):
        say(f"baking {inputs.folder} into {data} ...")
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.read", description=__doc__.split("\n\n")[0]
    )
    add_input_arguments(parser)
    parser.add_argument(
        "--lookups", type=int, default=2000, help="cold lookups, each in another outcode"
    )
    parser.add_argument("--warm-lookups", type=int, default=20000)
    parser.add_argument(
        "--warm-set", type=int, default=500, help="the last cold postcodes warm ones repeat"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per engine, pooled (default 3)"
    )
    parser.add_argument("--rebake", action="store_true", help="bake even if already baked")
    parser.add_argument(
        "--polars", nargs="*", default=list(CONSUMER_VERSIONS),
        help="polars versions to time the consumers' lookup with (none: not timed)",
    )  # fmt: skip
    parser.add_argument("--no-s3", action="store_true", help="no consumer lookups from S3")
    parser.add_argument(
        "--no-clients", action="store_true", help="no lookups from several clients at once"
    )
    parser.add_argument("--no-postgis", action="store_true", help="time the layer reader only")
    parser.add_argument(
        "--pg-bin", type=Path, help="PostgreSQL binaries (default /usr/lib/postgresql/*/bin)"
    )
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    return parser


def _command_line(argv: list[str]) -> str:
    return shlex.join([".venv/bin/python", "-m", "benchmarks.read", *argv])


if __name__ == "__main__":
    sys.exit(main())
