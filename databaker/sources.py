"""Input locations: the AddressBase drop (a folder or one file) and the ballots export.

Inputs are read where they are; they are not layer-store objects. Paths are made absolute
because the absolute location of a drop is its ``addressbase_source``.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

CSV_SUFFIXES = (".csv", ".csv.gz")

SAMPLE = Path(__file__).parent / "sample"
SAMPLE_ADDRESSBASE = SAMPLE / "addressbase_cleaned"
SAMPLE_BALLOTS = SAMPLE / "ballots.csv"


def drop_files(source: str) -> tuple[str, list[str]]:
    """The drop's ``addressbase_source`` and its CSV files, in a stable (sorted) order."""
    path = _local(source, "AddressBase drop")
    if path.is_file():
        return str(path), [str(path)]
    files = sorted(
        str(p) for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(CSV_SUFFIXES)
    )
    if not files:
        raise dg.Failure(f"AddressBase drop {path} holds no .csv or .csv.gz files")
    return str(path), files


def export_file(source: str) -> str:
    """The ballots export as an absolute path, which must be one file."""
    path = _local(source, "ballots export")
    if not path.is_file():
        raise dg.Failure(f"ballots export {path} is a folder; give the CSV file itself")
    return str(path)


def _local(source: str, what: str) -> Path:
    if "://" in source:
        raise dg.Failure(f"{what} {source}: only local paths are supported so far")
    path = Path(source).expanduser().resolve()
    if not path.exists():
        raise dg.Failure(f"{what} not found: {path}")
    return path
