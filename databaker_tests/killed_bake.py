"""A ``databaker`` command that, at the N-th call of one layer-store operation on a key containing
a given text (starting with it, for a text written ``^text``), is killed as ``kill -9`` would
kill it, or finds the disk full.

    python -m databaker_tests.killed_bake [--disk-full] METHOD TEXT N -- <command and arguments>

Killed, nothing runs after: no ``finally``, no cleanup, exactly as when a machine dies. With
``--disk-full`` that call raises the ``OSError`` (``ENOSPC``) a full disk raises, without doing
anything, and the command goes on as it would: it is how the command fails that is tested.
"""

import errno
import os
import signal
import sys

from databaker.cli import main
from databaker.resources import LocalLayerStore


def fail_at(method: str, text: str, count: int, *, disk_full: bool = False) -> None:
    original = getattr(LocalLayerStore, method)
    calls = 0

    def failing(self: LocalLayerStore, key: str, *args: object) -> object:
        nonlocal calls
        target = str(args[0] if method in ("copy", "move") else key)
        if target.startswith(text[1:]) if text.startswith("^") else text in target:
            calls += 1
            if calls == count and disk_full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.uri(str(target)))
            if calls == count:
                os.kill(os.getpid(), signal.SIGKILL)
        return original(self, key, *args)

    setattr(LocalLayerStore, method, failing)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    disk_full = arguments[:1] == ["--disk-full"]
    method, text, count, separator, *command = arguments[disk_full:]
    assert separator == "--", "usage: [--disk-full] METHOD TEXT N -- <command and arguments>"
    fail_at(method, text, int(count), disk_full=disk_full)
    sys.exit(main(command))
