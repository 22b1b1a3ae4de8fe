"""The consumers' own lookup, timed: ``polars.read_parquet`` of an outcode file, then the rows of
one postcode, as WhereDoIVote reads the files it syncs to disk, and as the aggregator API reads
the object it fetches from S3 with ``get_object``.

Run by the benchmarks under the Python of an environment holding the polars version to time
(:mod:`benchmarks.polars_envs`), so it imports nothing of the project: polars, and boto3 for S3.
Reads a job as JSON on stdin, writes the latencies in seconds as JSON on stdout::

    {"case": "disk" | "page cache" | "s3", "lookups": [[file or key, postcode], ...],
     "s3": {"endpoint": ..., "bucket": ..., "key_id": ..., "secret": ...}}

``disk`` drops each file from the page cache just before its lookup; ``page cache`` reads every
file once, untimed, first. One lookup, untimed, warms polars up first (its thread pool, its
first allocations), which would otherwise be charged to whichever file comes first. Each
answer's row count is returned with its latency, so that a layout that loses rows cannot pass
for a fast one.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time


def main() -> None:
    import polars as pl

    job = json.load(sys.stdin)
    case, lookups = job["case"], job["lookups"]
    fetch = _s3_fetch(job["s3"]) if case == "s3" else None
    if case == "page cache":
        for path, _ in lookups:
            with open(path, "rb") as file:
                file.read()
    first, postcode = lookups[0]
    pl.read_parquet(io.BytesIO(fetch(first)) if fetch else first).filter(
        pl.col("postcode") == postcode
    )
    if case == "disk":
        _evict(first)
    seconds, rows = [], []
    for path, postcode in lookups:
        if case == "disk":
            _evict(path)
        start = time.perf_counter()
        source = io.BytesIO(fetch(path)) if fetch else path
        found = pl.read_parquet(source).filter(pl.col("postcode") == postcode)
        seconds.append(time.perf_counter() - start)
        rows.append(found.height)
    json.dump({"polars": pl.__version__, "seconds": seconds, "rows": rows}, sys.stdout)


def _evict(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


def _s3_fetch(s3: dict):
    """``get_object`` on one client, as a service holds one."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3["endpoint"],
        aws_access_key_id=s3["key_id"],
        aws_secret_access_key=s3["secret"],
        region_name="us-east-1",
    )

    def fetch(key: str) -> bytes:
        return client.get_object(Bucket=s3["bucket"], Key=key)["Body"].read()

    return fetch


if __name__ == "__main__":
    main()
