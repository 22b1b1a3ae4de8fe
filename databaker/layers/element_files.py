"""A letter's lists of records, cut into outcode files on whole columns.

Each distinct element of a letter is split into its fields once, and each field's values are
numbered once, both in sorted order (:class:`LetterElements`). A file then takes its elements'
numbers and keeps those it uses, renumbered from 0 in the same order (:class:`FileElements`):
a mask over the letter's values and a running count, with no hashing and no pass per row or
element in Python. So what a file holds depends on its own rows only, not on the letter it was
cut from, and it comes in two forms:

- its fields as dictionaries of the values the file uses (:meth:`FileElements.published`),
  which the Parquet writer stores as the column's dictionary as they are, without hashing
  every value again; no Arrow schema is stored with the file, so readers get plain strings;
- its element texts as a dictionary of the texts the file uses (:meth:`FileElements.texts`),
  what the file's row digest is taken of: canonical for the rows, and an index per element
  rather than a string per field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databaker.layers.element_fields import (
    ElementFields,
    ElementTextError,
    offsets_from_zero,
    one_chunk,
)

ELEMENT_FILES = "element lists 2: sorted dictionaries of each file's own values"
"""What an element layer's files and row digests follow from besides the rows, with the
outcode files' ``ENCODING``. Digests of the rows' element texts as a dictionary (form 2) are
never equal to those of their published structs (form 1, before it), so an earlier version's
files of form 1 are encoded once again, never reused under a digest of the other form."""


@dataclass(frozen=True)
class LetterElements:
    """A letter's distinct elements, in sorted order, each one's fields numbered."""

    fields: ElementFields
    texts: pa.StringArray
    """The distinct element texts, in sorted order."""
    values: pa.StringArray
    """Each field's distinct values (empty texts left out: they are published null), in
    sorted order, field after field."""
    field_starts: np.ndarray
    """Where each field's values start in ``values``, and where the last one's end."""
    field_codes: np.ndarray
    """Each field (a row) of each of ``texts`` (a column): its value's position in ``values``;
    ``len(values)`` where it is null."""
    lists: pa.ListArray
    """The letter's list column, its elements dictionary-encoded over ``texts``: what is cut
    into files and given to :meth:`file`."""

    @classmethod
    def of(cls, fields: ElementFields, lists: pa.Array | pa.ChunkedArray) -> LetterElements:
        """From a list column of element texts, plain or dictionary-encoded strings."""
        lists = one_chunk(lists)
        elements = pc.list_flatten(lists)
        if elements.null_count:
            raise ElementTextError(f"a list holds {elements.null_count} null element(s)")
        if not pa.types.is_dictionary(elements.type):
            elements = pc.dictionary_encode(elements)
        texts = _sorted_distinct(elements.dictionary)
        positions = pc.index_in(elements.dictionary, texts).fill_null(0).to_numpy()
        codes = positions.astype(np.int32)[elements.indices.to_numpy()]
        structs = fields.structs(texts)
        values = [_sorted_distinct(structs.field(name)) for name in fields.names]
        starts = np.cumsum([0, *map(len, values)])
        field_codes = np.full((len(fields.names), len(texts)), starts[-1], dtype=np.int32)
        for row, name, field_values, start in zip(
            field_codes, fields.names, values, starts[:-1], strict=True
        ):
            found = pc.index_in(structs.field(name), field_values).fill_null(-1).to_numpy()
            row[found >= 0] = found[found >= 0] + start
        coded = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), texts)
        return cls(
            fields,
            texts,
            pa.concat_arrays(values),
            starts,
            field_codes,
            pa.ListArray.from_arrays(offsets_from_zero(lists), coded),
        )

    def file(self, lists: pa.Array | pa.ChunkedArray) -> FileElements:
        """The elements of a file's rows, given their lists as cut from :attr:`lists`."""
        lists = one_chunk(lists)
        letter_codes = pc.list_flatten(lists).indices.to_numpy()
        present = np.zeros(len(self.texts), dtype=bool)
        present[letter_codes] = True
        local = np.cumsum(present, dtype=np.int32) - 1
        return FileElements(
            self, offsets_from_zero(lists), np.flatnonzero(present), local[letter_codes]
        )


@dataclass(frozen=True)
class FileElements:
    """The elements of one file's rows, numbered among those the file uses."""

    letter: LetterElements
    offsets: pa.Int32Array
    """The file's lists' offsets, from 0."""
    used: np.ndarray
    """The elements the file uses, by their positions in the letter's ``texts``, ascending."""
    codes: np.ndarray
    """Each element of the file's lists, flattened: its position in ``used``."""

    def texts(self) -> pa.ListArray:
        """The lists as element texts, dictionary-encoded over the texts the file uses in
        sorted order: the same rows give the same array whatever letter they were cut from."""
        used = self.letter.texts.take(pa.array(self.used))
        elements = pa.DictionaryArray.from_arrays(pa.array(self.codes, pa.int32()), used)
        return pa.ListArray.from_arrays(self.offsets, elements)

    def published(self) -> pa.ListArray:
        """The lists as the file holds them, lists of structs, each field dictionary-encoded
        over the values the file uses in sorted order, null where the element's text of the
        field is empty: ``ElementFields.published_lists``' values.

        The values the file uses are marked among the letter's, every field at once; counting
        the marks numbers them, and each field's numbers start again from 0."""
        letter = self.letter
        null = len(letter.values)
        used_codes = letter.field_codes[:, self.used]
        present = np.zeros(null + 1, dtype=bool)
        present[used_codes] = True
        present[null] = False
        kept = np.flatnonzero(present)
        starts = np.searchsorted(kept, letter.field_starts)
        numbers = np.cumsum(present, dtype=np.int32) - 1
        local = np.where(used_codes == null, -1, numbers[used_codes] - starts[:-1, None])
        indices = np.take(local.astype(np.int32), self.codes, axis=1)
        dictionary = letter.values.take(pa.array(kept))
        children = [
            pa.DictionaryArray.from_arrays(
                _with_nulls(np.ascontiguousarray(field_indices)),
                dictionary.slice(int(start), int(end - start)),
                safe=False,
            )
            for field_indices, start, end in zip(indices, starts[:-1], starts[1:], strict=True)
        ]
        kind = pa.dictionary(pa.int32(), pa.string())
        fields = [pa.field(name, kind) for name in letter.fields.names]
        return pa.ListArray.from_arrays(
            self.offsets, pa.StructArray.from_arrays(children, fields=fields)
        )


def _sorted_distinct(values: pa.Array) -> pa.Array:
    distinct = pc.unique(values).drop_null()
    return distinct.take(pc.array_sort_indices(distinct))


def _with_nulls(indices: np.ndarray) -> pa.Int32Array:
    """``indices`` as Arrow's, null where negative."""
    valid = indices >= 0
    nulls = len(indices) - int(np.count_nonzero(valid))
    if not nulls:
        return pa.array(indices, pa.int32())
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.int32(), len(indices), [bitmap, pa.py_buffer(indices)], null_count=nulls
    )
