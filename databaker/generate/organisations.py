"""The organisations export: every level of government of the generated map, as
EveryElection's organisation, divisionset and division tables would export it.

One CSV row per piece of an organisation's area (``division_slug`` empty) or of one of its
divisions, in the export's ``HEADER`` order (:mod:`databaker.organisation_records`). It is
made from the very geography the drop and the ballots are (the same towns and ward
polygons, the ballots' wards keeping their slugs and codes), with the wards extended
over the land between towns so that every generated address is in a council, a ward and
a constituency. Its random streams are its own (``[seed, 50..59]``): asking for it leaves
every other output byte for byte as it was.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from databaker.generate.bodies import combined_authorities, london, parliaments, police_areas
from databaker.generate.council_orgs import council_organisations
from databaker.generate.councils import ElectionTown
from databaker.generate.cuts import cut
from databaker.generate.local_authorities import build_councils
from databaker.generate.names import STREET_WORDS
from databaker.generate.org_model import Organisation
from databaker.generate.places import Plan
from databaker.generate.reviewed import Names
from databaker.generate.rural import tessellate
from databaker.generate.townmaps import codes_after, town_maps
from databaker.generate.ward_table import ward_table
from databaker.organisation_records import HEADER, ORGANISATION_TYPES
from databaker.progress import Progress, silent


@dataclass(frozen=True)
class OrganisationsSummary:
    """Counts of what was written to the organisations export."""

    organisations: int
    divisions: int
    rows: int


def build_organisations(plan: Plan, towns: list[ElectionTown], seed: int) -> list[Organisation]:
    """Every organisation of the map, ordered by type (EveryElection's order) then
    identifier. ``towns`` are ``election_towns(plan, divisions, seed)``."""
    maps = town_maps(plan, towns, seed)
    table, units = ward_table(maps, tessellate(maps), seed)
    rng = np.random.default_rng([seed, 55])
    councils = build_councils(table, units, rng)
    code = codes_after(rng, [*table.code, *(u.code for u in units), *(c.gss for c in councils)])
    places = list(plan.names[-2000:])
    names = Names(rng, places + list(STREET_WORDS), places)
    orgs = parliaments(table, units, councils, code)
    orgs += london(table, councils, code)
    orgs += combined_authorities(councils, units, float(table.weight.sum()), rng, code)
    orgs += police_areas(councils, code)
    orgs += council_organisations(table, councils, rng, names, code)
    return sorted(orgs, key=lambda o: (ORGANISATION_TYPES.index(o.organisation_type), o.identifier))


def write_organisations(
    path: Path,
    plan: Plan,
    towns: list[ElectionTown],
    seed: int,
    progress: Progress = silent,
) -> OrganisationsSummary:
    """Write the export of ``build_organisations`` to ``path``; about half the rows give
    their geometry as ``SRID=4326;``-prefixed EWKT, the others as plain WKT. ``progress``
    counts the organisations written."""
    orgs = build_organisations(plan, towns, seed)
    rng = np.random.default_rng([seed, 56])
    rows = divisions = 0
    meter = progress("writing the organisations export", len(orgs), "organisations")
    with open(path, "w", newline="", encoding="utf-8") as handle, meter as written:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for org in orgs:
            head = (org.organisation_type, org.identifier, org.name, org.gss, org.start, org.end)
            labels = [("",) * 6]
            geoms = [org.area]
            for ds in org.divisionsets:
                for d in sorted(ds.divisions, key=lambda d: d.slug):
                    labels.append(
                        (ds.start, ds.end, ds.division_type, d.slug, d.name, d.identifier)
                    )
                    geoms.append(d.geom)
            divisions += len(geoms) - 1
            pieces, owner = cut(np.array(geoms, dtype=object))
            srid = np.where(rng.random(len(pieces)) < 0.5, "SRID=4326;", "")
            for text, of, prefix in zip(_wkt(pieces), owner, srid, strict=True):
                writer.writerow((*head, *labels[of], prefix + text))
            rows += len(pieces)
            written.advance(1)
    return OrganisationsSummary(organisations=len(orgs), divisions=divisions, rows=rows)


def _wkt(geoms: np.ndarray) -> list[str]:
    """Compact WKT, ``POLYGON((x y,x y,...))``, each coordinate the shortest text that
    reads back as the same float (so pieces still meet exactly)."""
    text = shapely.to_wkt(geoms, rounding_precision=-1, trim=True)
    return [t.replace(" (", "(").replace(", ", ",") for t in text.tolist()]
