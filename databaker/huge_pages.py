"""Transparent huge pages: forbidden in the processes that bake, unless the deployment keeps them.

Linux may back a large allocation with 2 MiB pages rather than 4 KiB ones. numpy asks for them
for every array of 4 MiB or more, and Arrow's allocator for its segments; a bake allocates and
frees arrays of millions of rows from start to end. Each huge page is a whole free 2 MiB block
that the kernel zeroes on first touch. Where such blocks are dear, that costs far more than the
small pages it saves: on a virtual machine whose host takes back its guest's free memory (as
free page reporting does, in such blocks), a huge page is often memory new to the host, and
where the page cache holds most of memory the kernel must compact to make one. On the
benchmark machine, a Firecracker VM, a process's first gibibyte of numpy array took 6.2 s on
huge pages and 0.4 s on small ones; the version step of a 30-million-address bake spent a
third of its CPU in the kernel, most of it zeroing huge pages, and a whole bake's kernel time
halved without them (docs/benchmarks.md, "Huge pages").

On a machine whose memory is the host's own, huge pages may save a bake a little: set
``DATABAKER_TRANSPARENT_HUGE_PAGES=1`` there to leave them to the system.
"""

from __future__ import annotations

import ctypes
import sys

PR_SET_THP_DISABLE = 41
PR_GET_THP_DISABLE = 42
"""Linux's ``prctl`` options (``<linux/prctl.h>``): a process's flag that forbids transparent
huge pages for all its memory, inherited by the processes it forks and kept across ``exec``."""


def forbid_transparent_huge_pages() -> bool:
    """Forbid transparent huge pages to this process and those it starts from now on; whether
    they are forbidden (False off Linux, or where the kernel refuses the call)."""
    if not sys.platform.startswith("linux"):
        return False
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 and transparent_huge_pages_forbidden()


def transparent_huge_pages_forbidden() -> bool:
    """Whether this process may not have transparent huge pages (False off Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    return ctypes.CDLL(None, use_errno=True).prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1
