"""``databaker bake`` that kills itself, as ``kill -9`` would, at the N-th call of one layer-store
operation on a key containing a given text.

    python -m databaker_tests.killed_bake METHOD TEXT N -- <databaker bake arguments>

Nothing runs after the kill: no ``finally``, no cleanup, exactly as when a machine dies.
"""

import os
import signal
import sys

from databaker.cli import main
from databaker.resources import LocalLayerStore


def kill_at(method: str, text: str, count: int) -> None:
    original = getattr(LocalLayerStore, method)
    calls = 0

    def dying(self: LocalLayerStore, key: str, *args: object) -> object:
        nonlocal calls
        target = args[0] if method in ("copy", "move") else key
        if text in str(target):
            calls += 1
            if calls == count:
                os.kill(os.getpid(), signal.SIGKILL)
        return original(self, key, *args)

    setattr(LocalLayerStore, method, dying)


if __name__ == "__main__":
    method, text, count, separator, *bake_args = sys.argv[1:]
    assert separator == "--", "usage: METHOD TEXT N -- <bake arguments>"
    kill_at(method, text, int(count))
    sys.exit(main(["bake", *bake_args]))
