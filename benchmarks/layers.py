r"""Benchmark the bakes of the layers from one AddressBase drop, round after round, and report.

    .venv/bin/python -m benchmarks.layers --addresses 30000000 --divisions 20000 \
        --boundary-reviews 20 --organisations-divisions 5000

Generates the inputs once (the drop, the ballots export, a boundary-reviews export and, with
``--organisations-divisions``, an organisations export of the map generated for that many
divisions, whose wards come nearer Great Britain's count), then for ``--runs`` rounds bakes
``current_elections``, ``current_boundary_reviews`` and ``current_organisations``, each with
``databaker bake`` in a process of its own into a fresh data root, the order alternating so
that no layer always runs on the warmest page cache. Writes its section of
``docs/benchmarks.md`` with the verdicts the issues ask for: each other layer's bake costs no
more than the current-elections bake of the same drop. Exits 1 if a bake failed.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.console import positive, say
from benchmarks.inputs import Inputs, InputSpec, add_input_arguments, ensure_inputs
from benchmarks.layers_report import BENCHMARK, LayerRun, Section, render
from benchmarks.our_bake import BakeRun, run_bake
from benchmarks.report import write_section
from databaker.assets import layer_named
from databaker.assets.addressbase import addressbase_cleaned_raw, addressbase_partitioned
from databaker.layers import Layer

LAYERS = ("current_elections", "current_boundary_reviews", "current_organisations")
"""Round 1 bakes them in this order, round 2 in the other, and so on (the organisations layer
only with an organisations export)."""


def stage_of_step(layer: Layer) -> dict[str, str]:
    """The layer's steps, by the names its bake prints, mapped to the report's stages (the
    checks, and any step not named here, are counted by ``our_bake.stage_seconds``)."""
    return {
        addressbase_cleaned_raw.key.to_user_string(): "drop",
        layer.input.asset_name: "input",
        addressbase_partitioned.key.to_user_string(): "partition",
        layer.joined.name: "join",
        layer.version_asset_name: "version",
        layer.published_asset_name: "publish",
    }


def bake_layer(layer: Layer, inputs: Inputs, data_root: Path) -> BakeRun:
    return run_bake(
        inputs,
        data_root,
        layer=layer.name,
        input_option=layer.input.option,
        stage_of_step=stage_of_step(layer),
        log_name=layer.name,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    spec = InputSpec(
        args.addresses, args.divisions, args.seed, args.files,
        args.boundary_reviews, args.boundary_review_types, args.organisations_divisions,
    )  # fmt: skip
    layers = LAYERS if args.organisations_divisions else LAYERS[:2]
    inputs = ensure_inputs(spec, args.cache)
    work = args.work or args.cache / "runs" / "layers"
    say(f"inputs: {inputs.folder}; work: {work}")

    runs = []
    for round_number in range(1, args.runs + 1):
        order = layers if round_number % 2 else layers[::-1]
        for name in order:
            say(f"round {round_number}: baking {name} ...")
            data_root = work / f"round{round_number}" / name
            bake = bake_layer(layer_named(name), inputs, data_root)
            runs.append(LayerRun(round_number, name, bake))
            outcome = "ok" if bake.measurement.ok else f"FAILED (logs in {data_root.parent}/logs)"
            say(f"  {name}: {outcome} in {bake.measurement.wall_seconds:.1f} s")
            if bake.measurement.ok and not args.keep:
                shutil.rmtree(data_root, ignore_errors=True)

    size = f"a{args.addresses}-d{args.divisions}-r{args.boundary_reviews}"
    if args.organisations_divisions:
        size += f"-o{args.organisations_divisions}"
    section = render(
        Section(
            size=size,
            command=shlex.join([".venv/bin/python", "-m", "benchmarks.layers", *argv]),
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            inputs=inputs,
            runs=runs,
        )
    )
    write_section(args.output, size, section, BENCHMARK)
    print(section)
    say(f"wrote {args.output}")
    failed = [f"{run.layer} (round {run.round})" for run in runs if not run.bake.measurement.ok]
    if failed:
        say(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.layers", description=__doc__.split("\n\n")[0]
    )
    add_input_arguments(parser)
    parser.add_argument(
        "--boundary-reviews", type=positive, required=True, help="reviews in the export"
    )
    parser.add_argument(
        "--boundary-review-types", type=int, default=3, help="division types per review"
    )
    parser.add_argument(
        "--organisations-divisions",
        type=positive,
        default=0,
        help="also bake the organisations layer, from the organisations export of the map "
        "generated for this many divisions (the same addresses)",
    )
    parser.add_argument("--runs", type=positive, default=2, help="rounds of the bakes")
    parser.add_argument("--work", type=Path, help="where bakes write (default <cache>/runs/layers)")
    parser.add_argument(
        "--keep", action="store_true", help="keep each bake's data root (removed once measured)"
    )
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    return parser


if __name__ == "__main__":
    sys.exit(main())
