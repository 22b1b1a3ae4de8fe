"""Lint and formatting are part of the suite.

The README's Development section promises a repository that `ruff check` and
`ruff format --check` accept. Checking that here, rather than in a separate CI step, keeps the
README's test command the one thing CI runs: a change ruff would refuse fails the suite, with
ruff's own report, on a developer's machine and in CI alike.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Every folder of Python the project keeps; each file in them must be linted and formatted.
SOURCE_FOLDERS = ("databaker", "databaker_tests", "benchmarks")


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ruff on the whole repository with the settings in pyproject.toml."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ruff_check_passes() -> None:
    result = _ruff("check")
    assert result.returncode == 0, f"`ruff check .` failed:\n{result.stdout}{result.stderr}"


def test_ruff_format_check_passes() -> None:
    result = _ruff("format", "--check")
    assert result.returncode == 0, (
        f"`ruff format --check .` failed (run `ruff format .`):\n{result.stdout}{result.stderr}"
    )


def test_ruff_reads_every_python_file_of_the_project() -> None:
    """A clean report means something only if ruff looked: ruff passes, with a warning, when a
    misplaced `exclude` or a wrong working folder leaves it no file to read."""
    result = _ruff("check", "--show-files")
    assert result.returncode == 0, result.stderr
    shown = {Path(line).resolve() for line in result.stdout.splitlines() if line.strip()}
    expected = {
        path.resolve()
        for folder in SOURCE_FOLDERS
        for path in (REPO / folder).rglob("*.py")
        if not any(part.startswith(".") for part in path.relative_to(REPO).parts)
    }
    assert Path(__file__).resolve() in expected
    assert expected <= shown, f"ruff does not read: {sorted(map(str, expected - shown))}"
