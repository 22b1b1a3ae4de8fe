"""The ballots export: Division, Organisation and geography-less (None) ballot rows.

Organisation ballots (mayors, police and crime commissioners) cover whole councils or
towns that also hold division ballots, so the two kinds nest. Their geometry is cut into
several pieces, one CSV row each.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from databaker.generate.councils import Codes, ElectionTown, division_codes, election_towns
from databaker.generate.names import STREET_WORDS, slugify_words, ward_slugs
from databaker.generate.places import Plan
from databaker.generate.shapes import cover, subdivide, wkt

ELECTION_DATE = "2027-05-06"
HEADER = ("election_id", "division_id", "geometry", "source_table")


@dataclass(frozen=True)
class BallotSummary:
    """Counts of what was written to the ballots CSV."""

    rows: int
    ballots: int
    divisions: int
    organisations: int


def _division_rows(towns: list[ElectionTown], seed: int, rng: np.random.Generator) -> list[tuple]:
    rows = []
    for et, codes in zip(towns, division_codes(towns, seed), strict=True):
        text = wkt(et.wards.cells)
        for c, council in enumerate(et.councils):
            cells = np.flatnonzero(et.wards.council == c) if council.electing else []
            for ward, cell in zip(council.wards, cells, strict=True):
                ballot = f"local.{council.slug}.{ward}.{ELECTION_DATE}"
                rows.append((ballot, codes[cell], _ewkt(rng, text[cell]), "Division"))
    return rows


def _ewkt(rng: np.random.Generator, text: str) -> str:
    return f"SRID=4326;{text}" if rng.random() < 0.5 else text


def _town_cover(et: ElectionTown, council: int | None = None) -> shapely.Geometry:
    cells = et.wards.cells if council is None else et.wards.cells[et.wards.council == council]
    return cover(cells)


def _organisations(
    towns: list[ElectionTown], divisions: int, rng: np.random.Generator, codes: Codes
) -> list[tuple[str, str, shapely.Geometry]]:
    """(election id, code, geometry) of mayoral and PCC ballots over election towns.

    Mayors cover one town (a combined authority over all its councils, or its single
    council); a police force covers its lead town and up to three nearby ones. Scotland
    has neither, so Scottish towns are skipped when there is any other choice.
    """
    wanted = max(2, round(divisions / 350))
    eligible = [i for i, et in enumerate(towns) if et.town.country != "S"]
    eligible = eligible or list(range(len(towns)))
    mayors = rng.choice(eligible, size=min(len(eligible), max(1, wanted // 2)), replace=False)
    out = []
    for i in np.sort(mayors):
        et = towns[i]
        if len(et.councils) > 1:
            org, code, geom = f"{slugify_words(et.town.name)}-ca", codes("E47"), _town_cover(et)
        else:
            council = et.councils[0]
            org, code, geom = council.slug, council.code, _town_cover(et, 0)
        out.append((f"mayor.{org}.{ELECTION_DATE}", code, geom))
    leads = rng.choice(
        eligible, size=min(len(eligible), max(1, wanted - len(mayors))), replace=False
    )
    taken = set(int(i) for i in leads)
    for lead in leads:
        base = towns[lead].town
        dist = [
            np.hypot(towns[i].town.lon - base.lon, towns[i].town.lat - base.lat) for i in eligible
        ]
        group, extra = [int(lead)], int(rng.integers(0, 4))
        for j in np.argsort(dist, kind="stable"):
            i = eligible[j]
            if len(group) > extra or dist[j] > 1.5:
                break
            if i not in taken:
                group.append(i)
                taken.add(i)
        slugs = [slugify_words(towns[i].town.name) for i in group]
        force = f"{slugs[0]}shire" if len(group) == 1 else f"{slugs[0]}-and-{slugs[1]}"
        prefix = "W15" if base.country == "W" else "E23"
        parts = np.concatenate([shapely.get_parts(_town_cover(towns[i])) for i in group])
        out.append((f"pcc.{force}.{ELECTION_DATE}", codes(prefix), shapely.multipolygons(parts)))
    return out


def _unmapped(
    plan: Plan, towns: list[ElectionTown], rng: np.random.Generator, codes: Codes
) -> list[tuple]:
    """Ballots with no boundary: a parliamentary seat and one or two local by-elections."""
    electing = {et.town.index for et in towns}
    quiet = [t for t in plan.towns if t.index not in electing]
    place = slugify_words(quiet[int(rng.integers(len(quiet)))].name)
    side = ("north", "south", "east", "west", "central")[int(rng.integers(5))]
    rows = [(f"parl.{place}-{side}.{ELECTION_DATE}", codes("E14"), "", "None")]
    councils = [c for et in towns for c in et.councils]
    idle = [c for c in councils if not c.electing] or councils
    for council in (idle[0], idle[-1]) if len(idle) > 1 else (idle[0],):
        ward = next(w for w in ward_slugs(rng, STREET_WORDS, 8) if w not in council.wards)
        rows.append((f"local.{council.slug}.{ward}.by.{ELECTION_DATE}", codes("E05"), "", "None"))
    return rows


def write_ballots(
    path: Path,
    plan: Plan,
    divisions: int,
    seed: int,
    towns: list[ElectionTown] | None = None,
) -> BallotSummary:
    """Write the ballots CSV for ``plan`` to ``path``; ``towns``, when given, are
    ``election_towns(plan, divisions, seed)`` already made (other outputs share them)."""
    if towns is None:
        towns = election_towns(plan, divisions, seed)
    rng = np.random.default_rng([seed, 30])
    codes = Codes(rng)
    orgs = _organisations(towns, divisions, rng, codes)
    rows = []
    for ballot, code, geom in orgs:
        pieces = wkt(subdivide(geom))
        prefix = "SRID=4326;" if rng.random() < 0.5 else ""
        rows += [(ballot, code, prefix + piece, "Organisation") for piece in pieces]
    rows += _division_rows(towns, seed, rng)
    rows += _unmapped(plan, towns, rng, codes)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    return BallotSummary(
        rows=len(rows),
        ballots=len({r[0] for r in rows}),
        divisions=sum(r[3] == "Division" for r in rows),
        organisations=len(orgs),
    )
