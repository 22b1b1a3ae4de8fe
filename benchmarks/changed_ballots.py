"""A changed ballots export for the benchmarks that rebake: the generated export without every row
of some of its ballots, chosen the same way on every run of the same inputs."""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

EVERY = 50
"""By default a changed export leaves out one ballot in this many."""


@dataclass(frozen=True)
class ChangedExport:
    """The ballots export of a rebake: the generated one without every row of some ballots."""

    path: Path
    ballots: int
    """Ballots with an area in the generated export."""
    left_out: tuple[str, ...]
    rows: int
    rows_kept: int

    def description(self) -> str:
        """What it leaves out, for a section's inputs: the first few ballots by name."""
        shown = ", ".join(f"`{ballot}`" for ballot in self.left_out[:3])
        more = f" and {len(self.left_out) - 3:,} more" if len(self.left_out) > 3 else ""
        return (
            f"without {len(self.left_out):,} of its {self.ballots:,} ballots with an area, "
            f"evenly spaced in ID order ({shown}{more}): {self.rows_kept:,} of {self.rows:,} rows"
        )


def changed_export(
    ballots: Path, target: Path, drop: int | None = None, *, between: bool = False
) -> ChangedExport:
    """Write ``target``: the export ``ballots`` without every row of ``drop`` of its ballots
    with an area (default one in ``EVERY``), evenly spaced in the order of their IDs, so the
    same inputs always give the same export. With ``between``, the ballots left out are those
    halfway between the ones left out without it: another set of the same size, so that
    rebaking from one export and then the other changes addresses both ways. Fields are read
    and written as CSV (a geometry is quoted WKT full of commas); the header and every other
    row are kept, in order."""
    csv.field_size_limit(sys.maxsize)
    with ballots.open(newline="") as source:
        reader = csv.reader(source)
        header = next(reader)
        ballot, geometry = header.index("election_id"), header.index("geometry")
        with_area = sorted({row[ballot] for row in reader if row[geometry].strip()})
    count = max(1, len(with_area) // EVERY) if drop is None else drop
    if not 1 <= count < len(with_area):
        raise SystemExit(
            f"--drop-ballots must be from 1 to {len(with_area) - 1}: {ballots} has "
            f"{len(with_area):,} ballots with an area (got {count})"
        )
    n, half = len(with_area), int(between)
    left_out = tuple(with_area[((2 * i + half) * n) // (2 * count)] for i in range(count))
    leaving = set(left_out)
    rows = kept = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with ballots.open(newline="") as source, target.open("w", newline="") as out:
        reader, writer = csv.reader(source), csv.writer(out, lineterminator="\n")
        writer.writerow(next(reader))
        for row in reader:
            rows += 1
            if row[ballot] not in leaving:
                kept += 1
                writer.writerow(row)
    return ChangedExport(target, len(with_area), left_out, rows, kept)
