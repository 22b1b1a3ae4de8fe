"""The embedded engine's version of the organisations join: the same rows as
``current_organisations_joined_to_address_base.duckdb.sql``, on whole columns.

Every area of the areas table (an organisation's own area, or one of its divisions', each
maybe in several pieces) gets a number in list order: by organisation (type, official
identifier), its own area first, then its divisions by area key. The point-in-area index gives
each address's areas in that order, so, per chunk of addresses and with no sort:

1. an address is in an organisation when the first of the organisation's areas containing it
   is the organisation's own; its division there is the next area, if that is one of the same
   organisation's divisions (the least by area key, as the SQL takes);
2. an element is numbered by its division (or its organisation, without one), and its text is
   made once per element the letter uses; each address's list points at them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databaker.layers.element_fields import FIELD_SEPARATOR, ElementFields
from databaker.organisation_records import ORGANISATION_TYPES
from databaker.resources.point_in_area import (
    POINTS_PER_CHUNK,
    AreaIndex,
    area_table,
    write_point_lists,
)

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
        carried=("uprn",),
        ids_column=IDS_COLUMN,
        lists=areas.lists,
        workers=workers,
    )


@dataclass(frozen=True)
class _Areas:
    """The areas table, numbered in list order: by organisation (type, official identifier,
    key), each organisation's own area first, then its divisions' by area key. The index
    gives an address's areas in that order, so its organisations come in list order, each
    with its own area (if it contains the address) just before the least of its divisions."""

    index: AreaIndex
    organisation_of_area: np.ndarray
    """Each area's organisation, by its number in list order."""
    division_of_area: np.ndarray
    """Each division's area: the division's number; -1 for an organisation's own area."""
    elements: pa.Array
    """Every element an address may have, as text: each division's (its organisation's
    fields and its own), by division number, then each organisation's without a division."""
    divisions: int

    @classmethod
    def read(cls, folder: str) -> _Areas:
        table = area_table(folder, ["area_key", "organisation_key", *ORGANISATION, *DIVISION])
        organisations = _organisations(table)
        own = pc.equal(table["division_slug"], "")
        areas = (
            pa.table(
                {
                    "area_key": table["area_key"],
                    "organisation": pc.index_in(
                        table["organisation_key"], organisations["organisation_key"]
                    ),
                    "division": pc.if_else(
                        own, pa.scalar(None, pa.string()), _texts(table, DIVISION)
                    ),
                }
            )
            .group_by("area_key")
            .aggregate([("organisation", "min"), ("division", "min")])
            .rename_columns(["area_key", "organisation", "division"])
        )
        is_division = areas["division"].is_valid()
        areas = areas.append_column("is_division", is_division).sort_by(
            [("organisation", "ascending"), ("is_division", "ascending"), ("area_key", "ascending")]
        )
        # The index numbers areas by their names, sorted: zero-padded numbers sort as numbers.
        width = len(str(areas.num_rows))
        numbers = pc.index_in(table["area_key"], areas["area_key"]).to_numpy(zero_copy_only=False)
        names = pa.array(np.char.zfill(numbers.astype(str), width))
        index = AreaIndex(names, table["wkb"].combine_chunks())
        division = areas["is_division"].to_numpy(zero_copy_only=False)
        owner = areas["organisation"].to_numpy().astype(np.int64)
        texts = organisations["text"].fill_null("").to_numpy(zero_copy_only=False).astype(object)
        division_texts = areas["division"].drop_null().to_numpy(zero_copy_only=False)
        without = FIELD_SEPARATOR * (len(DIVISION) - 1)
        return cls(
            index=index,
            organisation_of_area=owner,
            division_of_area=np.where(division, np.cumsum(division) - 1, -1),
            divisions=int(np.count_nonzero(division)),
            elements=pa.array(
                [
                    *(texts[owner[division]] + FIELD_SEPARATOR + division_texts),
                    *(texts + FIELD_SEPARATOR + without),
                ],
                pa.string(),
            ),
        )

    def lists(self, x: np.ndarray, y: np.ndarray) -> pa.ListArray:
        """Each point's elements, as texts dictionary-encoded, in list order (see the class
        doc): found on the index's pairs in the order it gives them, with no sort, a chunk of
        points at a time."""
        counts, codes = [], []
        for start, point, area in self.index.containing_by_chunk(x, y):
            first, code = self._elements_of(point, area)
            size = min(len(x) - start, POINTS_PER_CHUNK)
            counts.append(np.bincount(point[first], minlength=size))
            codes.append(code)
        code = np.concatenate(codes) if codes else np.empty(0, np.int64)
        used = np.bincount(code, minlength=len(self.elements)) > 0
        compact = (np.cumsum(used) - 1).astype(np.int32)
        offsets = np.zeros(len(x) + 1, dtype=np.int32)
        if counts:
            np.cumsum(np.concatenate(counts), out=offsets[1:])
        values = pa.DictionaryArray.from_arrays(
            pa.array(compact[code]), self.elements.take(pa.array(np.flatnonzero(used)))
        )
        return pa.ListArray.from_arrays(pa.array(offsets), values)

    def _elements_of(self, point: np.ndarray, area: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Of the ``(point, area)`` pairs in list order, the pairs that start an element (an
        organisation's own area) and each element's number in :attr:`elements`."""
        organisation = self.organisation_of_area[area]
        pairs = len(point)
        starts = np.ones(pairs, dtype=bool)
        starts[1:] = (point[1:] != point[:-1]) | (organisation[1:] != organisation[:-1])
        first = np.flatnonzero(starts & (self.division_of_area[area] < 0))
        following = first + 1
        divided = following < pairs
        divided[divided] = (point[following[divided]] == point[first[divided]]) & (
            organisation[following[divided]] == organisation[first[divided]]
        )
        code = self.divisions + organisation[first]
        code[divided] = self.division_of_area[area[following[divided]]]
        return first, code


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
