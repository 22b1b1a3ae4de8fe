"""Where producers deliver the inputs: dated AddressBase drops, the ballots export, the
boundary-reviews export and the organisations export.

A drops location holds one folder per drop, named by its date (``2026-02-02/``), with the CSV
files anywhere below it (``2026-02-02/addressbase_cleaned/part-000.csv.gz``). A producer that
can marks a finished drop with a ``_SUCCESS`` file in it. Locations are local folders or
``s3://`` URLs; sensors and assets see the same listing either way.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from databaker.resources.aws import S3Location, is_s3_url, s3_client, s3_objects
from databaker.sources import ExportFile, export_folder_files

DROP_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")
SUCCESS_MARKER = "_SUCCESS"
CSV_SUFFIXES = (".csv", ".csv.gz")


@dataclass(frozen=True)
class DropListing:
    """One dated folder of the drops location, as listed now."""

    name: str
    location: str
    csv_files: int
    has_marker: bool
    fingerprint: str
    """Changes whenever a file under the drop is added, removed or rewritten."""


def content_version(location: str) -> str:
    """A version that changes with the file's content: its SHA-256 locally, its ETag on S3."""
    if is_s3_url(location):
        where = S3Location.parse(location)
        head = s3_client().head_object(Bucket=where.bucket, Key=where.key)
        return "etag:" + head["ETag"].strip('"')
    return "sha256:" + _sha256(Path(location).expanduser())


def export_folder_version(location: str, what: str) -> str:
    """A version of an export delivered as a folder (:func:`databaker.sources.export_folder_files`)
    that changes when any of its CSV files is added, removed, renamed or rewritten."""
    return files_version(export_folder_files(location, what)[1])


def files_version(files: Iterable[ExportFile]) -> str:
    """SHA-256 over the sorted (path below the export, content version) pairs of ``files``:
    a local file's content version is its SHA-256, an S3 object's its ETag. Never the
    modification time, which a copy changes and a rewrite within the same second may not."""
    pairs = sorted((file.relative, file.etag or _sha256(Path(file.location))) for file in files)
    return "sha256:" + hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as content:
        for block in iter(lambda: content.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class InputLocations(dg.ConfigurableResource):
    """The drops location, the ballots export, the boundary-reviews export and the organisations
    export of this deployment."""

    addressbase_drops: str = Field(
        description="Folder or s3:// prefix holding one dated folder per AddressBase drop."
    )
    ballots: str = Field(
        description="The ballots export: a CSV file path or s3:// URL, or EveryElection's "
        "database (postgresql://), which the ballots_export asset exports from."
    )
    boundary_reviews: str = Field(
        description="The boundary-reviews export: a folder or s3:// prefix of part files "
        "under boundary_review_id=/divisionset_generation=/division_type= folders.",
    )
    boundary_review_statuses: list[str] = Field(
        default=["CURRENT"],
        description="With the boundary-reviews export taken from EveryElection's database: "
        "the statuses of the reviews it holds (EE's CURRENT, COMPLETED).",
    )
    boundary_review_ids: list[int] = Field(
        default=[],
        description="With the boundary-reviews export taken from EveryElection's database: "
        "exactly these reviews, by ID, whatever their status; empty: select by status.",
    )
    organisations: str = Field(
        default="",
        description="The organisations export: a CSV file path or s3:// URL, a row per piece "
        "of an organisation's area or of one of its divisions, or EveryElection's database "
        "(postgresql://), which the organisations_export asset exports from; empty: none is "
        "configured.",
    )

    def list_drops(self) -> list[DropListing]:
        """Every dated folder of the drops location, oldest first (names sort by date)."""
        files: dict[str, list[tuple[str, str]]] = {}
        for relative, version in self._drop_objects():
            name, _, rest = relative.partition("/")
            if DROP_NAME.fullmatch(name) and rest:
                files.setdefault(name, []).append((rest, version))
        return [self._listing(name, sorted(entries)) for name, entries in sorted(files.items())]

    def latest_complete_drop(self) -> DropListing:
        """The newest drop with a ``_SUCCESS`` marker; what a materialisation reads by default."""
        complete = [drop for drop in self.list_drops() if drop.has_marker and drop.csv_files]
        if not complete:
            raise dg.Failure(
                f"no complete AddressBase drop in {self.addressbase_drops}: expected dated "
                f"folders (YYYY-MM-DD) holding CSV files and a {SUCCESS_MARKER} marker"
            )
        return complete[-1]

    def ballots_version(self) -> str:
        """The ballots export's content version (see :func:`content_version`)."""
        return content_version(self.ballots)

    def boundary_reviews_version(self) -> str:
        """The boundary-reviews export's content version (see :func:`files_version`): it
        changes when a part file is added, removed or rewritten."""
        return export_folder_version(self.boundary_reviews, "boundary reviews export")

    def organisations_version(self) -> str:
        """The organisations export's content version (see :func:`content_version`)."""
        return content_version(self.organisations)

    def _listing(self, name: str, entries: list[tuple[str, str]]) -> DropListing:
        fingerprint = hashlib.sha256(repr(entries).encode()).hexdigest()[:16]
        return DropListing(
            name=name,
            location=self._drop_location(name),
            csv_files=sum(path.lower().endswith(CSV_SUFFIXES) for path, _ in entries),
            has_marker=any(path.rsplit("/", 1)[-1] == SUCCESS_MARKER for path, _ in entries),
            fingerprint=fingerprint,
        )

    def _drop_location(self, name: str) -> str:
        if is_s3_url(self.addressbase_drops):
            return self.addressbase_drops.rstrip("/") + f"/{name}/"
        return str(Path(self.addressbase_drops).expanduser().resolve() / name)

    def _drop_objects(self) -> list[tuple[str, str]]:
        """``(path relative to the drops location, version)`` of every file under it."""
        if is_s3_url(self.addressbase_drops):
            location = S3Location.parse(self.addressbase_drops.rstrip("/") + "/")
            return [
                (item["Key"][len(location.key) :], f"{item['Size']}:{item['ETag']}")
                for item in s3_objects(s3_client(), location.bucket, location.key)
            ]
        root = Path(self.addressbase_drops).expanduser()
        if not root.is_dir():
            raise dg.Failure(f"the AddressBase drops location {root} is not a folder")
        return [
            (path.relative_to(root).as_posix(), f"{stat.st_size}:{stat.st_mtime_ns}")
            for path in root.rglob("*")
            if path.is_file() and (stat := path.stat())
        ]
