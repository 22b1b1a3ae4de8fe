"""The lease of a local data root: an exclusive OS lock (``flock``) on ``_lease/bake.lock``.

The kernel releases the lock when its holder exits, however it dies, so a killed bake never
leaves a lease behind; nothing expires. The holder writes who it is into the locked file, for
those waiting. The root must be on a file system whose locks all its bakes share: a local disk
(for several machines, keep the data root on S3).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import suppress
from pathlib import Path

from databaker.resources.lease import LEASE_PREFIX, Lease, LeaseError, LeaseHolder

LOCK_FILE = "bake.lock"


class FileLease(Lease):
    def __init__(self, root: Path, holder: LeaseHolder) -> None:
        super().__init__(str(root), holder)
        self._path = root / LEASE_PREFIX / LOCK_FILE
        self._fd: int | None = None

    def try_acquire(self) -> tuple[bool, LeaseHolder | None]:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # Not inherited by child processes, which could otherwise keep the lock.
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise LeaseError(f"cannot take the lease on {self.where}: {error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = LeaseHolder.from_json(_read(fd))
            os.close(fd)
            return False, holder
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        _replace_content(fd, self.holder.to_json())
        return True, None

    def confirm(self) -> None:
        """Nothing to check: the kernel keeps the lock for this process until it lets go."""

    def release(self) -> None:
        if self._fd is None:
            return
        with suppress(OSError):  # the lock goes with the descriptor, whatever the content
            _replace_content(self._fd, b"")
        os.close(self._fd)
        self._fd = None


def _read(fd: int) -> bytes:
    return os.pread(fd, 1 << 16, 0)


def _replace_content(fd: int, data: bytes) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
