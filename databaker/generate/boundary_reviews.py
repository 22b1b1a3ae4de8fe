"""The boundary-reviews export: old and new divisionsets of councils under review.

Laid out as Democracy Club's EveryElection export is:
``boundary_review_id=<id>/divisionset_generation=old|new/division_type=<TYPE>/part-NNNNN.csv``,
headerless RFC 4180 rows of the ``COLUMNS``, one per piece of a division. A review's old
divisionsets come from the very geography the ballots and addresses do: the council's
wards, county divisions grouping them and parishes splitting them. Each new divisionset
keeps most divisions, renames a few, moves an edge between neighbours, merges and splits
some, and covers a slightly different area (a division left out, one clipped, a ward of
a neighbouring council taken in). Everything random comes from streams of its own
(``[seed, 40]``), so asking for reviews leaves every other output byte for byte as it was.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import shapely

from databaker.generate.councils import Codes, ElectionTown, division_codes
from databaker.generate.names import STREET_WORDS
from databaker.generate.places import Plan
from databaker.generate.redraw import neighbours, pieces
from databaker.generate.reviewed import Division, Names, grouped, parishes, redrawn
from databaker.generate.shapes import wkt

COLUMNS = (
    "slug",
    "status",
    "latest_event",
    "consultation_url",
    "legislation_title",
    "effective_date",
    "review_created",
    "review_modified",
    "organisation_name",
    "organisation_official_name",
    "organisation_gss",
    "divisionset_id",
    "divisionset_pmtiles_url",
    "division_slug",
    "division_name",
    "division_official_identifier",
    "division_boundary_wkt",
    "boundary_review_id",
    "divisionset_generation",
    "division_type",
)
PART_BYTES = 32 * 1024
PMTILES = "https://static-data.elections.democracyclub.org.uk/pmtiles/{}.pmtiles"
_WARD_TYPE = {"E06": "UTW", "E08": "MTW", "E09": "LBW", "W06": "UTW", "S12": "UTW"}
_OFFICIAL = {
    "E06": "{} Council",
    "E08": "{} Metropolitan Borough Council",
    "E09": "London Borough of {}",
    "W06": "{} County Borough Council",
    "S12": "{} Council",
}
_CONSULTATION = {
    "E": "https://www.lgbce.org.uk/all-reviews/{}",
    "W": "https://www.dbcc.gov.wales/reviews/{}",
    "S": "https://www.boundaries.scot/reviews/{}",
}
_ORDER = {
    "E": "The {} (Electoral Changes) Order 2026",
    "W": "The County Borough of {} (Electoral Arrangements) Order 2026",
    "S": "The {} (Electoral Arrangements) Regulations 2026",
}
_GROUP_CODE = {"E": ("CED", "E58"), "W": ("UTE", "W05"), "S": ("UTE", "S13")}
_PARISH_CODE = {"E": "E04", "W": "W04", "S": "S35"}
# (status, latest event, with an order made and an effective date), cycled over reviews.
_STAGES = (
    ("COMPLETED", "Made", True),
    ("CURRENT", "Final recommendations", False),
    ("CURRENT", "Draft recommendations", False),
)
_EFFECTIVE = "2027-05-06"
_SMALL = 4


@dataclass(frozen=True)
class ReviewSummary:
    """Counts of what was written to the export."""

    reviews: int
    divisions: int
    rows: int


def _choose_councils(towns: list[ElectionTown], count: int, rng: np.random.Generator) -> list:
    """``count`` (town, council) index pairs: councils drawn with a chance in proportion to
    their wards (bigger councils are reviewed more often, and make realistic sizes),
    spread over towns (a second council of a town only once every town has one), councils
    of fewer than 4 wards last.

    Raises ValueError when ``count`` exceeds the councils of the map.
    """
    total = sum(len(et.councils) for et in towns)
    if not 0 <= count <= total:
        raise ValueError(
            f"boundary reviews must be between 0 and the {total} councils of the generated "
            f"map (got {count})"
        )
    ranked = []
    for t, et in enumerate(towns):
        wards = np.bincount(et.wards.council, minlength=len(et.councils))
        key = rng.random(len(wards)) ** (1.0 / np.maximum(wards, 1))
        for turn, c in enumerate(np.argsort(-key, kind="stable")):
            ranked.append((bool(wards[c] < _SMALL), turn, -float(key[c]), t, int(c)))
    return [(t, c) for *_, t, c in sorted(ranked)[:count]]


def write_boundary_reviews(
    folder: Path,
    plan: Plan,
    towns: list[ElectionTown],
    count: int,
    seed: int,
    types: int = 3,
) -> ReviewSummary:
    """Write ``count`` reviews with ``types`` division types each (1 to 3: the council's
    wards, then divisions grouping them, then parishes splitting them) under ``folder``.

    ``towns`` are ``election_towns(plan, divisions, seed)``. Raises ValueError for a
    ``count`` beyond the map's councils or ``types`` outside 1..3.
    """
    if not 1 <= types <= 3:
        raise ValueError(f"division types per review must be 1 to 3 (got {types})")
    rng = np.random.default_rng([seed, 40])
    chosen = _choose_councils(towns, count, rng)
    codes = Codes(rng)
    ward_codes = division_codes(towns, seed)
    names = Names(rng, list(plan.names[-2000:]) + list(STREET_WORDS), list(plan.names[-2000:]))
    review_id = int(rng.integers(900, 1000))
    divisionset_id = int(rng.integers(600, 900))
    divisions = rows = 0
    for k, (t, c) in enumerate(chosen):
        et = towns[t]
        names.taken.clear()
        meta = _review_meta(et, c, k, rng)
        for division_type, old, gain in _old_sets(et, c, ward_codes[t], types, rng, codes, names):
            new = redrawn(old, gain, rng, names)
            for generation, divisionset in (("old", old), ("new", new)):
                divisionset_id += int(rng.integers(1, 6))
                pmtiles = PMTILES.format(divisionset_id)
                if generation == "old" and rng.random() < 0.3:
                    pmtiles = ""
                head = (*meta, str(divisionset_id), pmtiles)
                tail = (str(review_id), generation, division_type)
                path = (
                    folder
                    / f"boundary_review_id={review_id}"
                    / f"divisionset_generation={generation}"
                    / f"division_type={division_type}"
                )
                rows += _write_folder(path, head, tail, divisionset)
                divisions += len(divisionset)
        review_id += int(rng.integers(1, 4))
    return ReviewSummary(reviews=len(chosen), divisions=divisions, rows=rows)


def _review_meta(et: ElectionTown, c: int, k: int, rng: np.random.Generator) -> tuple:
    """The review's and organisation's columns, ``slug`` to ``organisation_gss``."""
    council, country = et.councils[c], et.town.country
    status, event, made = _STAGES[k % len(_STAGES)]
    created = datetime(2023, 6, 1, tzinfo=UTC) + timedelta(
        seconds=int(rng.integers(0, 600 * 86400)), microseconds=int(rng.integers(0, 10**6))
    )
    modified = created + timedelta(
        seconds=int(rng.integers(86400, 300 * 86400)), microseconds=int(rng.integers(0, 10**6))
    )
    return (
        council.slug,
        status,
        event,
        _CONSULTATION[country].format(council.slug),
        _ORDER[country].format(council.name) if made else "",
        _EFFECTIVE if made else "",
        created.isoformat(),
        modified.isoformat(),
        council.name,
        _OFFICIAL[council.code[:3]].format(council.name),
        council.code,
    )


def _old_sets(
    et: ElectionTown,
    c: int,
    cell_codes: list[str],
    types: int,
    rng: np.random.Generator,
    codes: Codes,
    names: Names,
) -> list[tuple[str, list[Division], list[shapely.Geometry]]]:
    """(division type, old divisions, areas a new divisionset may take in) per type."""
    council, country = et.councils[c], et.town.country
    cells = np.flatnonzero(et.wards.council == c)
    if council.electing:
        labels = [(slug, names.title(slug)) for slug in council.wards]
        names.taken.update(council.wards)
    else:
        labels = [names.fresh() for _ in cells]
    wards = [
        Division(slug, name, f"gss:{cell_codes[cell]}", et.wards.cells[cell])
        for (slug, name), cell in zip(labels, cells, strict=True)
    ]
    near = np.unique(shapely.STRtree(et.wards.cells).query(et.wards.cells[cells])[1])
    near = np.concatenate([cells, near[~np.isin(near, cells)]])
    pairs, _ = neighbours(et.wards.cells[near])
    across = np.unique(near[pairs[pairs[:, 0] < len(cells), 1]])
    across = across[~np.isin(across, cells)]
    sets = [(_WARD_TYPE[council.code[:3]], wards, list(et.wards.cells[across]))]
    if types >= 2:
        group_type, prefix = _GROUP_CODE[country]
        sets.append((group_type, grouped(wards, names, lambda: codes(prefix)), []))
    if types >= 3:
        prefix = _PARISH_CODE[country]
        sets.append(("CPC", parishes(wards, rng, names, lambda: codes(prefix)), []))
    return sets


def _write_folder(path: Path, head: tuple, tail: tuple, divisions: list[Division]) -> int:
    """One divisionset's rows, a row per piece, sorted by slug, in part files of about
    PART_BYTES each (as an export's writers split them); returns the row count."""
    lines = []
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    for division in sorted(divisions, key=lambda d: d.slug):
        label = (division.slug, division.name, division.identifier)
        for shape in wkt(np.array(pieces(division.geom), dtype=object)):
            writer.writerow((*head, *label, shape, *tail))
            lines.append(text.getvalue())
            text.seek(0)
            text.truncate()
    parts: list[list[str]] = []
    size = PART_BYTES
    for line in lines:
        if size >= PART_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(line)
        size += len(line)
    path.mkdir(parents=True)
    for number, part in enumerate(parts):
        (path / f"part-{number:05d}.csv").write_text("".join(part), "utf-8", newline="")
    return len(lines)
