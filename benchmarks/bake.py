"""Benchmark our bake against peer methods on synthetic inputs, end to end, and report.

    .venv/bin/python -m benchmarks.bake --addresses 2000000 --divisions 20000

Generates the inputs (once per size and seed), runs ``databaker bake`` and every peer, each in
a process of its own, cross-checks all outputs, and writes its section of
``docs/benchmarks.md``. Exits 1 if a method failed (a peer over ``--peer-timeout`` is reported,
not failed) or if methods disagree other than on points lying on a boundary.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.agreement import cross_check
from benchmarks.console import say
from benchmarks.inputs import InputSpec, add_input_arguments, ensure_inputs
from benchmarks.machine import describe_machine
from benchmarks.methods import from_bake, from_peer
from benchmarks.our_bake import run_bake
from benchmarks.peer_run import run_peer
from benchmarks.peers import PEERS
from benchmarks.report import Report, markdown_table, methods_table, render, write_section
from benchmarks.summary import (
    crosscheck_rows,
    input_description,
    method_rows,
    notes,
    stage_rows,
    unexplained_mismatches,
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    peers = _peer_names(args.peers)
    spec = InputSpec(args.addresses, args.divisions, args.seed, args.files)
    inputs = ensure_inputs(spec, args.cache)
    work = args.work or args.cache / "runs"
    say(f"inputs: {inputs.folder}; work: {work}")

    say("running databaker bake ...")
    bake = run_bake(inputs, work / "databaker")
    methods = [from_bake(bake)]
    for name in peers:
        say(f"running peer {name} ...")
        methods.append(from_peer(run_peer(PEERS[name], inputs, work / name, args.peer_timeout)))
    for method in methods:
        seconds = method.measurement.wall_seconds
        say(f"  {method.name}: {method.outcome or 'ok'} in {seconds:.1f} s")

    say(f"cross-checking ({args.sample} sampled addresses, and every address) ...")
    agreement = cross_check(inputs, methods, work, args.sample, args.seed)
    rows = method_rows(methods, agreement)
    size = f"a{args.addresses}-d{args.divisions}"
    report = Report(
        size=size,
        title=f"{args.addresses:,} addresses, {args.divisions:,} divisions",
        command=_command_line(argv),
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=describe_machine(),
        inputs=input_description(inputs, agreement),
        methods=rows,
        stages=stage_rows(bake),
        crosscheck=crosscheck_rows(methods, agreement),
        notes=notes(methods, bake),
    )
    write_section(args.output, size, render(report))
    print(methods_table(rows))
    print()
    print(markdown_table(("stage", "seconds"), [(s, f"{v:.1f}") for s, v in report.stages]))
    say(f"wrote {args.output}")

    failed = [m.name for m in methods if m.outcome and not m.measurement.timed_out]
    if failed:
        say(f"failed: {', '.join(failed)} (logs under {work / 'logs'})")
    unexplained = unexplained_mismatches(agreement)
    if unexplained:
        say(f"{unexplained} mismatches not on a boundary: see the examples above")
    return 1 if failed or unexplained else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bake", description=__doc__.split("\n\n")[0]
    )
    add_input_arguments(parser)
    parser.add_argument("--work", type=Path, help="where methods write (default <cache>/runs)")
    parser.add_argument(
        "--peers", default=",".join(PEERS), help=f"comma-separated: {', '.join(PEERS)}; or none"
    )
    parser.add_argument("--peer-timeout", type=float, help="seconds before a peer is stopped")
    parser.add_argument("--sample", type=int, default=2000, help="addresses checked by shapely")
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    return parser


def _peer_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip() and n.strip() != "none"]
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise SystemExit(f"unknown peers {unknown}; choose from {', '.join(PEERS)} or none")
    return names


def _command_line(argv: list[str]) -> str:
    """The command as typed from the project root, whichever interpreter path was used."""
    python = Path(sys.executable)
    try:
        shown = os.path.relpath(python, Path.cwd()) if python.is_relative_to(Path.cwd()) else python
    except ValueError:
        shown = python
    return shlex.join([str(shown), "-m", "benchmarks.bake", *argv])


if __name__ == "__main__":
    sys.exit(main())
