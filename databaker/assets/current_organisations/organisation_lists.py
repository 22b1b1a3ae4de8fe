"""The embedded engine's version of the organisations join: the same rows as
``current_organisations_joined_to_address_base.duckdb.sql``, on whole columns.

Every area of the areas table (an organisation's own area, or one of its divisions', each
maybe in several pieces) gets a number, and so does every organisation, in the order its
elements take in a list (type, then official identifier). Per letter:

1. the point-in-area index gives each address the numbers of the areas containing it;
2. an address is in an organisation when one of the organisation's own areas contains it;
   its division there is the least (by area key) of the organisation's divisions containing
   it, if any: both found on integer keys ``address * organisations + organisation``;
3. an element's text is made once per distinct (organisation, division), and each address's
   list points at them in organisation order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databaker.layers.element_fields import FIELD_SEPARATOR, ElementFields
from databaker.layers.layer import ADDRESS_COLUMNS
from databaker.organisation_records import ORGANISATION_TYPES
from databaker.resources.point_in_area import AreaIndex, read_areas, write_point_lists

ORGANISATION = ("organisation_type", "official_identifier", "organisation_name", "gss")
DIVISION = ("division_type", "division_slug", "division_name", "division_official_identifier")
ORGANISATION_FIELDS = ElementFields((*ORGANISATION, *DIVISION))
"""An element of the list: an organisation, and its division containing the address (the
division's fields null where none of its current divisions does)."""
IDS_COLUMN = "organisations"


def write_organisation_lists(
    *,
    addressbase_partitioned: str,
    letters: Sequence[str],
    organisation_areas: str,
    output: str,
    workers: int,
) -> None:
    """Write ``output/first_letter=<L>/data_0.parquet`` for each of ``letters`` that has
    addresses, as the organisations query does (see the module doc)."""
    areas = _Areas.read(organisation_areas)
    write_point_lists(
        points=addressbase_partitioned,
        letters=letters,
        output=output,
        carried=ADDRESS_COLUMNS,
        ids_column=IDS_COLUMN,
        lists=areas.lists,
        repeating=("addressbase_source",),
        workers=workers,
    )


@dataclass(frozen=True)
class _Areas:
    """The areas table, numbered: each area (by ``area_key``, as the index numbers them) with
    its organisation and, for a division's area, its division."""

    index: AreaIndex
    organisation_of_area: np.ndarray
    """Each area's organisation, numbered in list order."""
    division_of_area: np.ndarray
    """Each area's division, numbered by area key; -1 for an organisation's own area."""
    organisations: list[str]
    """Each organisation's part of an element's text (its own fields), by number."""
    divisions: list[str]
    """Each division's part of an element's text, by number, then the empty part (no
    division) last."""

    @classmethod
    def read(cls, folder: str) -> _Areas:
        table = read_areas(folder, ["area_key", "organisation_key", *ORGANISATION, *DIVISION])
        index = AreaIndex.from_arrow(table, "area_key")
        organisations = _organisations(table)
        areas = (
            pa.table(
                {
                    "area_key": table["area_key"],
                    "organisation": pc.index_in(
                        table["organisation_key"], organisations["organisation_key"]
                    ),
                    "division": pc.if_else(
                        pc.equal(table["division_slug"], ""),
                        pa.scalar(None, pa.string()),
                        _texts(table, DIVISION),
                    ),
                }
            )
            .group_by("area_key")
            .aggregate([("organisation", "min"), ("division", "min")])
            .sort_by("area_key")
        )
        if not areas["area_key"].combine_chunks().equals(index.ids):
            raise ValueError("the areas index numbers areas otherwise than by their keys")
        is_division = areas["division_min"].is_valid().to_numpy(zero_copy_only=False)
        return cls(
            index=index,
            organisation_of_area=areas["organisation_min"].to_numpy().astype(np.int64),
            division_of_area=np.where(is_division, np.cumsum(is_division) - 1, -1),
            organisations=organisations["text"].to_pylist(),
            divisions=[
                *areas["division_min"].drop_null().to_pylist(),
                FIELD_SEPARATOR * (len(DIVISION) - 1),
            ],
        )

    def lists(self, x: np.ndarray, y: np.ndarray) -> pa.ListArray:
        """Each point's elements, as texts dictionary-encoded, in organisation order."""
        point, area = self.index.containing(x, y)
        count = max(len(self.organisations), 1)
        key = point * count + self.organisation_of_area[area]
        division = self.division_of_area[area]
        in_organisation = np.unique(key[division < 0])
        division_of = _least_division(key[division >= 0], division[division >= 0])
        position = np.searchsorted(division_of[0], in_organisation)
        found = position < len(division_of[0])
        found[found] &= division_of[0][position[found]] == in_organisation[found]
        no_division = len(self.divisions) - 1
        divisions = np.full(len(in_organisation), no_division, dtype=np.int64)
        divisions[found] = division_of[1][position[found]]
        points, organisations = np.divmod(in_organisation, count)
        codes, element = np.unique(
            organisations * len(self.divisions) + divisions, return_inverse=True
        )
        owner, held = np.divmod(codes, len(self.divisions))
        texts = [
            self.organisations[o] + FIELD_SEPARATOR + self.divisions[d]
            for o, d in zip(owner.tolist(), held.tolist(), strict=True)
        ]
        offsets = np.zeros(len(x) + 1, dtype=np.int32)
        np.cumsum(np.bincount(points, minlength=len(x)), out=offsets[1:])
        values = pa.DictionaryArray.from_arrays(
            pa.array(element.astype(np.int32)), pa.array(texts, pa.string())
        )
        return pa.ListArray.from_arrays(pa.array(offsets), values)


def _least_division(key: np.ndarray, division: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct ``key`` (sorted), the least ``division`` paired with it."""
    order = np.lexsort((division, key))
    key, division = key[order], division[order]
    first = np.ones(len(key), dtype=bool)
    np.not_equal(key[1:], key[:-1], out=first[1:])
    return key[first], division[first]


def _organisations(table: pa.Table) -> pa.Table:
    """Every organisation of the table, in list order (type, official identifier, key), with
    the text of its own fields: the least, should the pieces of its own area disagree."""
    text = _texts(table, ORGANISATION)
    own = pc.equal(table["division_slug"], "")
    named = (
        pa.table(
            {
                "organisation_key": table["organisation_key"],
                "text": pc.if_else(own, text, pa.scalar(None, pa.string())),
                "rank": pc.index_in(table["organisation_type"], pa.array(ORGANISATION_TYPES)),
                "official_identifier": table["official_identifier"],
            }
        )
        .group_by(["organisation_key", "rank", "official_identifier"])
        .aggregate([("text", "min")])
        .rename_columns(["organisation_key", "rank", "official_identifier", "text"])
    )
    order = [("rank", "ascending"), ("official_identifier", "ascending")]
    return named.sort_by([*order, ("organisation_key", "ascending")])


def _texts(table: pa.Table, fields: Sequence[str]) -> pa.ChunkedArray:
    """Each row's ``fields`` joined as an element's text joins them."""
    return pc.binary_join_element_wise(*(table[f] for f in fields), FIELD_SEPARATOR)
