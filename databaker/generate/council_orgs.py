"""Councils as organisations of the export: their wards, county divisions and changes.

Every council but a county has its wards as one divisionset; a county has county
divisions (``CED``) grouping two or three wards of one of its districts. Two changes make
the as-of date matter: the first county and its districts end on ``REORGANISED_END`` and
a unitary council with the county's divisions starts on ``VESTING_DAY``; and the first
unitary with four wards or more has its wards replaced on ``NEW_WARDS`` by a set where
two are merged, one is split and one renamed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import shapely

from databaker.generate.grouping import balanced_groups, register_codes
from databaker.generate.local_authorities import OFFICIAL, WARD_TYPE, Council
from databaker.generate.org_model import (
    NEW_WARDS,
    OLD_WARDS_END,
    REORGANISED_END,
    VESTING_DAY,
    DivisionSet,
    Organisation,
)
from databaker.generate.redraw import halve, neighbours
from databaker.generate.reviewed import Division, Names, stem
from databaker.generate.unions import union_of
from databaker.generate.ward_table import WardTable

_STARTS = {
    "E06": ("1996-04-01", "1997-04-01", "1998-04-01", "2009-04-01", "2019-04-01"),
    "E07": ("1974-04-01",),
    "E08": ("1974-04-01", "1986-04-01"),
    "E09": ("1965-04-01",),
    "E10": ("1974-04-01",),
    "W06": ("1996-04-01",),
    "S12": ("1996-04-01",),
}
_WARD_SETS = {
    "E": ("2015-05-07", "2016-05-05", "2019-05-02", "2021-05-06", "2022-05-05", "2023-05-04"),
    "W": ("2022-05-05",),
    "S": ("2017-05-04", "2022-05-05"),
}


def council_organisations(
    table: WardTable,
    councils: list[Council],
    rng: np.random.Generator,
    names: Names,
    code: Callable[[str], str],
) -> list[Organisation]:
    """One organisation per council, plus the unitary replacing the first county."""
    counties = [i for i, c in enumerate(councils) if c.districts]
    reorganised = counties[0] if counties else None
    ending = {reorganised, *councils[reorganised].districts} if counties else set()
    replaced = _replaced(councils, ending)
    labels = [c.name for c in councils]
    if reorganised is not None:
        labels.append(councils[reorganised].name)
    identifiers = register_codes(labels)
    out = []
    successor = None
    for i, council in enumerate(councils):
        start = _STARTS[council.kind][int(rng.integers(len(_STARTS[council.kind])))]
        org = Organisation(
            organisation_type="local-authority",
            identifier=identifiers[i],
            name=OFFICIAL[council.kind].format(council.name),
            gss=council.gss,
            start=start,
            end=REORGANISED_END if i in ending else "",
            area=council.area,
        )
        sets = _WARD_SETS[council.country]
        since = sets[int(rng.integers(len(sets)))]
        if council.districts:
            names.taken.clear()
            divisions = county_divisions(table, council, councils, names, code)
            org.divisionsets.append(DivisionSet(since, org.end, "CED", divisions))
            if i == reorganised:
                successor = _successor(council, identifiers[-1], divisions, code)
        else:
            wards = [
                Division(table.slug[w], table.name[w], f"gss:{table.code[w]}", table.geom[w])
                for w in council.wards
            ]
            kind = WARD_TYPE[council.kind]
            if i == replaced:
                names.taken.clear()
                names.taken.update(d.slug for d in wards)
                org.divisionsets.append(DivisionSet(since, OLD_WARDS_END, kind, wards))
                later = _redrawn(wards, rng, names, code)
                org.divisionsets.append(DivisionSet(NEW_WARDS, "", kind, later))
            else:
                org.divisionsets.append(DivisionSet(since, org.end, kind, wards))
        out.append(org)
    return out if successor is None else [*out, successor]


def _replaced(councils: list[Council], ending: set[int | None]) -> int | None:
    """The council whose wards are replaced: the first unitary of four wards or more, else
    the first such council that is not a county nor being reorganised."""
    big = [i for i, c in enumerate(councils) if len(c.wards) >= 4 and not c.districts]
    unitary = [i for i in big if councils[i].kind == "E06"]
    others = [i for i in big if i not in ending]
    return (unitary or others or [None])[0]


def county_divisions(
    table: WardTable,
    county: Council,
    councils: list[Council],
    names: Names,
    code: Callable[[str], str],
) -> list[Division]:
    """Divisions of two or three neighbouring wards of one district, named after them."""
    out = []
    for d in county.districts:
        wards = councils[d].wards
        count = max(1, round(len(wards) / 2.5))
        for group in balanced_groups(table.spot[wards], table.weight[wards], count):
            members = wards[group]
            first, second = stem(table.name[members[0]]), stem(table.name[members[-1]])
            label = (
                names.claim(first if first == second else f"{first} and {second}")
                or names.claim(f"{councils[d].name} {first}")
                or names.fresh()
            )
            geom = union_of(table.geom[members])
            out.append(Division(*label, f"gss:{code('E58')}", geom))
    return out


def _successor(
    county: Council, identifier: str, divisions: list[Division], code: Callable[[str], str]
) -> Organisation:
    """The unitary council replacing a county and its districts, on the county's divisions."""
    wards = [replace(d, identifier=f"gss:{code('E05')}") for d in divisions]
    return Organisation(
        organisation_type="local-authority",
        identifier=identifier,
        name=OFFICIAL["E06"].format(county.name),
        gss=code("E06"),
        start=VESTING_DAY,
        end="",
        area=county.area,
        divisionsets=[DivisionSet(VESTING_DAY, "", "UTE", wards)],
    )


def _redrawn(
    old: list[Division], rng: np.random.Generator, names: Names, code: Callable[[str], str]
) -> list[Division]:
    """The new wards: two neighbours merged, another ward split in two, one renamed."""
    geoms = np.array([d.geom for d in old], dtype=object)
    pairs, _ = neighbours(geoms)
    i, j = (int(k) for k in pairs[int(rng.integers(len(pairs)))])
    label = names.claim(f"{stem(old[i].name)} and {stem(old[j].name)}") or names.fresh()
    new = {i: [Division(*label, f"gss:{code('E05')}", union_of(geoms[[i, j]]))], j: []}
    for k in (int(k) for k in rng.permutation(len(old))):
        halves = None if k in new else halve(geoms[k])
        if halves is not None:
            names.taken.discard(old[k].slug)
            new[k] = [
                Division(*_side_label(old[k], half, geoms[k], names), f"gss:{code('E05')}", half)
                for half in halves
            ]
            break
    for k in (int(k) for k in rng.permutation(len(old))):
        if k not in new:
            new[k] = [replace(old[k], slug=(label := names.fresh())[0], name=label[1])]
            break
    return [d for k in range(len(old)) for d in new.get(k, [old[k]])]


def _side_label(
    ward: Division, half: shapely.Geometry, whole: shapely.Geometry, names: Names
) -> tuple[str, str]:
    """ "Abbey East" for the half of Abbey lying east of the whole (or North, South, West)."""
    (hx, hy), (wx, wy) = shapely.get_coordinates(shapely.centroid(np.array([half, whole])))
    if abs(hx - wx) * np.cos(np.radians(wy)) > abs(hy - wy):
        side = "East" if hx > wx else "West"
    else:
        side = "North" if hy > wy else "South"
    return names.claim(f"{stem(ward.name)} {side}") or names.fresh()
