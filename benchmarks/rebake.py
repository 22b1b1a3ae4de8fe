r"""Benchmark the nightly (or event) rebake: a changed ballots export on an unchanged drop.

    .venv/bin/python -m benchmarks.rebake --addresses 30000000 --divisions 20000

Issue 19 asks that a rebake from a changed ballots export on an unchanged drop take at most
25 s to the published layer at 30 million addresses. The command bakes the generated drop and
ballots export into a fresh data root (``<work>/data``; measured, as the reference), writes two
changed exports (``<work>/ballots-a.csv`` and ``ballots-b.csv``, each without a different,
evenly spaced set of ballots), then runs ``--rounds`` rebakes, ``databaker bake
--keep-addressbase`` with export A and B in turn and every guard rail allowed, so that each
changes some addresses against the layer published before it. Every bake runs in a process of
its own (wall time, peak RSS) and its stages are read from what it printed. After each rebake
the benchmark reads the published manifest: it must be that rebake's bake, and the outcode files
it copied and those it encoded (changed against the bake published before) must make up every
outcode. Writes its section of ``docs/benchmarks.md``; exits 1 if a command failed or a check
found the layer wrong (each command's output is kept under ``<work>/logs``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.changed_ballots import EVERY, ChangedExport, changed_export
from benchmarks.console import positive, say
from benchmarks.inputs import (
    Inputs,
    InputSpec,
    add_input_arguments,
    databaker_command,
    ensure_inputs,
)
from benchmarks.process import Measurement, run_measured
from benchmarks.rebake_report import BENCHMARK, Bake, Section, checks, failed, parse, render
from benchmarks.report import write_section
from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.layers.guard_rails import overrides
from databaker.layers.versions import published_manifest
from databaker.resources import LocalLayerStore


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    spec = InputSpec(args.addresses, args.divisions, args.seed, args.files)
    inputs = ensure_inputs(spec, args.cache)
    work = (args.work or args.cache / "runs" / "rebake").resolve()
    for stale in ("data", "logs"):
        shutil.rmtree(work / stale, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    exports = (
        changed_export(inputs.ballots, work / "ballots-a.csv", args.drop_ballots),
        changed_export(inputs.ballots, work / "ballots-b.csv", args.drop_ballots, between=True),
    )
    say(
        f"inputs: {inputs.folder}; work: {work}; exports A and B each leave out "
        f"{len(exports[0].left_out):,} of {exports[0].ballots:,} ballots"
    )
    bakes = run_bakes(args.rounds, inputs, exports, work)

    size = f"a{args.addresses}-d{args.divisions}-b{len(exports[0].left_out)}"
    section = render(
        Section(
            size=size,
            command=shlex.join([".venv/bin/python", "-m", "benchmarks.rebake", *argv]),
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            inputs=inputs,
            exports=exports,
            rounds=args.rounds,
            bakes=bakes,
        )
    )
    write_section(args.output, size, section, BENCHMARK)
    print(section)
    say(f"wrote {args.output}")
    status = exit_status(bakes, work)
    if status == 0 and not args.keep:
        shutil.rmtree(work / "data", ignore_errors=True)
    return status


def exit_status(bakes: list[Bake], work: Path) -> int:
    """1, saying why on standard error, if a command failed or a check found the layer wrong;
    else 0."""
    stopped = failed(bakes)
    if stopped:
        say(f"failed: {', '.join(stopped)} (logs under {work / 'logs'})")
    wrong = [check.text for check in checks(bakes) if not check.ok]
    for text in wrong:
        say(f"check failed: {text}")
    return 1 if stopped or wrong else 0


def run_bakes(
    rounds: int, inputs: Inputs, exports: tuple[ChangedExport, ChangedExport], work: Path
) -> list[Bake]:
    """The first bake, then each round's rebake, stopping at the first command that fails.
    The bakes run from ``work`` (an in-memory DuckDB spills to ``./.tmp``) without
    ``DAGSTER_HOME``, so no benchmark run lands in a real Dagster instance."""
    root = work / "data"
    store = LocalLayerStore(root=str(root))
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}

    def bake(label: str, export: ChangedExport | None, *args: str) -> Bake:
        say(f"{label} ...")
        command = [
            *databaker_command(), "bake", "--layer", CURRENT_ELECTIONS.name, *args,
            "--data-root", str(root),
        ]  # fmt: skip
        before = published_manifest(store, CURRENT_ELECTIONS.prefix)
        log = work / "logs" / label.replace(" ", "-")
        measured: Measurement = run_measured(command, log_dir=log, env=env, cwd=work)
        after = published_manifest(store, CURRENT_ELECTIONS.prefix)
        done = parse(label, export, measured, before, after)
        outcome = "ok" if measured.ok else f"FAILED (exit {measured.returncode})"
        say(f"  {outcome} in {measured.wall_seconds:.1f} s")
        return done

    drop, ballots = inputs.addressbase.resolve(), inputs.ballots.resolve()
    bakes = [bake("first bake", None, "--addressbase", str(drop), "--ballots", str(ballots))]
    allow = [
        arg for name in sorted(overrides(CURRENT_ELECTIONS.rails)) for arg in ("--allow", name)
    ]
    for number in range(1, rounds + 1):
        if not bakes[-1].measurement.ok:
            break
        export = exports[(number - 1) % 2]
        rebake = ["--keep-addressbase", "--ballots", str(export.path), *allow]
        bakes.append(bake(f"round {number}", export, *rebake))
    return bakes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.rebake", description=__doc__.split("\n\n")[0]
    )
    add_input_arguments(parser)
    parser.add_argument("--rounds", type=positive, default=3, help="rebakes after the first bake")
    parser.add_argument(
        "--drop-ballots", type=positive, metavar="K",
        help=f"ballots each changed export leaves out (default: one in {EVERY})",
    )  # fmt: skip
    parser.add_argument(
        "--work", type=Path,
        help="where the data root, the changed exports and the logs go "
        "(default <cache>/runs/rebake)",
    )  # fmt: skip
    parser.add_argument(
        "--keep", action="store_true",
        help="keep the data root (removed once measured, unless a command or check failed)",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    return parser


if __name__ == "__main__":
    sys.exit(main())
