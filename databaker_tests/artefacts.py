"""Where tests keep what a person looks at after a run: screenshots, a deployment's log.

``$DATABAKER_TEST_ARTEFACTS``, or ``test-artefacts/`` in the repository (ignored by git), holds
a folder per test module that writes any; each run of the module starts it afresh. The session's
summary names the folders written to, so a CI log says where to look.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT_VARIABLE = "DATABAKER_TEST_ARTEFACTS"
_SESSION_START = time.time()
"""When the session began: this module is imported with the conftest that reports."""


def artefacts_root() -> Path:
    return Path(os.environ.get(ENVIRONMENT_VARIABLE) or ROOT / "test-artefacts").resolve()


def fresh_artefacts_folder(name: str) -> Path:
    """The folder ``name`` under the artefacts root, emptied of an earlier run's files."""
    folder = artefacts_root() / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def report_artefacts(terminalreporter: pytest.TerminalReporter) -> None:
    """List, at the end of the session, each artefacts folder that this session wrote to."""
    root = artefacts_root()
    if not root.is_dir():
        return
    written: dict[Path, int] = {}
    for path in root.glob("*/*"):
        if path.is_file() and path.stat().st_mtime >= _SESSION_START:
            written[path.parent] = written.get(path.parent, 0) + 1
    if written:
        terminalreporter.write_sep("-", "test artefacts")
        for folder, files in sorted(written.items()):
            terminalreporter.write_line(f"{folder}: {files} file(s)")
