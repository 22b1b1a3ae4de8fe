"""Divisionsets of a council under review: the old ones and how a review redraws them.

Old divisionsets are the council's wards, divisions grouping neighbouring wards (county
divisions) and parishes splitting wards. A new divisionset keeps most divisions and
changes a share of them in the ways the boundary-reviews layer tells apart: renamed (same
boundary), redrawn (same name, an edge moved or an exclave handed over, so some addresses
change division), merged and split (new names and boundaries); and it covers a slightly
different area (a division left out, one clipped at the edge, a neighbouring council's ward
taken in). At most half of a divisionset changes, so most divisions are kept as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import shapely

from databaker.generate.names import WARD_SUFFIXES, slugify_words
from databaker.generate.redraw import clip, halve, island, neighbours, transfer
from databaker.generate.shapes import cover
from databaker.generate.wards import split_counts

_COMPASS = frozenset(s for s in WARD_SUFFIXES if s)


@dataclass(frozen=True)
class Division:
    """One division of a divisionset: slug, name, official identifier and boundary."""

    slug: str
    name: str
    identifier: str
    geom: shapely.Geometry


class Names:
    """Division names unique within a review, and ``unit_id:`` identifiers for divisions
    whose boundary is new (not yet given a GSS code)."""

    def __init__(self, rng: np.random.Generator, words: list[str], places: list[str]) -> None:
        self.rng, self.words, self.places = rng, words, places
        self.taken: set[str] = set()
        self.unit = int(rng.integers(20_000, 90_000))

    def _pick(self, pool: list[str]) -> str:
        return pool[int(self.rng.integers(len(pool)))]

    def fresh(self, places: bool = False) -> tuple[str, str]:
        """A new (slug, name): a place for a parish, else "Abbey North", "Elm and Ashby"."""
        while True:
            name = self._pick(self.places if places else self.words)
            if not places:
                if self.rng.random() < 0.12:
                    name = f"{name} and {self._pick(self.words)}"
                else:
                    suffix = WARD_SUFFIXES[int(self.rng.integers(len(WARD_SUFFIXES)))]
                    name = f"{name} {suffix.capitalize()}" if suffix else name
            if label := self.claim(name):
                return label

    def claim(self, name: str) -> tuple[str, str] | None:
        """(slug, name) for ``name`` if its slug is still free in this review."""
        slug = slugify_words(name)
        if not slug or slug in self.taken:
            return None
        self.taken.add(slug)
        return slug, name

    def unit_id(self) -> str:
        self.unit += int(self.rng.integers(1, 40))
        return f"unit_id:{self.unit}"

    @staticmethod
    def title(slug: str) -> str:
        """A ward's name from its slug: "abbey-and-elm-north" -> "Abbey and Elm North"."""
        return " ".join(w if w == "and" else w.capitalize() for w in slug.split("-"))


def stem(name: str) -> str:
    """The place a division is named after: "Abbey North" and "Abbey and Elm" -> "Abbey"."""
    words = name.split(" and ")[0].split()
    return " ".join(words[:-1] if len(words) > 1 and words[-1].lower() in _COMPASS else words)


def grouped(wards: list[Division], names: Names, code: Callable[[], str]) -> list[Division]:
    """Divisions of about 3-4 neighbouring wards each, named after two of them."""
    geoms = np.array([w.geom for w in wards], dtype=object)
    n = len(wards)
    count = max(1, round(n / 3.5))
    pts = shapely.get_coordinates(shapely.point_on_surface(geoms))
    groups: list[np.ndarray] = []
    split_counts(pts, np.arange(n), [n // count + (i < n % count) for i in range(count)], groups)
    out = []
    for members in groups:
        members = np.sort(members)
        first, second = stem(wards[members[0]].name), stem(wards[members[-1]].name)
        label = names.claim(first if first == second else f"{first} and {second}")
        out.append(Division(*(label or names.fresh()), f"gss:{code()}", cover(geoms[members])))
    return out


def parishes(
    wards: list[Division], rng: np.random.Generator, names: Names, code: Callable[[], str]
) -> list[Division]:
    """Parishes of the outer wards (a town's centre is often unparished): one to three per
    ward, cut along chords and named after places."""
    geoms = np.array([w.geom for w in wards], dtype=object)
    spots = shapely.get_coordinates(shapely.point_on_surface(geoms))
    reach = np.hypot(*(spots - spots.mean(axis=0)).T)
    outer = np.sort(np.argsort(-reach, kind="stable")[: max(1, round(0.6 * len(wards)))])
    out = []
    for ward in (wards[i] for i in outer):
        want = 1 + int(rng.choice(3, p=[0.35, 0.45, 0.2]))
        parts = [ward.geom]
        while len(parts) < want:
            big = int(np.argmax(shapely.area(parts)))
            halves = halve(parts[big])
            if halves is None:
                break
            parts[big : big + 1] = halves
        out += [Division(*names.fresh(places=True), f"gss:{code()}", g) for g in parts]
    return out


def _split_labels(old: Division, halves: tuple, names: Names) -> list[tuple[str, str]]:
    """Names for the halves of a split division: "Abbey East" and "Abbey West" (or North
    and South, the way the halves lie)."""
    (x0, y0), (x1, y1) = shapely.get_coordinates(shapely.centroid(np.array(halves)))
    if abs(x1 - x0) * np.cos(np.radians(y0)) > abs(y1 - y0):
        sides = ("East", "West") if x0 > x1 else ("West", "East")
    else:
        sides = ("North", "South") if y0 > y1 else ("South", "North")
    return [names.claim(f"{stem(old.name)} {side}") or names.fresh() for side in sides]


def redrawn(
    old: list[Division], gain: list[shapely.Geometry], rng: np.random.Generator, names: Names
) -> list[Division]:
    """The new divisionset of a review for ``old``; ``gain`` are areas it may take in
    (wards of neighbouring councils sharing an edge with it)."""
    n = len(old)
    geoms = np.array([d.geom for d in old], dtype=object)
    pairs, shared = neighbours(geoms)
    free = np.ones(n, dtype=bool)
    order = rng.permutation(n)
    new: dict[int, list[Division]] = {}
    budget = max(1, n // 2)

    def take_pairs(count: int, smallest: int) -> list[tuple[int, int]]:
        nonlocal budget
        got: list[tuple[int, int]] = []
        for p in rng.permutation(len(pairs)):
            i, j = (int(k) for k in pairs[p])
            if len(got) < min(count, budget // 2) and n >= smallest and free[i] and free[j]:
                free[i] = free[j] = False
                got.append((i, j) if rng.random() < 0.5 else (j, i))
        budget -= 2 * len(got)
        return got

    def take_singles(count: int) -> list[int]:
        nonlocal budget
        got = [int(i) for i in order if free[i]][: min(count, budget)]
        free[got] = False
        budget -= len(got)
        return got

    edges = {frozenset(map(int, pair)): line for pair, line in zip(pairs, shared, strict=True)}
    for giver, taker in take_pairs(round(0.06 * n) or 1, 2):
        moved = transfer(geoms[giver], geoms[taker], edges[frozenset((giver, taker))])
        _apply(new, old, (taker, giver), moved, names)
    for giver, taker in take_pairs(round(0.02 * n) or 1, 12):
        _apply(new, old, (taker, giver), island(geoms[giver], geoms[taker]), names)
    for i in take_singles(round(0.08 * n) or 1):
        new[i] = [replace(old[i], slug=(label := names.fresh())[0], name=label[1])]
    for i, j in take_pairs(round(0.04 * n) or 1, 6):
        label = names.claim(f"{stem(old[i].name)} and {stem(old[j].name)}") or names.fresh()
        new[i], new[j] = [Division(*label, names.unit_id(), cover(geoms[[i, j]]))], []
    for i in take_singles((round(0.04 * n) or 1) if n >= 3 else 0):
        halves = halve(geoms[i])
        if halves is not None:
            labels = _split_labels(old[i], halves, names)
            pairs_ = zip(labels, halves, strict=True)
            new[i] = [Division(*label, names.unit_id(), geom) for label, geom in pairs_]
    singles = [int(i) for i in order if free[i]]
    added = []
    if gain and n >= 6:
        taken_in = gain[int(rng.integers(len(gain)))]
        added.append(Division(*names.fresh(), names.unit_id(), taken_in))
    if n >= 10:
        _change_edges(old, geoms, pairs, singles, added, new, names)
    kept = [d for i in range(n) for d in new.get(i, [old[i]])]
    return kept + added


def _apply(
    new: dict[int, list[Division]],
    old: list[Division],
    which: tuple[int, int],
    geoms: tuple[shapely.Geometry, shapely.Geometry] | None,
    names: Names,
) -> None:
    """Give two divisions their redrawn boundaries (same names, new identifiers)."""
    if geoms is not None:
        for i, geom in zip(which, geoms, strict=True):
            new[i] = [replace(old[i], identifier=names.unit_id(), geom=geom)]


def _change_edges(
    old: list[Division],
    geoms: np.ndarray,
    pairs: np.ndarray,
    singles: list[int],
    added: list[Division],
    new: dict[int, list[Division]],
    names: Names,
) -> None:
    """Leave out one division at the edge of the set and clip another along its edge."""
    extra = [shapely.boundary(d.geom) for d in added]
    done = 0
    for i in singles:
        others = np.concatenate([pairs[pairs[:, 0] == i, 1], pairs[pairs[:, 1] == i, 0]])
        fence = shapely.union_all([*shapely.boundary(geoms[others]), *extra])
        outer = shapely.difference(shapely.boundary(geoms[i]), fence)
        if shapely.length(outer) <= 0:
            continue
        if done == 0:
            new[i], done = [], 1
            continue
        clipped = clip(geoms[i], outer)
        if clipped is not None:
            new[i] = [replace(old[i], identifier=names.unit_id(), geom=clipped)]
            return
