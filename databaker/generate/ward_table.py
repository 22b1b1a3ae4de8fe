"""All wards of the map in one table, with the addresses in each, and the towns' councils.

The address counts come from the postcode units the address writer lays out (the same
``town_units``), so constituencies and districts can be balanced on real numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from databaker.generate.places import Town
from databaker.generate.reviewed import Names
from databaker.generate.townmaps import TownMap
from databaker.generate.units import town_units


@dataclass(frozen=True)
class WardTable:
    """Per ward: its polygon (extended over the country), slug, name, GSS code, council
    unit, a point inside its town polygon and how many addresses it holds."""

    geom: np.ndarray
    slug: list[str]
    name: list[str]
    code: list[str]
    unit: np.ndarray
    spot: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True)
class Unit:
    """A council of a town's map: the building block of the export's councils."""

    name: str
    code: str
    town: Town
    wards: np.ndarray


def ward_table(
    maps: list[TownMap], extended: list[np.ndarray], seed: int
) -> tuple[WardTable, list[Unit]]:
    """Every town's wards (``extended`` polygons) in town order, and its councils."""
    units: list[Unit] = []
    unit_of = []
    first = 0
    for m in maps:
        for c, (name, code) in enumerate(zip(m.council_names, m.council_codes, strict=True)):
            units.append(Unit(name, code, m.town, first + np.flatnonzero(m.council == c)))
        unit_of.append(len(units) - len(m.council_names) + m.council)
        first += len(m.cells)
    geom = np.concatenate(extended)
    slugs = [s for m in maps for s in m.slugs]
    table = WardTable(
        geom=geom,
        slug=slugs,
        name=[Names.title(s) for s in slugs],
        code=[c for m in maps for c in m.codes],
        unit=np.concatenate(unit_of),
        spot=shapely.get_coordinates(
            shapely.point_on_surface(np.concatenate([m.cells for m in maps]))
        ),
        weight=_addresses(maps, geom, seed),
    )
    return table, units


def _addresses(maps: list[TownMap], geoms: np.ndarray, seed: int) -> np.ndarray:
    """Addresses per ward, from the postcode units (centre point and size) of every town."""
    tree = shapely.STRtree(geoms)
    counts = np.zeros(len(geoms))
    for m in maps:
        units = town_units(m.town, seed)
        lon, lat = m.town.to_lonlat(units.x, units.y)
        inside, ward = tree.query(shapely.points(lon, lat), predicate="within")
        counts += np.bincount(ward, weights=units.size[inside], minlength=len(geoms))
    return counts
