"""Councils and their local-election divisions, town by town.

Only some towns hold elections, and in those only some councils do, so some addresses and
whole outcodes end up with no ballot. Division counts are shared out so the total is
exactly the number asked for (one of them being the enclave ward carved by ``wards``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from databaker.generate.names import STREET_WORDS, slugify_words, ward_slugs
from databaker.generate.places import Plan, Town
from databaker.generate.wards import TownWards, town_wards

_WARD_PREFIX = {"E": "E05", "W": "W05", "S": "S13"}
_COUNCIL_PREFIX = {"E": "E06", "W": "W06", "S": "S12"}


class Codes:
    """GSS-like codes (``E05012345``): per prefix an increasing counter with small gaps."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.next: dict[str, int] = {}

    def __call__(self, prefix: str) -> str:
        value = self.next.get(prefix, int(self.rng.integers(1, 12000)))
        self.next[prefix] = value + int(self.rng.integers(1, 4))
        return f"{prefix}{value:06d}"


@dataclass(frozen=True)
class Council:
    """A council: its name, slug, code, whether it elects this time, and ward slugs if it
    does."""

    name: str
    slug: str
    code: str
    electing: bool
    wards: tuple[str, ...]


@dataclass(frozen=True)
class ElectionTown:
    """An election town's councils and its ward geometry (``wards.council`` indexes them)."""

    town: Town
    councils: tuple[Council, ...]
    wards: TownWards


def _allocate(plan: Plan, divisions: int, rng: np.random.Generator) -> dict[int, int]:
    """Town index -> electing wards (Voronoi cells), at least 3 each, summing to divisions-1."""
    count = len(plan.towns)
    cells = divisions - 1
    chosen = min(max(1, round(0.6 * count)), count - 1, cells // 3)
    towns = np.sort(rng.choice(count, size=chosen, replace=False))
    size = np.array([plan.towns[t].addresses for t in towns], dtype=float)
    share = (cells - 3 * chosen) * size / size.sum()
    wards = 3 + np.floor(share).astype(np.int64)
    short = cells - int(wards.sum())
    wards[np.argsort(-(share - np.floor(share)), kind="stable")[:short]] += 1
    return {int(t): int(w) for t, w in zip(towns, wards, strict=True)}


def _council_counts(
    rng: np.random.Generator, town: Town, wards: int
) -> tuple[list[int], list[bool]]:
    """Ward counts and electing flags of a town's councils, in spatial-split order.

    Big towns get several councils (about one per 120,000 addresses, at most ~90 wards
    each); some councils hold no election, and a third of one-council towns get an extra
    non-electing neighbour, so councils with elections cover only part of the town.
    """
    by_size = 1 + town.addresses // 120_000
    electing = min(max(math.ceil(wards / 90), math.ceil(0.7 * by_size)), wards // 3)
    idle = by_size - electing if by_size > electing else int(by_size >= 2 or rng.random() < 0.3)
    counts = list(3 + rng.multinomial(wards - 3 * electing, np.full(electing, 1 / electing)))
    mean = wards / electing
    counts += [max(2, round(mean * rng.uniform(0.7, 1.3))) for _ in range(idle)]
    flags = [True] * electing + [False] * idle
    order = rng.permutation(len(counts))
    return [int(counts[i]) for i in order], [flags[i] for i in order]


def election_towns(plan: Plan, divisions: int, seed: int) -> list[ElectionTown]:
    """Councils and ward polygons for every town holding local elections."""
    if divisions < 4:
        raise ValueError(f"divisions must be at least 4 (got {divisions})")
    rng = np.random.default_rng([seed, 20])
    codes = Codes(rng)
    allocation = _allocate(plan, divisions, rng)
    next_name = len(plan.towns)
    words = list(plan.names[-2000:]) + list(STREET_WORDS)
    result = []
    for position, (t, wards) in enumerate(allocation.items()):
        town = plan.towns[t]
        trng = np.random.default_rng([seed, 21, t])
        counts, electing = _council_counts(trng, town, wards)
        geometry = town_wards(town, counts, electing, trng, special=position == 0)
        council_prefix = _COUNCIL_PREFIX[town.country]
        if len(counts) > 1 and town.country == "E":
            council_prefix = "E09" if town.addresses > 1_000_000 else "E08"
        names = [town.name, *plan.names[next_name : next_name + len(counts) - 1]]
        next_name += len(counts) - 1
        councils = []
        for c, (name, is_electing) in enumerate(zip(names, electing, strict=True)):
            n_wards = int((geometry.council == c).sum()) if is_electing else 0
            councils.append(
                Council(
                    name=name,
                    slug=slugify_words(name),
                    code=codes(council_prefix),
                    electing=is_electing,
                    wards=tuple(ward_slugs(trng, words, n_wards)),
                )
            )
        result.append(ElectionTown(town=town, councils=tuple(councils), wards=geometry))
    return result


def division_codes(towns: list[ElectionTown], seed: int) -> list[list[str]]:
    """A ward GSS code per cell of every election town (same order as the cells)."""
    codes = Codes(np.random.default_rng([seed, 22]))
    return [[codes(_WARD_PREFIX[et.town.country]) for _ in et.wards.cells] for et in towns]
