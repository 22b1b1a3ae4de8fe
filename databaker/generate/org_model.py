"""The organisations export's records before they become rows, and the dates that make
the as-of date matter.

Relative to a bake in the winter of 2026-27: a combined authority ended on ``ENDED`` and
its successor started the next day; a county and its districts end on ``REORGANISED_END``
and the unitary council replacing them starts on ``VESTING_DAY``; one council's wards are
replaced by a new divisionset on ``NEW_WARDS`` (the old one ends the day before).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import shapely

from databaker.generate.reviewed import Division

ENDED = "2026-05-06"
SUCCESSOR_START = "2026-05-07"
REORGANISED_END = "2027-03-31"
VESTING_DAY = "2027-04-01"
OLD_WARDS_END = "2027-05-05"
NEW_WARDS = "2027-05-06"


@dataclass(frozen=True)
class DivisionSet:
    """Divisions of one type in force from ``start`` to ``end`` (empty: open-ended)."""

    start: str
    end: str
    division_type: str
    divisions: list[Division]


@dataclass
class Organisation:
    """An organisation of EveryElection, its area and its divisionsets."""

    organisation_type: str
    identifier: str
    name: str
    gss: str
    start: str
    end: str
    area: shapely.Geometry
    divisionsets: list[DivisionSet] = field(default_factory=list)
