"""The benchmark harnesses end to end at a tiny size: they run, the engines agree, they report.

Timings are not asserted: at this size they measure start-up, and on a shared CI machine
they would only make the test flaky. The tests share one cache, so the inputs are generated
once and the read benchmark reuses the layer it baked.
"""

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.peers import PEERS
from benchmarks.postgis import Installation, PostgisMissing
from benchmarks.read_report import RESULTS_HEADER
from benchmarks.report import METHOD_HEADER

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--addresses", "3000", "--divisions", "40", "--files", "2"]


@pytest.fixture(scope="module")
def cache() -> Iterator[Path]:
    """A cache folder that PostgreSQL's server, run as ``nobody`` when the tests run as root,
    can reach (pytest's temporary folders are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="databaker-benchmark-cache-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def run_benchmark(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *TINY, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def postgis_installed() -> bool:
    try:
        Installation.find(None)
    except PostgisMissing:
        return False
    return True


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


def test_a_tiny_benchmark_runs_every_method_and_they_all_agree(tmp_path, cache):
    output = tmp_path / "benchmarks.md"
    result = run_benchmark(
        "benchmarks.bake", "--sample", "200", "--cache", str(cache), "--output", str(output)
    )
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
    assert (cache / "inputs" / "a3000-d40-s1-f2" / "ballots.csv").is_file()


def read_results(output: Path) -> dict[tuple[str, str], list[str]]:
    """The read benchmark's results table, by engine and case."""
    text = output.read_text()
    assert "<!-- read-benchmark:a3000-d40:start -->" in text
    assert "<!-- read-benchmark:a3000-d40:end -->" in text
    rows = table_rows(text, "| " + " | ".join(RESULTS_HEADER))
    return {(row[0], row[1]): row for row in rows}


READER_CASES = [
    ("layer reader", "cold, from disk"),
    ("layer reader", "cold, in page cache"),
    ("layer reader", "warm"),
]


def test_the_read_benchmark_times_the_reader_without_postgis(tmp_path, cache):
    output = tmp_path / "benchmarks.md"
    result = run_benchmark(
        "benchmarks.read", "--lookups", "10", "--warm-lookups", "300", "--rounds", "2",
        "--no-postgis",
        "--cache", str(cache), "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = read_results(output)
    assert list(results) == READER_CASES
    assert [row[2] for row in results.values()] == ["20", "20", "600"], "two rounds pooled"
    assert "PostGIS was not run" in output.read_text()
    assert "warm p99 under 0.5 ms: " in output.read_text()


@pytest.mark.skipif(
    not postgis_installed(), reason="PostGIS is not installed (postgresql-15-postgis-3)"
)
def test_the_read_benchmark_asks_postgis_the_same_questions_and_gets_the_same_answers(
    tmp_path, cache
):
    output = tmp_path / "benchmarks.md"
    result = run_benchmark(
        "benchmarks.read", "--lookups", "10", "--warm-lookups", "300", "--rounds", "2",
        "--cache", str(cache), "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = read_results(output)
    postgis = [("PostGIS", case) for _, case in READER_CASES]
    assert list(results) == READER_CASES + postgis
    assert [results[key][2] for key in postgis] == ["20", "20", "600"]
    text = output.read_text()
    assert "Both engines gave the same addresses and ballot IDs for all 10 cold postcodes" in text
    assert "holding 3,000 addresses" in text
    assert "warm throughput at least 10x PostGIS's: " in text
