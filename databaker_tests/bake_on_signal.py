"""``databaker bake`` in a process of its own, started ahead and set off by a line on stdin.

    python -m databaker_tests.bake_on_signal -- <databaker bake arguments>

Importing the baker takes seconds, and takes them unevenly; a test that starts two bakes a
given time apart starts both processes first, then sets each off when it wants. Prints
``ready`` once everything is imported, then the command's output with each progress line
stamped with the wall-clock time (``<seconds> <line>``), and a stamped ``asking for the lease``
when the run asks for the data root's lease; exits with the command's exit code.
"""

import sys
import time
from collections.abc import Callable

from databaker.cli import main  # first: it silences Dagster's beta notices
from databaker.resources import LayerStore


def stamped(line: str) -> None:
    print(f"{time.time():.3f} {line}", flush=True)


def announce_asking(leased: Callable) -> Callable:
    def asking(self: LayerStore, *args: object, **kwargs: object) -> object:
        stamped("asking for the lease")
        return leased(self, *args, **kwargs)

    return asking


if __name__ == "__main__":
    import databaker.bake  # everything a bake needs, imported before the signal

    databaker.bake.echo_stdout = stamped
    LayerStore.leased = announce_asking(LayerStore.leased)

    separator, *bake_args = sys.argv[1:]
    assert separator == "--", "usage: -- <bake arguments>"
    print("ready", flush=True)
    sys.stdin.readline()
    sys.exit(main(["bake", *bake_args]))
