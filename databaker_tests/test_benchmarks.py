"""The benchmark harness end to end at a tiny size: it runs, every method agrees, it reports.

Timings are not asserted: at this size they measure start-up, and on a shared CI machine
they would only make the test flaky.
"""

import subprocess
import sys
from pathlib import Path

from benchmarks.peers import PEERS
from benchmarks.report import METHOD_HEADER

ROOT = Path(__file__).resolve().parents[1]


def table_rows(markdown: str, header: str) -> list[list[str]]:
    """The body rows of the markdown table whose header line starts with ``header``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_a_tiny_benchmark_runs_every_method_and_they_all_agree(tmp_path):
    output = tmp_path / "benchmarks.md"
    result = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.bake",
            "--addresses", "3000", "--divisions", "40", "--files", "2", "--sample", "200",
            "--cache", str(tmp_path / "cache"), "--output", str(output),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = output.read_text()
    assert "<!-- bake-benchmark:a3000-d40:start -->" in text
    assert "<!-- bake-benchmark:a3000-d40:end -->" in text
    methods = table_rows(text, "| " + " | ".join(METHOD_HEADER))
    labels = [row[0] for row in methods]
    assert labels == ["databaker bake (ours)", *(peer.label for peer in PEERS.values())]
    mismatches = METHOD_HEADER.index("mismatches")
    assert [row[mismatches] for row in methods] == ["0"] * len(methods)
    assert all(row[1] == "3,000" for row in methods)
    stages = {row[0]: row[1] for row in table_rows(text, "| stage | seconds |")}
    assert {"read/parse", "partition", "join+group", "write", "checks", "wall"} <= stages.keys()
    assert "| method | addresses |" in result.stdout
    assert (tmp_path / "cache" / "inputs" / "a3000-d40-s1-f2" / "ballots.csv").is_file()
