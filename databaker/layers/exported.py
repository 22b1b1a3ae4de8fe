"""An input exported from EveryElection's database (EE): the asset that writes it into the data
root, in exactly the format the layer's input asset reads from a delivered file.

A deployment makes EE's database an input's source by giving a ``postgresql://`` URL as its
location (``DATABAKER_BALLOTS``, ``--ballots``). The layer's graph then gains the export asset
upstream of its input asset, its jobs export before they read, and EE's change events (not the
file sensor) trigger its rebuilds. With a file location nothing of this is in the graph: the
files stay the alternative.

An export is taken in one read-only transaction and streamed to its files, staged, then moved
into place as a whole: a failed export leaves the previous one. Its data version is the
SHA-256 of what it wrote, so a rebuild after an event that changed nothing the layer reads
finds its input unchanged.
"""

import datetime
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO
from zoneinfo import ZoneInfo

import dagster as dg
from pydantic import Field

from databaker.catalog import OWNERS
from databaker.concurrency import layer_pool
from databaker.resources import LayerStore
from databaker.resources.every_election import (
    EveryElectionDatabase,
    EveryElectionUnavailable,
    Snapshot,
    is_every_election_url,
    redacted,
)
from databaker.resources.input_locations import InputLocations
from databaker.staging import staging_area

EXPORTS_PREFIX = "every_election/"
EXPORTED_MARKER = "_SUCCESS"
"""Written with every export, so that an export of nothing (no reviews selected) is still an
export, which the readers pass over as they do a producer's marker."""
LONDON = ZoneInfo("Europe/London")


class ExportConfig(dg.Config):
    as_of: str | None = Field(
        default=None,
        description="The date the export is taken as of (YYYY-MM-DD), which decides what is "
        "current; by default today in Europe/London.",
    )

    def date(self) -> datetime.date:
        if not self.as_of:
            return datetime.datetime.now(LONDON).date()
        try:
            return datetime.date.fromisoformat(self.as_of)
        except ValueError:
            raise dg.Failure(f"as_of must be a date, YYYY-MM-DD, not {self.as_of!r}") from None


@dataclass
class ExportFiles:
    """The files of one export being written: each opened by path below the export, hashed as
    it is written."""

    store: LayerStore
    staging: str
    written: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Each file's SHA-256 and size in bytes, by its path below the export."""

    @contextmanager
    def open(self, relative: str) -> Iterator[BinaryIO]:
        if relative in self.written:
            raise ValueError(f"{relative} is written twice in one export")
        with self.store.open_output(self.staging + relative) as out:
            writer = _HashingWriter(out)
            yield writer  # type: ignore[misc]
        self.written[relative] = (writer.digest.hexdigest(), writer.size)

    @property
    def version(self) -> str:
        pairs = sorted((path, sha) for path, (sha, _) in self.written.items())
        return "sha256:" + hashlib.sha256(json.dumps(pairs).encode()).hexdigest()

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.written.values())


class _HashingWriter:
    """Writes blocks on to ``out``, keeping their SHA-256 and size."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, block: bytes | memoryview) -> int:
        self.digest.update(block)
        self.size += len(block)
        return self.out.write(block)


@dataclass(frozen=True)
class ExportRequest:
    """What an export is taken for: the date that decides what is current, and the
    deployment's input settings (a selection of what to export, say)."""

    as_of: datetime.date
    inputs: InputLocations


ExportWriter = Callable[[Snapshot, ExportFiles, ExportRequest], Mapping[str, int]]
"""Writes an export's files from one snapshot of EE; returns its counts (``{"ballots": 12}``)."""


@dataclass(frozen=True)
class DatabaseExport:
    """An input of a layer that EE's database can be the source of, and how it is exported."""

    asset_name: str
    """The export asset's name: ``ballots_export``."""
    layer: str
    option: str
    """The input's field of :class:`InputLocations` and its command-line option."""
    label: str
    reads: str
    """What the input asset reads below the export: a file (``ballots.csv``) or ``""``, the
    export's folder itself."""
    write: ExportWriter
    description: str
    events: tuple[str, ...]
    """EE's change events (EventBridge detail-types) that concern this input."""

    @property
    def prefix(self) -> str:
        return f"{EXPORTS_PREFIX}{self.asset_name}/"

    def configured(self, inputs: InputLocations) -> str:
        return getattr(inputs, self.option)

    def location_read(self, store: LayerStore, source: str, inputs: InputLocations) -> str:
        """Where the input asset reads the export when its source is EE's database ``source``:
        the latest export in the data root, which must be of that same database."""
        if source != self.configured(inputs):
            raise dg.Failure(
                f"{redacted(source)}: EveryElection's database is a source of the {self.label} "
                f"only as the deployment's own ({self.option} location), which the "
                f"{self.asset_name} asset exports; it is {redacted(self.configured(inputs))}"
            )
        key = self.prefix + self.reads
        if self.prefix + EXPORTED_MARKER not in store.list_keys(self.prefix):
            raise dg.Failure(
                f"no {self.label} has been exported from {redacted(source)} yet: materialise "
                f"{self.asset_name} first (the layer's jobs do)"
            )
        return store.uri(key)


def export_asset(export: DatabaseExport) -> dg.AssetsDefinition:
    """The asset that writes ``export`` from EE's database into the data root."""

    @dg.asset(
        name=export.asset_name,
        group_name=export.layer,
        kinds={"postgres", "csv"},
        pool=layer_pool(export.layer),
        owners=OWNERS,
        description=export.description,
    )
    def exported(
        context: dg.AssetExecutionContext,
        config: ExportConfig,
        store: LayerStore,
        inputs: InputLocations,
    ) -> dg.MaterializeResult:
        source = export.configured(inputs)
        if not is_every_election_url(source):
            raise dg.Failure(
                f"the {export.label} comes from {source}, not EveryElection's database: "
                f"there is nothing to export"
            )
        database = EveryElectionDatabase(source)
        as_of = config.date()
        started = time.monotonic()
        with staging_area(store, context) as staging:
            files = ExportFiles(store, staging)
            try:
                with database.snapshot() as snapshot:
                    counts = dict(export.write(snapshot, files, ExportRequest(as_of, inputs)))
            except EveryElectionUnavailable as error:
                raise dg.Failure(f"{export.label} not exported: {error}") from None
            store.write_bytes(staging + EXPORTED_MARKER, b"")
            store.replace_prefix(staging, export.prefix)
        seconds = time.monotonic() - started
        context.log.info(
            f"{export.label} exported from {database.shown} as of {as_of}: "
            + ", ".join(f"{value:,} {name}" for name, value in counts.items())
            + f"; {len(files.written)} file(s), {files.bytes / 1e6:,.1f} MB in {seconds:.1f} s"
        )
        return dg.MaterializeResult(
            data_version=dg.DataVersion(files.version),
            metadata={
                "source": database.shown,
                "as_of": as_of.isoformat(),
                "export_version": files.version,
                "files": len(files.written),
                "bytes": files.bytes,
                "seconds": round(seconds, 2),
                **counts,
                "path": dg.MetadataValue.path(store.uri(export.prefix + export.reads)),
            },
        )

    return exported
