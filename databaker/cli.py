"""The ``databaker`` command: ``generate`` synthetic inputs, ``bake`` a layer, list its kept
``versions`` and ``rollback`` to one of them, ``lookup`` a postcode in it, ``status`` of every
layer. ``--layer`` names the layer (``current_elections`` by default).

Every failure is one line (or a short report) on stderr and an exit code of :class:`Exit`, the
same for every command, so that scripts and monitoring can tell the cases apart.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from databaker.bake import BakeResult
    from databaker.definitions import Settings
    from databaker.layers import Layer
    from databaker.resources import LayerStore


class Exit(IntEnum):
    """The exit codes of every command (the README lists them)."""

    OK = 0
    FAILED = 1
    """Not done, the published layer unchanged: a bake stopped (a step, a check, a guard rail,
    too many rejected rows); a rollback refused; a lookup that found nothing."""
    USAGE = 2
    """The command line or the configuration is wrong (an invalid postcode, too)."""
    LEASED = 3
    """Another bake holds the data root's lease (for longer than ``--lease-wait``)."""
    NO_LAYER = 4
    """Nothing is published at that location."""
    STORE = 5
    """The data root could not be read or written (permissions, a damaged file, S3)."""
    MID_PUBLISH = 6
    """Publishing stopped part-way: the layer mixes two bakes until the next bake or a
    rollback completes it."""


def main(argv: list[str] | None = None) -> int:
    from databaker.resources import LayerStoreError
    from databaker.resources.lease import LeaseBusy, LeaseError

    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.command(args)
    except LeaseBusy as busy:
        _fail(busy)
        return Exit.LEASED
    except (LayerStoreError, LeaseError, OSError) as problem:
        _fail(problem)
        return Exit.STORE


def _fail(problem: object) -> None:
    print(f"databaker: {problem}", file=sys.stderr)


def _at_least(minimum: float, kind: Callable[[str], float] = float) -> Callable[[str], float]:
    """An argparse type: a number no smaller than ``minimum`` (else a usage error, exit 2)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            whole = "whole " if kind is int else ""
            raise argparse.ArgumentTypeError(f"{text!r} is not a {whole}number") from None
        if not value >= minimum:
            raise argparse.ArgumentTypeError(f"{text} is less than {minimum:g}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    from databaker.assets import LAYERS
    from databaker.definitions import ENGINES
    from databaker.layers.guard_rails import overrides

    parser = argparse.ArgumentParser(prog="databaker", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    layer = {
        "choices": [known.name for known in LAYERS],
        "default": LAYERS[0].name,
        "help": f"which layer (default: {LAYERS[0].name})",
    }

    bake = commands.add_parser("bake", help="bake a layer (the current-elections one by default)")
    bake.add_argument("--layer", **layer)
    bake.add_argument(
        "--addressbase",
        help="drop folder or file (default: the newest complete drop in "
        "$DATABAKER_ADDRESSBASE_DROPS, else the bundled sample)",
    )
    bake.add_argument(
        "--keep-addressbase",
        action="store_true",
        help="read no drop: rebuild the layer on the AddressBase already baked in the data "
        "root, as the input's sensor does when only the layer's input changed",
    )
    for known in LAYERS:
        if known.input is not None:
            option = known.input.option
            bake.add_argument(
                f"--{option.replace('_', '-')}",
                help=f"the {known.input.label}, for {known.name}: a file, an s3:// URL"
                + (
                    ", or EveryElection's database as postgresql://user@host:port/db "
                    "(password from PGPASSWORD or a pgpass file)"
                    if known.input.export
                    else ""
                )
                + f" (default: $DATABAKER_{option.upper()}, else the bundled sample)",
            )
    dated = [known.name for known in LAYERS if known.input and known.input.as_of_key]
    if dated:
        bake.add_argument(
            "--on",
            type=_iso_date,
            metavar="YYYY-MM-DD",
            help=f"for {', '.join(dated)}: bake what is current on this date (default: today "
            "in Europe/London)",
        )
    bake.add_argument(
        "--data-root",
        help="where layers are written: a folder or s3://bucket/prefix "
        "(default: $DATABAKER_DATA_ROOT, else ./data)",
    )
    bake.add_argument(
        "--engine",
        choices=ENGINES,
        help="query engine (default: $DATABAKER_ENGINE, else duckdb); athena reads "
        "DATABAKER_ATHENA_DATABASE, _WORKGROUP and _OUTPUT from the environment",
    )
    bake.add_argument(
        "--max-rejected-rows",
        type=_at_least(0, int),
        default=0,
        help="rows per input that may be left out (and reported) before the bake stops",
    )
    bake.add_argument(
        "--max-rejected-share",
        type=_share,
        help="share of each input's rows that may be left out (and reported) before the bake "
        "stops (default 0.001); the larger of the two allowances applies",
    )
    bake.add_argument(
        "--allow",
        action="append",
        default=[],
        choices=sorted({name for known in LAYERS for name in overrides(known.rails)}),
        help="publish even though this guard rail of the layer fails (after reading the "
        "bake's diff); repeat for several",
    )
    lease_wait = {
        "type": _at_least(0),
        "metavar": "SECONDS",
        "help": "how long to wait for another bake of the data root to end (default: "
        "$DATABAKER_LEASE_WAIT_SECONDS, else six hours; 0: refuse at once, exit 3)",
    }
    bake.add_argument("--lease-wait", **lease_wait)
    bake.set_defaults(command=_bake)

    versions = commands.add_parser("versions", help="the kept bakes of a layer, oldest first")
    versions.add_argument("--layer", **layer)
    versions.add_argument("--data-root", help="as for bake")
    versions.set_defaults(command=_versions)

    rollback = commands.add_parser("rollback", help="publish a kept bake of a layer again")
    rollback.add_argument("--layer", **layer)
    rollback.add_argument("--to", required=True, metavar="BAKE_ID", help="as listed by versions")
    rollback.add_argument(
        "--force", action="store_true", help="publish it even though its guard rails refused it"
    )
    rollback.add_argument("--data-root", help="as for bake")
    rollback.add_argument("--lease-wait", **lease_wait)
    rollback.set_defaults(command=_rollback)

    lookup = commands.add_parser(
        "lookup",
        help="the addresses of a postcode with their ballots (or the layer's list), from the "
        "published layer; exits "
        "0 when found (or the outcode has no elections), 1 when the layer has no such outcode, "
        "postcode or UPRN, 2 when the postcode is invalid, 4 when no layer is published there "
        "(no _manifest.json), 5 when a file of the layer cannot be read",
    )
    lookup.add_argument("postcode", help="any common way of writing it: sw1a1aa, 'SW1A 1AA'")
    lookup.add_argument("--uprn", type=int, help="only this address of the postcode")
    lookup.add_argument("--json", action="store_true", help="JSON instead of a table")
    lookup.add_argument("--layer", **layer)
    lookup.add_argument("--data-root", help="as for bake")
    lookup.set_defaults(command=_lookup)

    status = commands.add_parser(
        "status",
        help="per layer: when it was built, from what, and whether it is fresh and checked; "
        "exits 1 if any layer is stale or failing (reads the instance at $DAGSTER_HOME)",
    )
    status.add_argument("--layer", choices=layer["choices"], help="only this layer")
    status.set_defaults(command=_status)

    generate = commands.add_parser("generate", help="write a synthetic drop and ballots export")
    generate.add_argument("--addresses", type=int, required=True)
    generate.add_argument("--divisions", type=int, required=True)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--out", type=Path, required=True)
    generate.add_argument("--files", type=int, default=1, help="AddressBase part files")
    generate.add_argument("--gzip", action="store_true", help="write .csv.gz part files")
    generate.add_argument(
        "--boundary-reviews",
        type=_at_least(0, int),
        default=0,
        metavar="N",
        help="also write a boundary-reviews export of N councils' reviews (default 0: none)",
    )
    generate.add_argument(
        "--boundary-review-types",
        type=int,
        choices=(1, 2, 3),
        default=3,
        metavar="K",
        help="division types per review: wards, grouped wards, parishes (default 3)",
    )
    generate.add_argument(
        "--organisations",
        action="store_true",
        help="also write organisations.csv: every council, ward, constituency, police area "
        "and combined authority of the same map",
    )
    generate.set_defaults(command=_generate)
    return parser


def _share(text: str) -> float:
    share = _at_least(0)(text)
    if share > 1:
        raise argparse.ArgumentTypeError(f"{text} is more than 1")
    return share


def _iso_date(text: str) -> str:
    """A calendar date as ``YYYY-MM-DD``, as the command line takes it."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or day.isoformat() != text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date as YYYY-MM-DD")
    return text


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings with the command line's overrides; exits 2 if unusable."""
    from databaker.definitions import ConfigurationError, Settings

    overrides = {
        "data_root": args.data_root,
        "engine": getattr(args, "engine", None),
        "lease_wait_seconds": getattr(args, "lease_wait", None),
    }
    try:
        settings = Settings.from_environment()
    except ConfigurationError as problem:
        print(problem, file=sys.stderr)
        sys.exit(Exit.USAGE)
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def _bake(args: argparse.Namespace) -> int:
    from databaker.assets import LAYERS, layer_named
    from databaker.bake import BakeFailed, bake, echo_stdout
    from databaker.definitions import ConfigurationError

    settings = _settings(args)
    layer = layer_named(args.layer)
    inputs = [known for known in LAYERS if known.input is not None]
    try:
        result = bake(
            layer=layer,
            addressbase=args.addressbase,
            keep_addressbase=args.keep_addressbase,
            settings=settings,
            max_rejected_rows=args.max_rejected_rows,
            max_rejected_share=args.max_rejected_share,
            allow=args.allow,
            on=getattr(args, "on", None),
            echo=echo_stdout,
            **{known.input.option: getattr(args, known.input.option) for known in inputs},
        )
    except (ConfigurationError, ValueError) as problem:
        print(problem, file=sys.stderr)
        return Exit.USAGE
    except BakeFailed as failure:
        print(f"\nBake failed. {failure.layer}\n{failure.report}", file=sys.stderr)
        if failure.leased:
            return Exit.LEASED
        if failure.unusable_root:
            return Exit.STORE
        return Exit.MID_PUBLISH if failure.mid_publish else Exit.FAILED
    print(_bake_summary(layer, result))
    return 0


def _bake_summary(layer: Layer, result: BakeResult) -> str:
    from databaker.assets import LAYERS
    from databaker.markdown import with_article

    published = result.metadata[layer.published_asset_name]
    version = result.metadata[layer.version_asset_name]
    raw = result.metadata.get("addressbase_cleaned_raw")
    against = f"bake {version['baseline']}" if version["baseline"] else "nothing published"
    label = layer.id_label
    with_ids = published[f"addresses_with_{label.replace(' ', '_')}s"]
    lines = [
        f"\nBaked {layer.name} in {result.seconds:.1f} s",
        f"  addresses:          {published['addresses']:,} ({with_ids:,} with "
        f"{with_article(label)})",
    ]
    if raw is None:
        lines.append(f"  AddressBase:        kept as baked, {version['addressbase_source']}")
    rejected = [f"{raw['rejected_rows']:,} AddressBase"] if raw else []
    if layer.input is not None:
        own = result.metadata[layer.input.asset_name]
        export = layer.input.export
        if export is not None and export.asset_name in result.metadata:
            taken = result.metadata[export.asset_name]
            lines.append(
                f"  exported:           {export.label} from {taken['source']} as of "
                f"{taken['as_of']}, {taken['bytes'] / 1e6:,.1f} MB in {taken['seconds']:.1f} s"
            )
        lines.append(f"  {layer.input.summary(own)}")
        rejected.append(f"{own['rejected_rows']:,} {layer.input.option.replace('_', ' ')}")
    lines += [
        f"  outcodes written:   {published['outcodes']:,} ({published['empty_outcodes']:,} empty)",
        f"  published:          bake {published['bake_id']}, "
        f"{published['outcode_files_written']:,} files changed, "
        f"{published['outcode_files_unchanged']:,} unchanged",
        f"  stale deleted:      {published['stale_outcodes_deleted']:,}",
        f"  changed:            {version['addresses_changed']:,} addresses' {label}s, against "
        f"{against}",
        f"  rejected rows:      {', '.join(rejected) or 'none read'}",
    ]
    others = [known.name for known in LAYERS if known is not layer]
    if layer is LAYERS[0] and others:
        lines.append(
            "The other layers bake from the same drop with one more command each: "
            + "; ".join(f"databaker bake --layer {name} --keep-addressbase" for name in others)
        )
    lines.append(f"Layer: {result.layer}")
    return "\n".join(lines)


def _layer_store(args: argparse.Namespace) -> LayerStore:
    """The configured layer store; exits 2, as ``bake`` does, if the configuration is not
    usable."""
    from databaker.definitions import ConfigurationError, build_resources

    try:
        return build_resources(_settings(args))["store"]
    except ConfigurationError as problem:
        print(problem, file=sys.stderr)
        sys.exit(Exit.USAGE)


def _versions(args: argparse.Namespace) -> int:
    from databaker.assets import layer_named
    from databaker.layers.versions import (
        VERSIONS,
        interrupted_publish,
        kept_versions,
        published_manifest,
        refusals,
    )
    from databaker.markdown import with_article

    layer = layer_named(args.layer)
    LAYER = layer.prefix
    store = _layer_store(args)
    published = published_manifest(store, LAYER)
    kept = kept_versions(store, LAYER)
    publishing = interrupted_publish(store, LAYER)
    label = layer.input.option.replace("_", " ") if layer.input else "input"
    if not kept:
        print(f"no kept bakes under {store.uri(VERSIONS + LAYER)}")
    for version in kept:
        mark = "*" if published and published.bake_id == version.bake_id else " "
        refused = refusals(store, LAYER, version.bake_id)
        print(
            f"{mark} {version.bake_id}  {version.created}  {version.rows:,} addresses "
            f"({version.rows_with_ids:,} with {with_article(layer.id_label)})  "
            f"{version.outcodes:,} outcodes  {label} {version.input_version[:19]}"
            + (f" on {version.input_as_of}" if version.input_as_of else "")
            + f"  {version.addressbase_source}"
            + (f"  REFUSED by {', '.join(refused)}" if refused else "")
        )
    if published:
        print(f"* published at {store.uri(LAYER)}")
    if publishing:
        print(
            f"! MID-PUBLISH since {publishing.started}: the layer mixes {publishing.mixing} "
            f"(the publish was interrupted, or is running now). The next bake completes it; "
            f"`databaker rollback --to <bake id>` replaces it."
        )
    return Exit.OK


def _rollback(args: argparse.Namespace) -> int:
    from databaker.assets import layer_named
    from databaker.layers.versions import (
        PublishInterrupted,
        is_complete_version,
        publish,
        refusals,
    )
    from databaker.progress import on_stream
    from databaker.resources.lease import LeaseHolder

    LAYER = layer_named(args.layer).prefix
    store = _layer_store(args)
    holder = LeaseHolder(f"databaker rollback --to {args.to}")
    with store.leased(holder, notify=lambda line: print(line, file=sys.stderr)):
        if not is_complete_version(store, LAYER, args.to):
            print(f"no kept bake {args.to}: `databaker versions` lists them", file=sys.stderr)
            return Exit.FAILED
        refused = refusals(store, LAYER, args.to)
        if refused and not args.force:
            print(
                f"bake {args.to} was refused by {', '.join(refused)}: read its _diff.json, "
                f"then add --force to publish it anyway",
                file=sys.stderr,
            )
            return Exit.FAILED
        try:
            done = publish(store, LAYER, args.to, progress=on_stream(sys.stderr))
        except PublishInterrupted as problem:
            _fail(problem)
            return Exit.MID_PUBLISH
    print(
        f"published bake {done.bake_id}: {done.written:,} files changed, "
        f"{done.unchanged:,} unchanged, {len(done.deleted):,} stale deleted\n"
        f"Layer: {store.uri(LAYER)}"
    )
    return Exit.OK


def _lookup(args: argparse.Namespace) -> int:
    import json

    from databaker.assets import layer_named
    from databaker.layer_reader import (
        Found,
        InvalidPostcode,
        LayerReader,
        LayerUnreadable,
        NoLayer,
    )

    layer = layer_named(args.layer)
    try:
        reader = LayerReader(_layer_store(args).uri(layer.prefix), ids_column=layer.ids_column)
        found = reader.addresses(args.postcode)
    except InvalidPostcode as problem:
        _fail(problem)
        return Exit.USAGE
    except NoLayer as problem:
        _fail(problem)
        return Exit.NO_LAYER
    except LayerUnreadable as problem:
        _fail(f"cannot read the layer: {problem}")
        return Exit.STORE
    addresses = [a for a in found.addresses if args.uprn in (None, a.uprn)]
    known = found.found == Found.NO_ELECTIONS or (found.found == Found.ADDRESSES and addresses)
    if args.json:
        label = layer.id_label.replace(" ", "_")
        answer = {
            "postcode": found.postcode,
            "found": found.found.value if args.uprn is None or addresses else "no such address",
            f"{label}_ids": layer.distinct_ids([i for a in addresses for i in a.ids]),
            "addresses": [
                {
                    "uprn": a.uprn,
                    "address": a.address,
                    "postcode": a.postcode,
                    layer.ids_column: [layer.element_as_json(i) for i in a.ids],
                }
                for a in addresses
            ],
        }
        print(json.dumps(answer, indent=1, ensure_ascii=False))
    elif not known:
        what = f"no address {args.uprn} in" if found.addresses else f"{found.found.value}:"
        print(f"{found.postcode}: {what} {reader.location}")
    else:
        print(_address_table(layer, found.postcode, addresses))
    return Exit.OK if known else Exit.FAILED


def _address_table(layer: Layer, postcode: str, addresses: list) -> str:
    label, nothing = layer.id_label, layer.nothing_here
    separator = "; " if layer.element_text else ", "
    ids = layer.distinct_ids([i for a in addresses for i in a.ids])
    if not addresses:
        return f"{postcode}: {nothing}"
    rows = [("UPRN", "ADDRESS", f"{label.upper()}S")] + [
        (str(a.uprn), a.address, separator.join(map(layer.element_as_text, a.ids)) or "-")
        for a in addresses
    ]
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{row[0]:<{width[0]}}  {row[1]:<{width[1]}}  {row[2]}" for row in rows]
    head = f"{postcode}: {len(addresses)} address(es), {len(ids)} {label}(s): "
    return head + (", ".join(ids) or nothing) + "\n" + "\n".join(lines)


def _status(args: argparse.Namespace) -> int:
    from databaker.assets import LAYERS, layer_named
    from databaker.status import layer_statuses

    if not os.environ.get("DAGSTER_HOME"):
        print("set DAGSTER_HOME to the Dagster instance the daemon uses", file=sys.stderr)
        return 2
    store = _layer_store(argparse.Namespace(data_root=None))
    with dg.DagsterInstance.get() as instance:
        layers = (layer_named(args.layer),) if args.layer else LAYERS
        statuses = layer_statuses(instance, store=store, layers=layers)
    for layer in statuses:
        built = (
            layer.materialised_at.isoformat(timespec="seconds")
            if layer.materialised_at
            else "never"
        )
        failing = len(layer.check_problems)
        print(
            f"{layer.name}: {'OK' if layer.healthy else 'FAILING'}\n"
            f"  materialised:       {built}\n"
            f"  addressbase_source: {layer.addressbase_source}\n"
            f"  {layer.input_version_key + ':':<20}{layer.input_version}\n"
            + (f"  {layer.as_of[0] + ':':<20}{layer.as_of[1]}\n" if layer.as_of else "")
            + f"  checks:             {layer.checks}, "
            + (f"{failing} not passed" if failing else "all passed")
        )
        for problem in layer.problems:
            print(f"  problem: {problem}")
    return 0 if all(layer.healthy for layer in statuses) else 1


def _generate(args: argparse.Namespace) -> int:
    from databaker.generate import generate
    from databaker.progress import on_stream

    try:
        made = generate(
            args.out,
            addresses=args.addresses,
            divisions=args.divisions,
            seed=args.seed,
            files=args.files,
            compress=args.gzip,
            boundary_reviews=args.boundary_reviews,
            boundary_review_types=args.boundary_review_types,
            organisations=args.organisations,
            progress=on_stream(sys.stderr),
        )
    except ValueError as problem:
        _fail(problem)
        return Exit.USAGE
    print(
        f"{made.addresses:,} addresses in {made.addressbase_dir}\n"
        f"{made.ballots:,} ballots ({made.divisions:,} divisions, {made.organisations:,} "
        f"organisations) in {made.ballot_rows:,} rows of {made.ballots_csv}"
    )
    if made.boundary_reviews_dir is not None:
        print(
            f"{made.boundary_reviews:,} boundary reviews ({args.boundary_review_types} division "
            f"types each) in {made.boundary_review_rows:,} rows under {made.boundary_reviews_dir}"
        )
    if made.organisations_csv is not None:
        print(
            f"{made.exported_organisations:,} organisations ({made.exported_divisions:,} "
            f"divisions) in {made.organisation_rows:,} rows of {made.organisations_csv}"
        )
    return 0


def run() -> None:
    """The ``databaker`` script: :func:`main`, exiting with its code.

    The objects alive at the end are frozen first, so that the interpreter's last garbage
    collections pass over them: they are the modules' (Dagster, boto3, pyarrow...), and
    examining them took half a second of every command. Tests call :func:`main`, which freezes
    nothing."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
