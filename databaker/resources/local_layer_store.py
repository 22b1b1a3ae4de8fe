"""The default layer store: plain files under a local data root."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
from pydantic import Field

from databaker.resources.layer_store import LayerStore, LayerStoreError, as_prefix, check_key
from databaker.resources.lease import Lease, LeaseHolder
from databaker.resources.local_lease import FileLease

_NEW_FILE_MODE = 0o666
"""Before the umask, as ``open`` makes a file."""
_TEMPORARY = ".tmp-"
"""How the name of a file not yet renamed into place begins: listings leave such files out."""


class LocalLayerStore(LayerStore):
    """Objects are files under ``root``; writes go through a temporary file and a rename."""

    root: str = Field(description="Absolute path of the data root; created when first written.")

    def new_lease(self, holder: LeaseHolder) -> Lease:
        return FileLease(self._root(), holder)

    def uri(self, key: str) -> str:
        is_folder = key.endswith("/")
        path = str(self._path(key, prefix=is_folder))
        return path + "/" if is_folder else path

    def uri_for_writing(self, key: str) -> str:
        is_folder = key.endswith("/")
        path = self._path(key, prefix=is_folder)
        (path if is_folder else path.parent).mkdir(parents=True, exist_ok=True)
        return self.uri(key)

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(as_prefix(prefix), prefix=True)
        if not base.is_dir():
            return []
        root = Path(self.root)
        return sorted(
            path.relative_to(root).as_posix()
            for path in base.rglob("*")
            if path.is_file() and not path.name.startswith(_TEMPORARY)
        )

    def list_folders(self, prefix: str) -> list[str]:
        base = self._path(as_prefix(prefix), prefix=True)
        if not base.is_dir():
            return []
        return sorted(path.name for path in base.iterdir() if path.is_dir())

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise LayerStoreError(f"{key!r} does not exist in {self.root}") from None

    def open_input(self, key: str) -> pa.NativeFile:
        try:
            return pa.OSFile(str(self._path(key)))
        except FileNotFoundError:
            raise LayerStoreError(f"{key!r} does not exist in {self.root}") from None

    def _open_output(self, key: str) -> pa.NativeFile:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return pa.OSFile(str(path), "wb")

    def _write_bytes(self, key: str, data: bytes) -> None:
        """The object is written under a temporary name, then renamed over ``key``. It gets
        the permissions any new file of the process gets (its umask), as a file the other
        writers make does: the layer is read by other users' services."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = _temporary_beside(path)
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _NEW_FILE_MODE)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _delete(self, keys: Iterable[str]) -> None:
        folders = set()
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            folders.add(path.parent)
        self._remove_empty(folders)

    def _move(self, source: str, target: str) -> None:
        origin, destination = self._path(source), self._path(target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(origin, destination)
        self._remove_empty({origin.parent})

    def _copy(self, source: str, target: str) -> None:
        """A hard link where the file system allows one: objects are never changed in place
        (writes and moves replace them whole), so the two names can share one file. The link
        is made under a temporary name and renamed over ``target``, so a reader finds the old
        object or the new one, never none."""
        origin, destination = self._path(source), self._path(target)
        if not origin.is_file():
            raise LayerStoreError(f"{source!r} does not exist in {self.root}")
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = _temporary_beside(destination)
        try:
            try:
                os.link(origin, temporary)
            except OSError:
                shutil.copyfile(origin, temporary)
            os.replace(temporary, destination)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        # Where ``target`` already is a link to the same file (a publish completed or rolled
        # back over files it had copied), rename() does nothing and leaves the temporary name.
        temporary.unlink(missing_ok=True)

    def _root(self) -> Path:
        if not Path(self.root).is_absolute():
            raise LayerStoreError(f"the data root must be an absolute path, not {self.root!r}")
        return Path(self.root)

    def _path(self, key: str, *, prefix: bool = False) -> Path:
        return self._root() / check_key(key, prefix=prefix)

    def _remove_empty(self, folders: set[Path]) -> None:
        """Remove folders left empty, walking up towards (never including) the root."""
        root = Path(self.root)
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            while folder != root and _is_empty_folder(folder):
                folder.rmdir()
                folder = folder.parent


def _is_empty_folder(folder: Path) -> bool:
    """True for an existing folder without entries; reads one entry, not the whole listing."""
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is None
    except (FileNotFoundError, NotADirectoryError):
        return False


def _temporary_beside(path: Path) -> Path:
    """A name, unique to this write, for a file renamed over ``path`` once whole."""
    return path.with_name(f"{_TEMPORARY}{uuid.uuid4().hex}")
