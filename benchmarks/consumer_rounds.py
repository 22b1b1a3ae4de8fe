"""The consumers' own lookups in the read benchmark, beside the layer reader's and PostGIS's.

Democracy Club's consumers read the layer with polars: WhereDoIVote ``read_parquet``s
``<OUTCODE>.parquet`` from the folder it syncs and filters by postcode; the aggregator API
fetches the object with ``get_object`` and reads those bytes the same way. Each is timed with
every polars version the consumers pin (:mod:`benchmarks.polars_envs`), on the layer's files and
on the same rows written as the original baker writes them, on disk (each file dropped from the
page cache first), in the page cache, and from S3 (SeaweedFS on 127.0.0.1).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.lookups import Latencies, outcode_file
from benchmarks.polars_envs import polars_lookups
from benchmarks.read_rounds import COLD_FROM_DISK, COLD_PAGE_CACHE

FROM_S3 = "from S3, get_object"
CASES = (("disk", COLD_FROM_DISK), ("page cache", COLD_PAGE_CACHE), ("s3", FROM_S3))
""":mod:`benchmarks.polars_lookups`' cases, and their labels in the report."""
OURS = "our files"
ORIGINAL = "the original's layout"


@dataclass(frozen=True)
class ConsumerFiles:
    """The cold postcodes' outcode files, in the layer and in the original's layout."""

    folders: dict[str, Path]
    """By layout (:data:`OURS`, :data:`ORIGINAL`)."""
    names: list[str]
    """Each cold postcode's file name."""


@dataclass(frozen=True)
class Bucket:
    """Where the files are in S3, under ``<layout number>/<name>``, and how to reach them."""

    endpoint: str
    name: str
    key_id: str
    secret: str

    def job(self) -> dict[str, str]:
        return {
            "endpoint": self.endpoint,
            "bucket": self.name,
            "key_id": self.key_id,
            "secret": self.secret,
        }


def original_layout(table: pa.Table) -> bytes:
    """An outcode file as the original baker writes it: polars ``write_parquet`` with its
    defaults, one call per outcode."""
    sink = io.BytesIO()
    pl.from_arrow(table).write_parquet(sink)
    return sink.getvalue()


def consumer_files(layer: Path, postcodes: list[str], work: Path) -> ConsumerFiles:
    """The files of ``postcodes``' outcodes, and the same rows in the original's layout under
    ``work`` (written anew each run, from the layer as it is)."""
    names = [outcode_file(postcode) for postcode in postcodes]
    original = work / "original-layout"
    original.mkdir(parents=True, exist_ok=True)
    for name in names:
        (original / name).write_bytes(original_layout(pq.read_table(layer / name)))
    return ConsumerFiles({OURS: layer, ORIGINAL: original}, names)


def upload(files: ConsumerFiles, client, bucket: str) -> None:
    """Put every layout's files in ``bucket``, under the layout's number."""
    client.create_bucket(Bucket=bucket)
    for number, folder in enumerate(files.folders.values()):
        for name in files.names:
            client.put_object(
                Bucket=bucket, Key=f"{number}/{name}", Body=(folder / name).read_bytes()
            )


def consumer_round(
    number: int,
    pythons: dict[str, Path],
    files: ConsumerFiles,
    postcodes: list[str],
    bucket: Bucket | None,
) -> tuple[list[Latencies], dict[str, list[int]]]:
    """Round ``number``: every polars version on every layout, from disk, in the page cache and
    from S3, the layouts back to back for each case and taking turns at going first (this
    machine's speed drifts from one minute to the next). Returns the latencies and, by engine,
    each postcode's row count (every case's: they must agree)."""
    timed: list[Latencies] = []
    rows: dict[str, list[int]] = {}
    layouts = list(enumerate(files.folders.items()))
    if number % 2 == 0:
        layouts.reverse()
    for version, python in pythons.items():
        for case, label in CASES:
            if case == "s3" and bucket is None:
                continue
            for place, (layout, folder) in layouts:
                engine = f"polars {version}, {layout}"
                if case == "s3":
                    where = [f"{place}/{name}" for name in files.names]
                else:
                    where = [str(folder / name) for name in files.names]
                latencies, counts = polars_lookups(
                    python,
                    case,
                    list(zip(where, postcodes, strict=True)),
                    engine=engine,
                    label=label,
                    s3=bucket.job() if case == "s3" else None,
                )
                timed.append(latencies)
                if rows.setdefault(engine, counts) != counts:
                    raise RuntimeError(f"{engine}: {label} found other rows than before")
    return timed, rows
