"""Versioned bakes of a layer, and publishing one of them: the shared mechanics of every layer.

A bake writes its outcode files to a version of its own, ``versions/<layer>/<bake-id>/``,
finished by its manifest (``_manifest.json``: what was baked from what, and a content hash
per file). Nothing reads a version until it is published to the layer's stable path, which
consumers read:

1. a marker (``_publishing.json``) says a publish is under way;
2. files whose content differs from the published manifest's are copied in, one whole object
   at a time; files with the same hash are not rewritten;
3. stale outcodes are deleted;
4. the version's manifest is written as the published manifest, and the marker removed.

A process killed at any moment leaves each published file either as it was or as the version
has it. A publish that finds the marker of an interrupted one trusts no hash and copies every
file. Rolling back is publishing a kept version again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from databaker.resources import LayerStore, LayerStoreError

MANIFEST = "_manifest.json"
VERDICTS = "_verdicts.json"
"""Beside a version's manifest: each check that gates its publication, and whether it refused
the version (failed, not overridden)."""
PUBLISHING = "_publishing.json"
VERSIONS = "versions/"
KEPT_VERSIONS = 5


@dataclass(frozen=True)
class Manifest:
    """What one bake of a layer holds. ``files`` maps each published file's name to its
    SHA-256."""

    bake_id: str
    created: str
    addressbase_source: str
    ballots_version: str
    rows: int
    rows_with_ids: int
    outcodes: int
    empty_outcodes: int
    files: dict[str, str] = field(default_factory=dict)
    rejected_rows: dict[str, int] = field(default_factory=dict)
    """Rows each input left out; their reports are kept beside the manifest, in ``rejected/``."""
    addresses_per_id: dict[str, int] = field(default_factory=dict)
    """How many addresses each ID covers."""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        return cls(**json.loads(data))


@dataclass(frozen=True)
class Publication:
    """What publishing a version did to the layer."""

    bake_id: str
    written: int
    unchanged: int
    deleted: tuple[str, ...]


def new_bake_id(run_id: str, now: datetime | None = None) -> str:
    """A bake ID that sorts by time: ``20261127T014500Z-<first 8 characters of the run ID>``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{run_id[:8]}"


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
    try:
        verdicts = json.loads(store.read_bytes(version_prefix(layer_prefix, bake_id) + VERDICTS))
    except LayerStoreError:
        return []
    return sorted(name for name, refused in verdicts.items() if refused)


def published_manifest(store: LayerStore, layer_prefix: str) -> Manifest | None:
    return _manifest_at(store, layer_prefix + MANIFEST)


def kept_versions(store: LayerStore, layer_prefix: str) -> list[Manifest]:
    """The complete versions of the layer, oldest first."""
    base = VERSIONS + layer_prefix
    names = [key[len(base) :] for key in store.list_keys(base)]
    ids = sorted({name.split("/", 1)[0] for name in names if name.endswith("/" + MANIFEST)})
    manifests = (_manifest_at(store, version_prefix(layer_prefix, i) + MANIFEST) for i in ids)
    return [manifest for manifest in manifests if manifest is not None]


def publish(store: LayerStore, layer_prefix: str, bake_id: str) -> Publication:
    """Make the layer's stable path hold version ``bake_id``, in the steps of the module doc."""
    source = version_prefix(layer_prefix, bake_id)
    manifest = _manifest_at(store, source + MANIFEST)
    if manifest is None:
        raise LayerStoreError(f"no complete version {bake_id!r} of {layer_prefix} to publish")
    interrupted = _exists(store, layer_prefix + PUBLISHING)
    current = None if interrupted else published_manifest(store, layer_prefix)
    known = current.files if current else {}
    store.write_bytes(layer_prefix + PUBLISHING, json.dumps({"bake_id": bake_id}).encode())
    written = 0
    for name, digest in sorted(manifest.files.items()):
        if known.get(name) != digest:
            store.copy(source + name, layer_prefix + name)
            written += 1
    bookkeeping = {layer_prefix + MANIFEST, layer_prefix + PUBLISHING}
    stale = [
        key
        for key in store.list_keys(layer_prefix)
        if key not in bookkeeping and key[len(layer_prefix) :] not in manifest.files
    ]
    store.delete(stale)
    store.write_bytes(layer_prefix + MANIFEST, manifest.to_json())
    store.delete([layer_prefix + PUBLISHING])
    return Publication(bake_id, written, len(manifest.files) - written, tuple(stale))


def prune_versions(store: LayerStore, layer_prefix: str, keep: int = KEPT_VERSIONS) -> list[str]:
    """Delete complete versions beyond the newest ``keep`` (never the published one) and
    incomplete ones older than the newest complete version; return the deleted bake IDs."""
    complete = [m.bake_id for m in kept_versions(store, layer_prefix)]
    published = published_manifest(store, layer_prefix)
    keep_ids = set(complete[-keep:]) | ({published.bake_id} if published else set())
    base = VERSIONS + layer_prefix
    all_ids = sorted({key[len(base) :].split("/", 1)[0] for key in store.list_keys(base)})
    newest = complete[-1] if complete else ""
    doomed = [
        bake_id
        for bake_id in all_ids
        if bake_id not in keep_ids and (bake_id in complete or bake_id < newest)
    ]
    for bake_id in doomed:
        store.delete_prefix(version_prefix(layer_prefix, bake_id))
    return doomed


def _exists(store: LayerStore, key: str) -> bool:
    try:
        store.read_bytes(key)
    except LayerStoreError:
        return False
    return True


def _manifest_at(store: LayerStore, key: str) -> Manifest | None:
    try:
        return Manifest.from_json(store.read_bytes(key))
    except LayerStoreError:
        return None
