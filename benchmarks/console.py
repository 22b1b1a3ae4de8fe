"""What the benchmark commands share on their command lines: progress on standard error and
argument checks."""

from __future__ import annotations

import argparse
import sys


def say(text: str) -> None:
    """Progress for the person running the benchmark, on standard error (the report goes to
    standard output)."""
    print(text, file=sys.stderr, flush=True)


def positive(text: str) -> int:
    """An argument that must be a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value
