"""Input locations: the AddressBase drop (a folder or one file), the ballots export (one file),
the boundary-reviews export (a folder of part files) and the organisations export (one file).

Inputs are read where they are, on local disk or on S3 (``s3://bucket/key``); they are not
layer-store objects. Local paths are made absolute because a drop's absolute location is its
``addressbase_source``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
SAMPLE_BOUNDARY_REVIEWS = SAMPLE / "boundary_reviews"
SAMPLE_ORGANISATIONS = SAMPLE / "organisations.csv"

BOUNDARY_REVIEWS_LAYOUT = (
    "boundary_review_id=<integer>/divisionset_generation=old|new/division_type=<TYPE>/"
    "<part>.csv (or .csv.gz), <TYPE> of letters, digits, _ and -"
)
_BOUNDARY_REVIEW_PART = re.compile(
    r"boundary_review_id=(?P<review>0|[1-9][0-9]{0,17})"
    r"/divisionset_generation=(?P<generation>old|new)"
    r"/division_type=(?P<division_type>[A-Za-z0-9_-]+)/[^/]+"
)


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


def export_file(source: str, what: str = "ballots export") -> str:
    """The location of an export delivered as one file (``what``, as errors name it)."""
    if is_s3_url(source):
        location = S3Location.parse(source)
        keys = _s3_keys(location)
        if location.key not in keys:
            if keys:
                raise dg.Failure(f"{what} {source} is a folder; give the CSV file itself")
            raise dg.Failure(f"{what} not found: {source}")
        return source
    path = _local(source, what)
    if not path.is_file():
        raise dg.Failure(f"{what} {path} is a folder; give the CSV file itself")
    return str(path)


@dataclass(frozen=True)
class ExportFile:
    """One CSV file of an export delivered as a folder."""

    relative: str
    """Its path below the export's folder, ``/``-separated."""
    location: str
    """The file itself: an absolute path or an ``s3://`` URL."""
    etag: str | None = None
    """Its S3 ETag (without quotes); ``None`` for a local file."""


@dataclass(frozen=True)
class BoundaryReviewPart:
    """A part file of the boundary-reviews export, with the values its folders give its rows."""

    file: ExportFile
    boundary_review_id: int
    divisionset_generation: str
    division_type: str


def export_folder_files(source: str, what: str) -> tuple[str, list[ExportFile]]:
    """An export delivered as a folder or ``s3://`` prefix: its location and every CSV file
    below it (``.csv`` or ``.csv.gz`` in any case; other files, such as a ``_SUCCESS`` marker,
    are no part of it), sorted by relative path.

    A folder without CSV files is an export of nothing, not an error; a location that does not
    exist is. On S3, where a folder is only a key prefix, it exists when an object is below it
    (a marker will do).
    """
    if is_s3_url(source):
        return _s3_export_folder_files(source, what)
    path = _local(source, what)
    if not path.is_dir():
        raise dg.Failure(f"{what} {path} is a file; give the export's folder")
    files = [
        ExportFile(p.relative_to(path).as_posix(), str(p))
        for p in path.rglob("*")
        if p.is_file() and _is_csv(p.name)
    ]
    return str(path), sorted(files, key=lambda file: file.relative)


def boundary_review_parts(source: str) -> tuple[str, list[BoundaryReviewPart]]:
    """The boundary-reviews export's location and its part files, sorted by path, each with
    the review, divisionset generation and division type its folders name.

    The folders are the only place every row's review is sure to be named (a row's own columns
    may be empty), so a CSV file outside the layout (``BOUNDARY_REVIEWS_LAYOUT``) refuses the
    whole export rather than have its rows guessed at or left out.
    """
    location, files = export_folder_files(source, "boundary reviews export")
    parts, misplaced = [], []
    for file in files:
        match = _BOUNDARY_REVIEW_PART.fullmatch(file.relative)
        if match is None:
            misplaced.append(file.location)
            continue
        parts.append(
            BoundaryReviewPart(
                file=file,
                boundary_review_id=int(match["review"]),
                divisionset_generation=match["generation"],
                division_type=match["division_type"],
            )
        )
    if misplaced:
        shown = ", ".join(misplaced[:5]) + (
            f" and {len(misplaced) - 5} more" if len(misplaced) > 5 else ""
        )
        raise dg.Failure(
            f"boundary reviews export {location} refused: {len(misplaced)} file(s) outside its "
            f"layout, {shown}; every part file must be at {BOUNDARY_REVIEWS_LAYOUT}"
        )
    return location, parts


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


def _s3_export_folder_files(source: str, what: str) -> tuple[str, list[ExportFile]]:
    location = S3Location.parse(source)
    listed = _s3_listing(location)
    if location.key and not location.key.endswith("/") and location.key in listed:
        raise dg.Failure(f"{what} {source} is a file; give the export's folder")
    folder = location.key.rstrip("/") + "/" if location.key else ""
    below = {key: etag for key, etag in listed.items() if key.startswith(folder)}
    if not below:
        raise dg.Failure(f"{what} not found: {source}")
    files = [
        ExportFile(key[len(folder) :], location.url(key), etag)
        for key, etag in sorted(below.items())
        if _is_csv(key)
    ]
    return location.url(folder), files


def _s3_keys(location: S3Location) -> list[str]:
    """Every key starting with the location's key (the object itself and anything below it)."""
    return list(_s3_listing(location))


def _s3_listing(location: S3Location) -> dict[str, str]:
    """The ETag (without quotes) of every key starting with the location's key."""
    try:
        return {
            item["Key"]: item["ETag"].strip('"')
            for item in s3_objects(s3_client(), location.bucket, location.key)
        }
    except ClientError as error:
        raise dg.Failure(f"cannot list {location.url()}: {aws_reason(error)}") from error
