"""Realistic synthetic inputs for the baker: an AddressBase-cleaned drop, a ballots export
and, when asked for, a boundary-reviews export and an organisations export.

``generate`` is deterministic per seed (byte-identical files for the same arguments) and
streams addresses town by town in bounded chunks, so memory stays flat up to tens of
millions of addresses.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from databaker.generate.addresses import address_lines, chunks
from databaker.generate.ballots import write_ballots
from databaker.generate.boundary_reviews import write_boundary_reviews
from databaker.generate.councils import election_towns
from databaker.generate.organisations import write_organisations
from databaker.generate.parts import PartWriter, tmp_path
from databaker.generate.places import plan_places
from databaker.generate.units import town_units
from databaker.progress import Progress, silent

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
    boundary_reviews_dir: Path | None = None
    boundary_reviews: int = 0
    boundary_review_rows: int = 0
    organisations_csv: Path | None = None
    exported_organisations: int = 0
    exported_divisions: int = 0
    organisation_rows: int = 0


def generate(
    out_dir: Path,
    *,
    addresses: int,
    divisions: int,
    seed: int,
    files: int = 1,
    compress: bool = False,
    boundary_reviews: int = 0,
    boundary_review_types: int = 3,
    organisations: bool = False,
    progress: Progress = silent,
) -> GeneratedData:
    """Write ``out_dir/addressbase_cleaned/addressbase_cleaned_<NNN>.csv[.gz]``,
    ``out_dir/ballots.csv`` and, with ``boundary_reviews`` > 0, that many reviews of
    ``boundary_review_types`` division types each in ``out_dir/boundary_reviews/``,
    replacing earlier outputs there (with none asked for, an earlier reviews folder is
    removed, so the folder never describes another run's map). With ``organisations`` it
    also writes ``out_dir/organisations.csv``, every organisation of the same map with its
    divisions (an earlier one is removed when not asked for). The reviews and the
    organisations draw on random streams of their own: the drop and the ballots are the
    same bytes with or without them.

    Everything is written under temporary names first and renamed at the end, so a failed
    or interrupted run leaves the previous outputs (or nothing) under the final names.
    ``progress`` counts the addresses (and organisations) written.

    Raises ValueError for fewer than 4 divisions, fewer than 1 file, too few addresses,
    more reviews than the map has councils, or division types outside 1..3.
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
    reviews_dir = out_dir / "boundary_reviews"
    reviews_tmp = tmp_path(reviews_dir)
    orgs_csv = out_dir / "organisations.csv"
    orgs_tmp = tmp_path(orgs_csv)
    writer = reviewed = exported = None
    try:
        towns = election_towns(plan, divisions, seed)
        summary = write_ballots(ballots_tmp, plan, divisions, seed, towns)
        if boundary_reviews:
            shutil.rmtree(reviews_tmp, ignore_errors=True)
            reviewed = write_boundary_reviews(
                reviews_tmp, plan, towns, boundary_reviews, seed, boundary_review_types
            )
        if organisations:
            exported = write_organisations(orgs_tmp, plan, towns, seed, progress)
        writer = PartWriter(folder, addresses, files, compress)
        parts = f"{files} part file{'s' if files > 1 else ''}"
        with progress(f"writing {parts}", addresses, "addresses") as written:
            for town in plan.towns:
                units = town_units(town, seed)
                for index, chunk in enumerate(chunks(units)):
                    lines = address_lines(town, units, seed, chunk, index)
                    writer.write(lines)
                    written.advance(len(lines))
            writer.commit()
        os.replace(ballots_tmp, ballots_csv)
        _replace_folder(reviews_tmp if reviewed else None, reviews_dir)
        if exported is not None:
            os.replace(orgs_tmp, orgs_csv)
        else:
            orgs_csv.unlink(missing_ok=True)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        ballots_tmp.unlink(missing_ok=True)
        orgs_tmp.unlink(missing_ok=True)
        shutil.rmtree(reviews_tmp, ignore_errors=True)
    return GeneratedData(
        addressbase_dir=folder,
        ballots_csv=ballots_csv,
        addresses=addresses,
        ballot_rows=summary.rows,
        ballots=summary.ballots,
        divisions=summary.divisions,
        organisations=summary.organisations,
        boundary_reviews_dir=reviews_dir if reviewed else None,
        boundary_reviews=reviewed.reviews if reviewed else 0,
        boundary_review_rows=reviewed.rows if reviewed else 0,
        organisations_csv=orgs_csv if exported else None,
        exported_organisations=exported.organisations if exported else 0,
        exported_divisions=exported.divisions if exported else 0,
        organisation_rows=exported.rows if exported else 0,
    )


def _replace_folder(new: Path | None, final: Path) -> None:
    """Put ``new`` (or nothing) under ``final``, moving an earlier folder aside first."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    if new is not None:
        os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)
