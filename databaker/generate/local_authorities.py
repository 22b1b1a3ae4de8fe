"""The councils of the export, built from the towns' councils (units).

Big towns (several units) keep each unit as a borough. The units of smaller towns are
grouped into districts of about ``ADDRESSES_PER_DISTRICT`` addresses, so a council often
spans several towns, as rural districts do. In England neighbouring districts are grouped
into regions, and about half the regions of two or more districts become a county with
its districts under it (two-tier); the other districts are unitary councils.

So a small town's council in the ballots may be a part of a bigger district here, named
after the district's biggest town; wards keep their slugs and codes, except that a slug
two grouped towns share is made unique within the council.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely

from databaker.generate.grouping import balanced_groups
from databaker.generate.names import slugify_words
from databaker.generate.reviewed import Names
from databaker.generate.townmaps import ADDRESSES_PER_COUNCIL, codes_after
from databaker.generate.unions import union_of
from databaker.generate.ward_table import Unit, WardTable

ADDRESSES_PER_DISTRICT = 75_000
DISTRICTS_PER_REGION = 7
COUNTY_SHARE = 0.55
OFFICIAL = {
    "E06": "{} Council",
    "E07": "{} District Council",
    "E08": "{} Metropolitan Borough Council",
    "E09": "London Borough of {}",
    "E10": "{} County Council",
    "W06": "{} County Borough Council",
    "S12": "{} Council",
}
WARD_TYPE = {"E06": "UTW", "E07": "DIW", "E08": "MTW", "E09": "LBW", "W06": "UTE", "S12": "UTW"}


@dataclass
class Council:
    """A local authority: its GSS kind (``E06``...), common name, wards and, for a county,
    its districts (indices into the council list); a district knows its county."""

    kind: str
    name: str
    country: str
    wards: np.ndarray
    units: list[int]
    gss: str = ""
    area: shapely.Geometry | None = None
    spot: np.ndarray = field(default_factory=lambda: np.zeros(2))
    weight: float = 0.0
    districts: list[int] = field(default_factory=list)
    county: int | None = None


def build_councils(table: WardTable, units: list[Unit], rng: np.random.Generator) -> list[Council]:
    """Boroughs, then districts and unitaries, then counties (after their districts)."""
    weight = np.array([table.weight[u.wards].sum() for u in units])
    spots = np.array([_spot(table, u.wards) for u in units])
    by_town: dict[int, list[int]] = {}
    for i, u in enumerate(units):
        by_town.setdefault(u.town.index, []).append(i)
    councils: list[Council] = []
    small: dict[str, list[int]] = {}
    for members in by_town.values():
        town = units[members[0]].town
        if len(members) > 1 and town.addresses >= ADDRESSES_PER_COUNCIL:
            kind = _borough_kind(town.country, town.addresses)
            councils += [_council(kind, units, [i], weight) for i in members]
        else:
            small.setdefault(town.country, []).extend(members)
    for country in sorted(small):
        members = np.array(small[country])
        least = 5 if country == "E" else 1
        want = max(round(weight[members].sum() / ADDRESSES_PER_DISTRICT), least)
        groups = balanced_groups(spots[members], weight[members], min(len(members), want))
        kind = {"E": "E06", "W": "W06", "S": "S12"}[country]
        councils += [_council(kind, units, list(members[g]), weight) for g in groups]
    for council in councils:
        council.area = union_of(table.geom[council.wards])
        council.spot = _spot(table, council.wards)
        council.weight = float(table.weight[council.wards].sum())
    _counties(councils, rng)
    fresh = codes_after(rng, (u.code for u in units))
    for council in councils:
        own = units[council.units[0]].code if len(council.units) == 1 else ""
        council.gss = own if own.startswith(council.kind) else fresh(council.kind)
    _unique_ward_slugs(table, councils, units)
    return councils


def _spot(table: WardTable, wards: np.ndarray) -> np.ndarray:
    """The address-weighted middle of some wards' town polygons."""
    weights = table.weight[wards] + 1e-9
    return (table.spot[wards] * weights[:, None]).sum(axis=0) / weights.sum()


def _borough_kind(country: str, addresses: int) -> str:
    if country == "E":
        return "E09" if addresses > 1_000_000 else "E08"
    return {"W": "W06", "S": "S12"}[country]


def _council(kind: str, units: list[Unit], members: list[int], weight: np.ndarray) -> Council:
    """A council of ``members`` units, named after the one with most addresses."""
    lead = members[int(np.argmax(weight[members]))]
    return Council(
        kind=kind,
        name=units[lead].name,
        country=units[lead].town.country,
        wards=np.sort(np.concatenate([units[i].wards for i in members])),
        units=members,
    )


def _counties(councils: list[Council], rng: np.random.Generator) -> None:
    """Group English unitaries into regions; some regions (at least one, and not all
    when there are several) become counties over them."""
    english = [i for i, c in enumerate(councils) if c.kind == "E06"]
    if len(english) < 2:
        return
    count = max(2, round(len(english) / DISTRICTS_PER_REGION)) if len(english) >= 4 else 1
    spots = np.array([councils[i].spot for i in english])
    regions = balanced_groups(spots, np.ones(len(english)), count)
    eligible = [r for r in regions if len(r) >= 2]
    chosen = [r for r in eligible if rng.random() < COUNTY_SHARE] or eligible[:1]
    if len(chosen) == len(regions) > 1:
        chosen = chosen[:-1]
    for region in chosen:
        members = [english[i] for i in region]
        lead = max(members, key=lambda i: councils[i].weight)
        county = Council(
            kind="E10",
            name=_shire(councils[lead].name),
            country="E",
            wards=np.sort(np.concatenate([councils[i].wards for i in members])),
            units=[u for i in members for u in councils[i].units],
            area=union_of(np.array([councils[i].area for i in members], dtype=object)),
            spot=np.average([councils[i].spot for i in members], axis=0),
            weight=sum(councils[i].weight for i in members),
            districts=members,
        )
        for i in members:
            councils[i].kind = "E07"
            councils[i].county = len(councils)
        councils.append(county)


def _shire(name: str) -> str:
    return name if name.endswith("shire") else f"{name}shire"


def _unique_ward_slugs(table: WardTable, councils: list[Council], units: list[Unit]) -> None:
    """Ward slugs unique within each council (towns grouped together may repeat one): a
    repeat takes its town's name, then a number."""
    for council in councils:
        if council.districts:
            continue
        seen: set[str] = set()
        for ward in council.wards:
            slug = table.slug[ward]
            if slug in seen:
                town = slugify_words(units[table.unit[ward]].town.name)
                slug = f"{slug}-{town}"
                number = 2
                while slug in seen:
                    slug, number = f"{table.slug[ward]}-{town}-{number}", number + 1
                table.slug[ward] = slug
                table.name[ward] = Names.title(slug)
            seen.add(slug)
