"""Postcode units of one town: where they are, their postcode, street and kind of housing.

A unit is 5-30 addresses around one point. Units are split into the town's outcodes by
balanced recursive bisection, so districts are spatially compact, central ones small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from databaker.generate.names import street_names, street_type_weights
from databaker.generate.places import MEAN_UNIT, Town

INCODE_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))
INCODES = np.array(
    [f"{d}{a}{b}" for d in range(10) for a in INCODE_LETTERS for b in INCODE_LETTERS],
    dtype=object,
)
STREETS = street_names()
_STREET_P = street_type_weights()
HOUSE, FLATS, SHOPS, ROOMS = 0, 1, 2, 3


@dataclass(frozen=True)
class Units:
    """Per-unit arrays of one town, sorted by postcode (file order)."""

    x: np.ndarray
    y: np.ndarray
    size: np.ndarray
    postcode: np.ndarray
    street: np.ndarray
    number: np.ndarray
    kind: np.ndarray
    ring: np.ndarray
    locality: np.ndarray


def _unit_sizes(rng: np.random.Generator, total: int, minimum: int) -> np.ndarray:
    count = max(minimum, round(total / MEAN_UNIT), -(-total // 30))
    count = min(count, total // 5)
    sizes = np.full(count, 5, dtype=np.int64)
    spare = total - 5 * count
    while spare > 0:
        room = 30 - sizes
        add = rng.multinomial(spare, room / room.sum())
        add = np.minimum(add, room)
        sizes += add
        spare = total - int(sizes.sum())
    return sizes


def _centres(rng: np.random.Generator, town: Town, count: int) -> np.ndarray:
    """Gaussian town core plus a few satellite villages."""
    pts = rng.normal(0.0, town.sigma_km, size=(count, 2))
    villages = int(rng.integers(1, 4))
    village_of = rng.integers(-4 * villages, villages, size=count)
    angle = rng.uniform(0, 2 * np.pi, villages)
    dist = town.sigma_km * rng.uniform(1.6, 2.6, villages)
    hubs = np.column_stack([np.cos(angle), np.sin(angle)]) * dist[:, None]
    sat = village_of >= 0
    pts[sat] = hubs[village_of[sat]] + rng.normal(0, 0.25 * town.sigma_km, (int(sat.sum()), 2))
    return pts


def _bisect(pts: np.ndarray, idx: np.ndarray, groups: int, out: list[np.ndarray]) -> None:
    if groups == 1:
        out.append(idx)
        return
    left = groups // 2
    sub = pts[idx]
    axis = int(np.ptp(sub[:, 1]) > np.ptp(sub[:, 0]))
    order = idx[np.argsort(sub[:, axis], kind="stable")]
    cut = len(idx) * left // groups
    _bisect(pts, order[:cut], left, out)
    _bisect(pts, order[cut:], groups - left, out)


def town_units(town: Town, seed: int) -> Units:
    """Lay out the postcode units of ``town``; deterministic per (seed, town)."""
    rng = np.random.default_rng([seed, 2, town.index])
    k = len(town.outcodes)
    sizes = _unit_sizes(rng, town.addresses, k)
    pts = _centres(rng, town, sizes.size)
    groups: list[np.ndarray] = []
    _bisect(pts, np.arange(sizes.size), k, groups)
    central = np.argsort([np.hypot(*pts[g].mean(axis=0)) for g in groups], kind="stable")
    order_parts, post_parts, loc_parts = [], [], []
    localities = rng.integers(0, 1 << 30, size=k)
    for rank, g in enumerate(central):
        members = groups[g]
        rel = pts[members] - pts[members].mean(axis=0)
        members = members[np.argsort(np.arctan2(rel[:, 1], rel[:, 0]), kind="stable")]
        codes = np.sort(rng.choice(INCODES.size, size=members.size, replace=False))
        order_parts.append(members)
        post_parts.append(town.outcodes[rank] + " " + INCODES[codes])
        loc_parts.append(np.full(members.size, localities[rank]))
    order = np.concatenate(order_parts)
    pts, sizes = pts[order], sizes[order]
    n = sizes.size
    ring = np.hypot(pts[:, 0], pts[:, 1]) / town.sigma_km
    roll = rng.random(n)
    p_flats = 0.05 + 0.35 * np.exp(-ring)
    p_shops = p_flats + 0.08 * np.exp(-ring)
    kind = np.where(roll < p_flats, FLATS, np.where(roll < p_shops, SHOPS, HOUSE))
    kind = np.where(rng.random(n) < 0.03, ROOMS, kind)
    new_street = rng.random(n) < 0.55
    new_street[0] = True
    group = np.cumsum(new_street) - 1
    street_of_group = rng.choice(STREETS.size, size=int(group[-1]) + 1, p=_STREET_P)
    consumed = np.where(kind == HOUSE, sizes, np.where(kind == SHOPS, (sizes + 1) // 2, 1))
    before = np.cumsum(consumed) - consumed
    first = np.flatnonzero(new_street)
    start = rng.integers(1, 40, size=first.size)
    number = start[group] + before - before[first][group]
    return Units(
        x=pts[:, 0],
        y=pts[:, 1],
        size=sizes,
        postcode=np.concatenate(post_parts),
        street=street_of_group[group],
        number=number,
        kind=kind,
        ring=ring,
        locality=np.concatenate(loc_parts),
    )
