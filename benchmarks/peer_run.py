"""Run one peer method on the benchmark's inputs, measured like our bake."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.inputs import Inputs
from benchmarks.peers import Peer
from benchmarks.process import Measurement, run_measured


@dataclass(frozen=True)
class PeerRun:
    peer: Peer
    measurement: Measurement
    out: Path
    addresses: int | None
    polygons: int | None


def run_peer(peer: Peer, inputs: Inputs, out: Path, timeout: float | None) -> PeerRun:
    """Run ``peer`` into a fresh ``out``; killed (and reported so) after ``timeout`` seconds."""
    shutil.rmtree(out, ignore_errors=True)
    command = [
        sys.executable, "-m", peer.module,
        "--addressbase", str(inputs.addressbase), "--ballots", str(inputs.ballots),
        "--out", str(out),
    ]  # fmt: skip
    measured = run_measured(command, log_dir=out.parent / "logs" / peer.name, timeout=timeout)
    summary = _last_json_line(measured.stdout) if measured.ok else {}
    return PeerRun(peer, measured, out, summary.get("addresses"), summary.get("polygons"))


def _last_json_line(text: str) -> dict:
    lines = text.strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}
