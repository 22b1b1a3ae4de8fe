"""Realistic synthetic inputs for the baker: an AddressBase-cleaned drop and a ballots export.

``generate`` is deterministic per seed (byte-identical files for the same arguments) and
streams addresses town by town in bounded chunks, so memory stays flat up to tens of
millions of addresses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from databaker.generate.addresses import address_lines, chunks
from databaker.generate.ballots import write_ballots
from databaker.generate.parts import PartWriter, tmp_path
from databaker.generate.places import plan_places
from databaker.generate.units import town_units

__all__ = ["GeneratedData", "generate"]


@dataclass(frozen=True)
class GeneratedData:
    """Where the generated files are and how much they hold."""

    addressbase_dir: Path
    ballots_csv: Path
    addresses: int
    ballot_rows: int
    ballots: int
    divisions: int
    organisations: int


def generate(
    out_dir: Path,
    *,
    addresses: int,
    divisions: int,
    seed: int,
    files: int = 1,
    compress: bool = False,
) -> GeneratedData:
    """Write ``out_dir/addressbase_cleaned/addressbase_cleaned_<NNN>.csv[.gz]`` and
    ``out_dir/ballots.csv``, replacing earlier outputs there.

    Everything is written under temporary names first and renamed at the end, so a failed
    or interrupted run leaves the previous outputs (or nothing) under the final names.

    Raises ValueError for fewer than 4 divisions, fewer than 1 file or too few addresses.
    """
    if divisions < 4:
        raise ValueError(f"divisions must be at least 4 (got {divisions})")
    if files < 1:
        raise ValueError(f"files must be at least 1 (got {files})")
    out_dir = Path(out_dir)
    plan = plan_places(addresses, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    ballots_csv = out_dir / "ballots.csv"
    ballots_tmp = tmp_path(ballots_csv)
    folder = out_dir / "addressbase_cleaned"
    writer = None
    try:
        summary = write_ballots(ballots_tmp, plan, divisions, seed)
        writer = PartWriter(folder, addresses, files, compress)
        for town in plan.towns:
            units = town_units(town, seed)
            for index, chunk in enumerate(chunks(units)):
                writer.write(address_lines(town, units, seed, chunk, index))
        writer.commit()
        os.replace(ballots_tmp, ballots_csv)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        ballots_tmp.unlink(missing_ok=True)
    return GeneratedData(
        addressbase_dir=folder,
        ballots_csv=ballots_csv,
        addresses=addresses,
        ballot_rows=summary.rows,
        ballots=summary.ballots,
        divisions=summary.divisions,
        organisations=summary.organisations,
    )
