"""A process that takes a data root's lease as a bake does, holds it, writes, and lets go.

    python -m databaker_tests.lease_holder ROOT NAME [--hold S] [--wait S] [--ttl S] [--log F]

Prints ``held`` once it holds the lease, then holds it for ``--hold`` seconds (or, without it,
until a line arrives on stdin), then writes ``<NAME>.txt`` under the root through the store
(refused if the lease was lost meanwhile) and prints ``wrote`` or ``refused: <why>``. With
``--log``, appends when it held the lease (wall-clock times) as a JSON line, for tests that
check holders never overlap. Exits 3 when the lease stays taken, as ``databaker bake`` does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from databaker.resources import LocalLayerStore, S3LayerStore
from databaker.resources.aws import is_s3_url
from databaker.resources.lease import LeaseBusy, LeaseHolder, LeaseLost


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("name")
    parser.add_argument("--hold", type=float)
    parser.add_argument("--wait", type=float, default=60.0)
    parser.add_argument("--ttl", type=float, default=120.0)
    parser.add_argument("--log")
    args = parser.parse_args()
    store = (
        S3LayerStore(root=args.root, lease_wait_seconds=args.wait, lease_seconds=args.ttl)
        if is_s3_url(args.root)
        else LocalLayerStore(root=args.root, lease_wait_seconds=args.wait)
    )
    notices = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        with store.leased(LeaseHolder(args.name), notify=notices):
            start = time.time()
            print("held", flush=True)
            if args.hold is None:
                sys.stdin.readline()
            else:
                time.sleep(args.hold)
            try:
                store.write_bytes(f"{args.name}.txt", args.name.encode())
                print("wrote", flush=True)
            except LeaseLost as lost:
                print(f"refused: {lost}", flush=True)
            end = time.time()
    except LeaseBusy as busy:
        print(busy, file=sys.stderr, flush=True)
        return 3
    if args.log:
        with open(args.log, "a") as log:
            log.write(json.dumps({"name": args.name, "start": start, "end": end}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
