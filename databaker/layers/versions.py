"""Versioned bakes of a layer, and publishing one of them: the shared mechanics of every layer.

A bake writes its outcode files to a version of its own, ``versions/<layer>/<bake-id>/``,
finished by its manifest (``_manifest.json``: what was baked from what, and a content hash
per file). Nothing reads a version until it is published to the layer's stable path, which
consumers read:

1. a marker (``_publishing.json``) says a publish is under way, of which bake, over which;
2. files whose content differs from the published manifest's are copied in, one whole object
   at a time, from the version or from the earlier one holding them (``Manifest.held_by``);
   files with the same hash are not rewritten;
3. stale outcodes are deleted;
4. the version's manifest is written as the published manifest, and the marker removed.

A process killed at any moment leaves each published file either as it was or as the version
has it; while the marker is there, the layer is **mid-publish** (a mix of two bakes), and says
so (:func:`interrupted_publish`). The next bake of the layer first completes the interrupted
publish (:func:`complete_interrupted_publish`); a rollback replaces it. A publish that finds the
marker trusts no hash and copies every file. Rolling back is publishing a kept version again.

Manifests, verdicts and markers are read through declared schemas that ignore fields they do
not know and fill defaults for fields they lack, so the kept versions of an older (or newer)
release stay readable across an upgrade.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, field
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import AliasChoices, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from databaker.progress import Progress, logged
from databaker.resources import LayerStore, LayerStoreError

MANIFEST = "_manifest.json"
VERDICTS = "_verdicts.json"
"""Beside a version's manifest: each check that gates its publication, and whether it refused
the version (failed, not overridden)."""
PUBLISHING = "_publishing.json"
VERSIONS = "versions/"
KEPT_VERSIONS = 5
T = TypeVar("T")

TOLERANT = ConfigDict(extra="ignore")
"""Records kept across releases: unknown fields are ignored, missing ones take defaults. A
field that is renamed must keep its old name as an alias (``validation_alias``): a default
standing in for a renamed count would mislead the guard rails."""
NOT_RECORDED = "(not recorded)"


@dataclass(frozen=True, config=TOLERANT)
class Manifest:
    """What one bake of a layer holds. ``files`` maps each published file's name to its
    SHA-256."""

    bake_id: str
    created: str = ""
    addressbase_source: str = "unknown"
    input_version: str = Field(
        default="unknown", validation_alias=AliasChoices("input_version", "ballots_version")
    )
    """The content version of the layer's own input (the ballots export's, say); kept as
    ``ballots_version`` by releases that baked one layer only."""
    input_as_of: str = ""
    """The date (``YYYY-MM-DD``) the input was read as of, for an input of what is current on
    a date (the organisations export); empty for others."""
    rows: int = 0
    rows_with_ids: int = 0
    outcodes: int = 0
    empty_outcodes: int = 0
    files: dict[str, str] = field(default_factory=dict)
    rejected_rows: dict[str, int] = field(default_factory=dict)
    """Rows each input left out; their reports are kept beside the manifest, in ``rejected/``."""
    addresses_per_id: dict[str, int] = field(default_factory=dict)
    """How many addresses each ID covers."""
    held_by: dict[str, str] = field(default_factory=dict)
    """The files this bake's own version does not hold, each with the bake whose version does:
    a file whose rows had not changed since an earlier bake stays where that bake wrote it
    rather than being copied (thousands of copies on S3)."""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode()

    def file_key(self, layer_prefix: str, name: str) -> str:
        """Where this bake's file ``name`` is kept: in its own version or in the one holding
        it."""
        return version_prefix(layer_prefix, self.held_by.get(name, self.bake_id)) + name

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        return _MANIFEST.validate_json(data)


_MANIFEST = TypeAdapter(Manifest)


@dataclass(frozen=True, config=TOLERANT)
class PublishMarker:
    """A publish under way, or interrupted if it is still there when no bake runs."""

    bake_id: str
    previous: str | None = NOT_RECORDED
    """The bake published before it began (None: nothing was): the layer mixes its files and
    ``bake_id``'s."""
    started: str = ""

    @property
    def mixing(self) -> str:
        """What the layer mixes: ``bake A with bake B``."""
        if self.previous == NOT_RECORDED:
            was = "the bake published before"
        else:
            was = f"bake {self.previous}" if self.previous else "nothing published"
        return f"{was} with bake {self.bake_id}"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode()


_MARKER = TypeAdapter(PublishMarker)
_VERDICTS = TypeAdapter(dict[str, bool])


@dataclass(frozen=True)
class Publication:
    """What publishing a version did to the layer."""

    bake_id: str
    written: int
    unchanged: int
    deleted: tuple[str, ...]


class PublishInterrupted(LayerStoreError):
    """A publish stopped part-way: the layer is mid-publish, as the message says."""


def new_bake_id(run_id: str, now: datetime | None = None) -> str:
    """A bake ID that sorts by time, to the millisecond:
    ``20261127T014500123Z-<first 8 characters of the run ID>``. (Bakes of a small layer can
    end within one second; to the second, such bakes sorted by their run IDs.)"""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S}{moment.microsecond // 1000:03d}Z-{run_id[:8]}"


def version_prefix(layer_prefix: str, bake_id: str) -> str:
    return f"{VERSIONS}{layer_prefix}{bake_id}/"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_manifest(store: LayerStore, layer_prefix: str, manifest: Manifest) -> None:
    """Finish a version: a version without its manifest is incomplete and never published."""
    store.write_bytes(version_prefix(layer_prefix, manifest.bake_id) + MANIFEST, manifest.to_json())


def write_verdicts(
    store: LayerStore, layer_prefix: str, bake_id: str, refused: dict[str, bool]
) -> None:
    data = json.dumps(refused, indent=1, sort_keys=True).encode()
    store.write_bytes(version_prefix(layer_prefix, bake_id) + VERDICTS, data)


def refusals(store: LayerStore, layer_prefix: str, bake_id: str) -> list[str]:
    """The checks that refused version ``bake_id``; none for a version without verdicts."""
    key = version_prefix(layer_prefix, bake_id) + VERDICTS
    verdicts = _read(store, key, _VERDICTS)
    return sorted(name for name, refused in (verdicts or {}).items() if refused)


def published_manifest(store: LayerStore, layer_prefix: str) -> Manifest | None:
    return _read(store, layer_prefix + MANIFEST, _MANIFEST)


def interrupted_publish(store: LayerStore, layer_prefix: str) -> PublishMarker | None:
    """The publish under way or, when no bake holds the data root, the one that was
    interrupted: the layer then mixes two bakes' files until it is completed or rolled back."""
    return _read(store, layer_prefix + PUBLISHING, _MARKER)


def kept_versions(store: LayerStore, layer_prefix: str) -> list[Manifest]:
    """The complete versions of the layer whose manifest can be read, oldest first."""
    manifests = (_read(store, key, _MANIFEST) for key in _manifest_keys(store, layer_prefix))
    return [manifest for manifest in manifests if manifest is not None]


def is_complete_version(store: LayerStore, layer_prefix: str, bake_id: str) -> bool:
    """Whether ``bake_id`` is one of the layer's versions and has its manifest: one listing
    of the versions' folders and one object looked for, where :func:`kept_versions` reads
    every manifest (a second on S3 with a few versions of 5,748 files)."""
    return bake_id in _bake_ids(store, layer_prefix) and store.exists(
        version_prefix(layer_prefix, bake_id) + MANIFEST
    )


def publish(
    store: LayerStore, layer_prefix: str, bake_id: str, progress: Progress = logged
) -> Publication:
    """Make the layer's stable path hold version ``bake_id``, in the steps of the module doc,
    counting the files copied on ``progress`` (on S3, thousands of copies one after another).

    The files are copied as many at a time as the store keeps requests in flight.

    Raises :class:`PublishInterrupted` if a step fails once the first file has been replaced,
    saying how far it got: the layer is then mid-publish, and the marker says so to everyone.
    The layer's manifest, written last, is the version's byte for byte.
    """
    key = version_prefix(layer_prefix, bake_id) + MANIFEST
    try:
        written_manifest = store.read_bytes(key)
    except LayerStoreError:
        raise LayerStoreError(
            f"no complete version {bake_id!r} of {layer_prefix} to publish"
        ) from None
    manifest = _parsed(store, key, written_manifest, _MANIFEST)
    interrupted = interrupted_publish(store, layer_prefix)
    try:
        current = published_manifest(store, layer_prefix)
    except LayerStoreError:
        current = None  # unreadable: no hash is trusted, every file is copied
    known = current.files if current and interrupted is None else {}
    marker = PublishMarker(
        bake_id=bake_id,
        previous=current.bake_id if current else None,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    store.write_bytes(layer_prefix + PUBLISHING, marker.to_json())
    changed = [name for name, digest in sorted(manifest.files.items()) if known.get(name) != digest]
    written = 0

    def counted() -> None:
        nonlocal written
        written += 1
        copied.advance()

    try:
        with progress(f"publishing bake {bake_id}", len(changed), "files copied") as copied:
            pairs = [
                (manifest.file_key(layer_prefix, name), layer_prefix + name) for name in changed
            ]
            store.copy_all(pairs, counted)
        bookkeeping = {layer_prefix + MANIFEST, layer_prefix + PUBLISHING}
        stale = [
            key
            for key in store.list_keys(layer_prefix)
            if key not in bookkeeping and key[len(layer_prefix) :] not in manifest.files
        ]
        store.delete(stale)
        store.write_bytes(layer_prefix + MANIFEST, written_manifest)
        store.delete([layer_prefix + PUBLISHING])
    except Exception as error:
        raise PublishInterrupted(
            f"publishing bake {bake_id} stopped after {written} of {len(changed)} changed "
            f"file(s) ({error}); the layer at {store.uri(layer_prefix)} is mid-publish, mixing "
            f"{marker.mixing}: the next bake of the layer completes it, or "
            f"`databaker rollback --to <bake id>` replaces it"
        ) from error
    return Publication(bake_id, written, len(manifest.files) - written, tuple(stale))


def complete_interrupted_publish(
    store: LayerStore, layer_prefix: str, progress: Progress = logged
) -> Publication | None:
    """Finish a publish that was interrupted (its bake passed its guard rails before it began),
    or, if that bake's version is gone, revert to the bake published before; None if the layer
    is not mid-publish. Only for a holder of the data root's lease: otherwise the marker may
    belong to a publish under way."""
    marker = interrupted_publish(store, layer_prefix)
    if marker is None:
        return None
    kept = {manifest.bake_id for manifest in kept_versions(store, layer_prefix)}
    for bake_id in (marker.bake_id, marker.previous):
        if bake_id in kept:
            return publish(store, layer_prefix, bake_id, progress)
    raise LayerStoreError(
        f"the layer at {store.uri(layer_prefix)} is mid-publish ({marker.mixing}), and neither "
        f"bake is kept any more: publish a kept one with `databaker rollback --to <bake id>`"
    )


def prune_versions(store: LayerStore, layer_prefix: str, keep: int = KEPT_VERSIONS) -> list[str]:
    """Delete complete versions beyond the newest ``keep`` (never the published one, nor one
    whose publish was interrupted) and every incomplete version, left by a bake that died;
    return the bake IDs of those deleted. The files of a deleted version that a kept one names
    (``held_by``) stay where they are; the rest of it goes, its manifest first, so that it is
    no longer a version. Only for the holder of the data root's lease, whose own version is
    complete by then: no other bake can be writing one."""
    complete = [key.split("/")[-2] for key in _manifest_keys(store, layer_prefix)]
    published = published_manifest(store, layer_prefix)
    marker = interrupted_publish(store, layer_prefix)
    keep_ids = set(complete[-keep:])
    keep_ids |= {m.bake_id for m in (published, marker) if m is not None}
    doomed = [bake_id for bake_id in _bake_ids(store, layer_prefix) if bake_id not in keep_ids]
    if not doomed:
        return []
    held = set()
    for bake_id in keep_ids:
        manifest = _read(store, version_prefix(layer_prefix, bake_id) + MANIFEST, _MANIFEST)
        if manifest is not None:
            held |= {manifest.file_key(layer_prefix, name) for name in manifest.held_by}
    deleted = []
    for bake_id in doomed:
        prefix = version_prefix(layer_prefix, bake_id)
        going = [key for key in store.list_keys(prefix) if key not in held]
        if going:
            store.delete([prefix + MANIFEST])
            store.delete(going)
            deleted.append(bake_id)
    return deleted


def _bake_ids(store: LayerStore, layer_prefix: str) -> list[str]:
    """Every version of the layer, complete or not, oldest first (bake IDs sort by time): the
    folders' names, not their thousands of files."""
    return store.list_folders(VERSIONS + layer_prefix)


def _manifest_keys(store: LayerStore, layer_prefix: str) -> list[str]:
    """The manifests of the layer's complete versions, oldest first."""
    keys = [version_prefix(layer_prefix, i) + MANIFEST for i in _bake_ids(store, layer_prefix)]
    return [key for key in keys if store.exists(key)]


def _read(store: LayerStore, key: str, schema: TypeAdapter[T]) -> T | None:
    """The record at ``key`` read through its schema; None if there is none. A record that is
    there but cannot be read is an error naming it, never taken for a missing one."""
    try:
        data = store.read_bytes(key)
    except LayerStoreError:
        return None
    return _parsed(store, key, data, schema)


def _parsed(store: LayerStore, key: str, data: bytes, schema: TypeAdapter[T]) -> T:
    """The record ``data`` read from ``key`` through its schema; an error naming it if it
    cannot be."""
    try:
        return schema.validate_json(data)
    except ValidationError as error:
        problem = error.errors()[0]
        raise LayerStoreError(
            f"{store.uri(key)} cannot be read: {problem['msg']} at "
            f"{'.'.join(str(p) for p in problem['loc']) or 'the top'}"
        ) from None
