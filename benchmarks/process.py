"""Run one method as a subprocess and measure it: wall time, peak memory, exit status.

Every method runs in a process of its own so that its memory is its own. Peak memory is the
largest sum of the resident set sizes of the process and all its descendants, sampled from
``/proc`` every ``interval`` seconds: a method that starts helpers (or a shell wrapper) is
measured whole. ``getrusage`` is kept only as a fallback for a process too short to sample,
because it reports the largest single child ever waited for, not a tree, and never decreases.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measurement:
    """How one run went. ``timed_out`` runs were killed and are not failures."""

    wall_seconds: float
    peak_rss_bytes: int
    returncode: int | None
    timed_out: bool
    timeout_seconds: float | None
    stdout: str
    stderr: str
    rss_source: str
    """``proc`` when sampled from /proc, ``getrusage`` when the fallback was used."""

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.returncode == 0


def run_measured(
    command: Sequence[str],
    *,
    log_dir: Path,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    interval: float = 0.05,
) -> Measurement:
    """Run ``command`` to completion (or kill it after ``timeout`` seconds) and measure it.

    Output goes to files in ``log_dir`` rather than pipes, so a chatty process can never block
    on a full pipe and distort its own timing.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / "stdout.txt", log_dir / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        # A session of its own: on timeout the whole tree is killed by its process group id.
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            stdout=out,
            stderr=err,
            env=dict(env or os.environ),
            start_new_session=True,
        )
        sampler = _TreeSampler(process.pid, interval)
        sampler.start()
        timed_out = False
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        wall = time.perf_counter() - started
        sampler.stop()
    peak, source = sampler.peak, "proc"
    if peak == 0:
        peak, source = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, "getrusage"
    return Measurement(
        wall_seconds=wall,
        peak_rss_bytes=peak,
        returncode=None if timed_out else process.returncode,
        timed_out=timed_out,
        timeout_seconds=timeout,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        rss_source=source,
    )


class _TreeSampler(threading.Thread):
    """Samples the summed VmRSS of a process tree until stopped; keeps the maximum."""

    def __init__(self, root: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak = 0
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            self.peak = max(self.peak, sum(_rss(pid) for pid in _tree(self.root)))
            self._stopping.wait(self.interval)

    def stop(self) -> None:
        self._stopping.set()
        self.join()


def _tree(root: int) -> list[int]:
    """The process and its descendants, through each thread's ``children`` file."""
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    pending.extend(int(child) for child in handle.read().split())
            except OSError:
                continue
    return found


def _rss(pid: int) -> int:
    """Resident set size in bytes, 0 for a process that has gone (or is a zombie)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
