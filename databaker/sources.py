"""Input locations: the AddressBase drop (a folder or one file) and the ballots export.

Inputs are read where they are, on local disk or on S3 (``s3://bucket/key``); they are not
layer-store objects. Local paths are made absolute because a drop's absolute location is its
``addressbase_source``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import dagster as dg
from botocore.exceptions import ClientError
from isal import igzip

from databaker.resources.aws import (
    S3_SCHEME,
    S3Location,
    arrow_s3_filesystem,
    aws_reason,
    is_s3_url,
    s3_client,
    s3_objects,
)

CSV_SUFFIXES = (".csv", ".csv.gz")

SAMPLE = Path(__file__).parent / "sample"
SAMPLE_DROPS = SAMPLE / "addressbase"
SAMPLE_ADDRESSBASE = SAMPLE_DROPS / "2026-01-05"
SAMPLE_BALLOTS = SAMPLE / "ballots.csv"


def drop_files(source: str) -> tuple[str, list[str]]:
    """The drop's ``addressbase_source`` and its CSV files, in a stable (sorted) order."""
    if is_s3_url(source):
        return _s3_drop_files(source)
    path = _local(source, "AddressBase drop")
    if path.is_file():
        return str(path), [str(path)]
    files = sorted(str(p) for p in path.rglob("*") if p.is_file() and _is_csv(p.name))
    if not files:
        raise dg.Failure(f"AddressBase drop {path} holds no .csv or .csv.gz files")
    return str(path), files


@contextmanager
def opened_input(location: str) -> Iterator[BinaryIO]:
    """An input file (local path or ``s3://`` URL) as a stream of its bytes, decompressed when
    its name ends in ``.gz`` (in any case). ISA-L inflates gzip about twice as fast as zlib.

    The location is the object itself, never a pattern; an S3 key is taken whole, even one
    holding ``?`` or ``#``, which a URL would read as its query or fragment.
    """
    if is_s3_url(location):
        path = location.removeprefix(S3_SCHEME)
        raw = arrow_s3_filesystem().open_input_stream(path, compression=None)
    else:
        raw = open(location, "rb")  # noqa: SIM115 (closed below, with the decompressor)
    with raw:
        if not location.lower().endswith(".gz"):
            yield raw
            return
        with igzip.IGzipFile(fileobj=raw, mode="rb") as decompressed:
            yield decompressed


def export_file(source: str) -> str:
    """The ballots export's location, which must be one file."""
    if is_s3_url(source):
        location = S3Location.parse(source)
        keys = _s3_keys(location)
        if location.key not in keys:
            if keys:
                raise dg.Failure(f"ballots export {source} is a folder; give the CSV file itself")
            raise dg.Failure(f"ballots export not found: {source}")
        return source
    path = _local(source, "ballots export")
    if not path.is_file():
        raise dg.Failure(f"ballots export {path} is a folder; give the CSV file itself")
    return str(path)


def _is_csv(name: str) -> bool:
    return name.lower().endswith(CSV_SUFFIXES)


def _local(source: str, what: str) -> Path:
    if "://" in source:
        raise dg.Failure(f"{what} {source}: only local paths and s3:// URLs are supported")
    path = Path(source).expanduser().resolve()
    if not path.exists():
        raise dg.Failure(f"{what} not found: {path}")
    return path


def _s3_drop_files(source: str) -> tuple[str, list[str]]:
    location = S3Location.parse(source)
    keys = _s3_keys(location)
    if location.key in keys:
        return source, [source]
    folder = location.key.rstrip("/") + "/" if location.key else ""
    below = [key for key in keys if key.startswith(folder)]
    if not below:
        raise dg.Failure(f"AddressBase drop not found: {source}")
    files = sorted(location.url(key) for key in below if _is_csv(key))
    if not files:
        raise dg.Failure(f"AddressBase drop {source} holds no .csv or .csv.gz files")
    return location.url(folder), files


def _s3_keys(location: S3Location) -> list[str]:
    """Every key starting with the location's key (the object itself and anything below it)."""
    try:
        return [item["Key"] for item in s3_objects(s3_client(), location.bucket, location.key)]
    except ClientError as error:
        raise dg.Failure(f"cannot list {location.url()}: {aws_reason(error)}") from error
