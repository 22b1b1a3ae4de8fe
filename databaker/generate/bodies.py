"""The organisations above the councils: parliaments, the GLA, combined authorities and
police areas, all made of the same wards and councils.

Constituencies group wards of about equal addresses within a country, whatever council
they are in, so they cross council borders. Police areas group the top-tier councils of
England and Wales (none in Scotland); combined authorities group a big town's boroughs,
or a few neighbouring English councils. The first of the latter has a predecessor that
ended on ``ENDED`` over part of its area, and itself started the next day.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from databaker.generate.grouping import balanced_groups
from databaker.generate.local_authorities import Council
from databaker.generate.names import slugify_words
from databaker.generate.org_model import ENDED, SUCCESSOR_START, DivisionSet, Organisation
from databaker.generate.reviewed import Division
from databaker.generate.unions import union_of
from databaker.generate.ward_table import Unit, WardTable

ADDRESSES_PER_SEAT = {"parl": 46_000, "sp": 37_000, "senedd": 94_000}
ADDRESSES_PER_FORCE = 650_000
ADDRESSES_PER_COMBINED = 2_500_000
_PARLIAMENTS = {
    # type: (name, start, divisionset start, division type, countries it covers)
    "parl": ("House of Commons", "1801-01-01", "2024-07-04", "WMC", "EWS"),
    "sp": ("Scottish Parliament", "1999-05-06", "2026-05-07", "SPC", "S"),
    "senedd": ("Senedd Cymru", "2020-05-06", "2026-05-07", "WAC", "W"),
}
_SEAT_CODE = {
    ("parl", "E"): "E14",
    ("parl", "W"): "W07",
    ("parl", "S"): "S14",
    ("sp", "S"): "S16",
    ("senedd", "W"): "W09",
}
_COMPASS = (
    "East",
    "North East",
    "North",
    "North West",
    "West",
    "South West",
    "South",
    "South East",
)
Code = Callable[[str], str]


def parliaments(
    table: WardTable, units: list[Unit], councils: list[Council], code: Code
) -> list[Organisation]:
    """The House of Commons over the whole map, and the Scottish Parliament and the Senedd
    where the map has Scottish or Welsh towns."""
    country = np.array([units[u].town.country for u in table.unit])
    out = []
    for kind, (name, start, since, division_type, countries) in _PARLIAMENTS.items():
        present = [c for c in countries if (country == c).any()]
        if not present:
            continue
        total = table.weight[np.isin(country, present)].sum()
        seats = max(2 if kind == "parl" else 1, round(total / ADDRESSES_PER_SEAT[kind]))
        taken: set[str] = set()
        divisions = []
        for c in present:
            wards = np.flatnonzero(country == c)
            share = table.weight[wards].sum() / max(total, 1.0)
            count = min(len(wards), max(1, round(seats * share)))
            for group in balanced_groups(table.spot[wards], table.weight[wards], count):
                members = wards[group]
                label = _seat_name(table, units, members, taken)
                identifier = f"gss:{code(_SEAT_CODE[kind, c])}"
                divisions.append(Division(*label, identifier, union_of(table.geom[members])))
        areas = [k.area for k in councils if not k.districts and k.country in present]
        area = union_of(np.array(areas, dtype=object))
        out.append(
            Organisation(
                kind,
                kind,
                name,
                "",
                start,
                "",
                area,
                [DivisionSet(since, "", division_type, divisions)],
            )
        )
    return out


def _seat_name(
    table: WardTable, units: list[Unit], wards: np.ndarray, taken: set[str]
) -> tuple[str, str]:
    """(slug, name) of a seat: after the council unit holding most of its addresses, with
    the second if that holds a third or more ("Ashby and Kirkton"), and a compass point
    or a ward's name when the name is taken."""
    weight = np.bincount(table.unit[wards], table.weight[wards] + 1e-9, len(units))
    first, second = np.argsort(-weight, kind="stable")[:2]
    base = units[first].name
    if weight[second] >= 0.33 * weight.sum() and units[second].name != base:
        base = f"{base} and {units[second].name}"
    here = np.average(table.spot[wards], axis=0, weights=table.weight[wards] + 1e-9)
    there = table.spot[units[first].wards].mean(axis=0)
    turn = np.arctan2(here[1] - there[1], (here[0] - there[0]) * 0.62)
    side = _COMPASS[int(np.round(turn / (np.pi / 4))) % 8]
    heaviest = table.name[wards[int(np.argmax(table.weight[wards]))]]
    tries = [base, f"{base} {side}", f"{base} {side} and {heaviest}"]
    tries += [f"{base} {side} {n}" for n in range(2, len(taken) + 3)]
    name = next(t for t in tries if slugify_words(t) not in taken)
    taken.add(slugify_words(name))
    return slugify_words(name), name


def london(table: WardTable, councils: list[Council], code: Code) -> list[Organisation]:
    """The Greater London Authority over the London boroughs (``E09``), if any, with
    assembly constituencies of two or three boroughs each."""
    boroughs = [c for c in councils if c.kind == "E09"]
    if not boroughs:
        return []
    spots = np.array([b.spot for b in boroughs])
    groups = balanced_groups(spots, np.ones(len(boroughs)), max(1, round(len(boroughs) / 2.5)))
    divisions = []
    for group in groups:
        names = [boroughs[i].name for i in group]
        name = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        geom = union_of(np.array([boroughs[i].area for i in group], dtype=object))
        divisions.append(Division(slugify_words(name), name, f"gss:{code('E32')}", geom))
    area = union_of(np.array([b.area for b in boroughs], dtype=object))
    sets = [DivisionSet("2000-05-04", "", "LAC", divisions)]
    return [
        Organisation(
            "gla", "gla", "Greater London Authority", "E12000007", "2000-05-04", "", area, sets
        )
    ]


def top_tier(councils: list[Council]) -> list[int]:
    """Councils not under a county (counties, unitaries, boroughs)."""
    return [i for i, c in enumerate(councils) if c.county is None]


def police_areas(councils: list[Council], code: Code) -> list[Organisation]:
    """Police force areas of whole top-tier councils, England and Wales apart."""
    out = []
    taken: set[str] = set()
    for country, prefix in (("E", "E23"), ("W", "W15")):
        members = [i for i in top_tier(councils) if councils[i].country == country]
        if not members:
            continue
        weight = np.array([councils[i].weight for i in members])
        wanted = max(2 if country == "E" else 1, round(weight.sum() / ADDRESSES_PER_FORCE))
        spots = np.array([councils[i].spot for i in members])
        for group in balanced_groups(spots, weight, min(len(members), wanted)):
            chosen = [members[i] for i in group[np.argsort(-weight[group], kind="stable")]]
            names = [councils[i].name for i in chosen]
            title = names[0] if names[0].endswith("shire") else f"{names[0]}shire"
            if len(names) > 1:
                title = f"{names[0]} and {names[1]}"
            slug, n = slugify_words(title), 2
            while slug in taken:
                slug, n = f"{slugify_words(title)}-{n}", n + 1
            taken.add(slug)
            area = union_of(np.array([councils[i].area for i in chosen], dtype=object))
            out.append(
                Organisation(
                    "police-area", slug, f"{title} Police", code(prefix), "2012-11-15", "", area
                )
            )
    return out


def combined_authorities(
    councils: list[Council],
    units: list[Unit],
    total: float,
    rng: np.random.Generator,
    code: Code,
) -> list[Organisation]:
    """A big English town's boroughs (London aside), then groups of two to four
    neighbouring English top-tier councils; the first group's authority replaced an
    older one over all its councils but the last on ``ENDED``."""
    metros: dict[int, list[int]] = {}
    for i, c in enumerate(councils):
        if c.kind == "E08":
            metros.setdefault(units[c.units[0]].town.index, []).append(i)
    out = []
    for members in metros.values():
        title = councils[max(members, key=lambda i: councils[i].weight)].name
        out.append(_authority(councils, members, title, "-ca", code, "2014-04-01"))
    candidates = [i for i in top_tier(councils) if councils[i].kind in ("E06", "E10")]
    wanted = max(1, round(total / ADDRESSES_PER_COMBINED) - len(metros))
    free = set(candidates)
    groups: list[list[int]] = []
    for seed in (candidates[int(k)] for k in rng.permutation(len(candidates))):
        if len(groups) == wanted or len(free) < 2:
            break
        if seed in free:
            here = councils[seed].spot
            near = sorted(free - {seed}, key=lambda i: (np.hypot(*(councils[i].spot - here)), i))
            groups.append([seed, *near[: int(rng.integers(1, 4))]])
            free -= set(groups[-1])
    for n, members in enumerate(groups):
        title = f"{councils[members[0]].name} and {councils[members[1]].name}"
        if n:
            out.append(_authority(councils, members, title, "-ca", code, "2017-05-04"))
            continue
        out.append(_authority(councils, members, title, "-mca", code, SUCCESSOR_START))
        older = _authority(councils, members[:-1], title, "-ca", code, "2016-04-01")
        older.end = ENDED
        out.append(older)
    return out


def _authority(
    councils: list[Council], members: list[int], title: str, suffix: str, code: Code, start: str
) -> Organisation:
    """A combined authority over whole councils; a ``-mca`` one is a mayoral one."""
    area = union_of(np.array([councils[i].area for i in members], dtype=object))
    name = f"{title} {'Mayoral ' if suffix == '-mca' else ''}Combined Authority"
    return Organisation(
        "combined-authority", f"{slugify_words(title)}{suffix}", name, code("E47"), start, "", area
    )
