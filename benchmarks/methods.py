"""Every measured method in one shape, whatever ran it: our bake or a peer script."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from benchmarks.our_bake import BakeRun
from benchmarks.peer_run import PeerRun
from benchmarks.process import Measurement

OURS = "databaker"


@dataclass(frozen=True)
class MethodResult:
    name: str
    """A plain identifier: also names the method's table in the cross-check."""
    label: str
    measurement: Measurement
    folder: Path
    """Where the method wrote its outcode files."""
    addresses: int | None
    polygons: int | None

    @property
    def outcome(self) -> str | None:
        """None for a run that finished well; otherwise what to report instead of figures."""
        m = self.measurement
        if m.timed_out:
            return f"did not finish in {m.timeout_seconds:g} s"
        if m.returncode is not None and m.returncode < 0:
            name = signal.Signals(-m.returncode).name
            hint = ": out of memory?" if -m.returncode == signal.SIGKILL else ""
            return f"killed by {name}{hint}"
        if m.returncode != 0:
            return f"failed (exit {m.returncode})"
        return None


def from_bake(run: BakeRun) -> MethodResult:
    return MethodResult(
        OURS, "databaker bake (ours)", run.measurement, run.layer, run.addresses, run.polygons
    )


def from_peer(run: PeerRun) -> MethodResult:
    return MethodResult(
        run.peer.name, run.peer.label, run.measurement, run.out, run.addresses, run.polygons
    )
