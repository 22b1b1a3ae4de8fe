"""Every town's councils and wards, for the organisations export.

The election towns are taken as the ballots have them (same ward polygons, slugs and GSS
codes), so a ward of a ballot is a ward of the export. The other towns get councils and
wards made the same way, from random streams of their own, at the election towns' density
of wards per address; their codes continue after the highest the ballots used, so no two
wards or councils share one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from databaker.generate.councils import Codes, ElectionTown, division_codes
from databaker.generate.names import STREET_WORDS, ward_slugs
from databaker.generate.places import Plan, Town
from databaker.generate.wards import town_wards

ADDRESSES_PER_COUNCIL = 120_000


@dataclass(frozen=True)
class TownMap:
    """A town's ward polygons and, per ward, its council (local index), slug and code."""

    town: Town
    cells: np.ndarray
    council: np.ndarray
    council_names: tuple[str, ...]
    council_codes: tuple[str, ...]
    slugs: tuple[str, ...]
    codes: tuple[str, ...]


def codes_after(rng: np.random.Generator, used: Iterable[str]) -> Codes:
    """A code maker whose every prefix continues after the highest code in ``used``."""
    codes = Codes(rng)
    for code in used:
        prefix, number = code[:3], int(code[3:])
        codes.next[prefix] = max(codes.next.get(prefix, 0), number + int(rng.integers(2, 9)))
    return codes


def town_maps(plan: Plan, towns: list[ElectionTown], seed: int) -> list[TownMap]:
    """One map per town of ``plan``, in town order; ``towns`` are the election towns."""
    rng = np.random.default_rng([seed, 50])
    cell_codes = division_codes(towns, seed)
    elected = {et.town.index: (et, codes) for et, codes in zip(towns, cell_codes, strict=True)}
    ward_codes = codes_after(rng, (c for codes in cell_codes for c in codes))
    council_codes = codes_after(rng, (c.code for et in towns for c in et.councils))
    words = list(plan.names[-2000:]) + list(STREET_WORDS)
    next_name = len(plan.towns) + sum(len(et.councils) - 1 for et in towns)
    density = sum(len(et.wards.cells) for et in towns) / sum(et.town.addresses for et in towns)
    maps = []
    for town in plan.towns:
        trng = np.random.default_rng([seed, 51, town.index])
        if town.index in elected:
            maps.append(_election_map(*elected[town.index], trng, words))
            continue
        councils = 1 + town.addresses // ADDRESSES_PER_COUNCIL
        wards = max(2 * councils, round(town.addresses * density))
        counts = 2 + trng.multinomial(wards - 2 * councils, np.full(councils, 1 / councils))
        geometry = town_wards(town, [int(c) for c in counts], [True] * councils, trng, False)
        names = [town.name, *plan.names[next_name : next_name + councils - 1]]
        next_name += councils - 1
        prefix = _ward_prefix(town)
        maps.append(
            TownMap(
                town=town,
                cells=geometry.cells,
                council=geometry.council,
                council_names=tuple(names),
                council_codes=tuple(council_codes(_council_prefix(town, councils)) for _ in names),
                slugs=_slugs(geometry.council, councils, trng, words),
                codes=tuple(ward_codes(prefix) for _ in geometry.cells),
            )
        )
    return maps


def _election_map(
    et: ElectionTown, codes: list[str], rng: np.random.Generator, words: list[str]
) -> TownMap:
    """The ballots' town: electing councils keep their ward slugs, the others get some."""
    slugs = list(_slugs(et.wards.council, len(et.councils), rng, words))
    for c, council in enumerate(et.councils):
        if council.electing:
            for cell, slug in zip(
                np.flatnonzero(et.wards.council == c), council.wards, strict=True
            ):
                slugs[cell] = slug
    return TownMap(
        town=et.town,
        cells=et.wards.cells,
        council=et.wards.council,
        council_names=tuple(c.name for c in et.councils),
        council_codes=tuple(c.code for c in et.councils),
        slugs=tuple(slugs),
        codes=tuple(codes),
    )


def _slugs(
    council: np.ndarray, councils: int, rng: np.random.Generator, words: list[str]
) -> tuple[str, ...]:
    """Distinct ward slugs within each council."""
    slugs = [""] * len(council)
    for c in range(councils):
        cells = np.flatnonzero(council == c)
        for cell, slug in zip(cells, ward_slugs(rng, words, len(cells)), strict=True):
            slugs[cell] = slug
    return tuple(slugs)


def _ward_prefix(town: Town) -> str:
    return {"E": "E05", "W": "W05", "S": "S13"}[town.country]


def _council_prefix(town: Town, councils: int) -> str:
    """As the ballots code councils: several in an English town are boroughs."""
    if town.country != "E":
        return {"W": "W06", "S": "S12"}[town.country]
    if councils == 1:
        return "E06"
    return "E09" if town.addresses > 1_000_000 else "E08"
