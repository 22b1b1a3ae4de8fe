"""A layer whose list elements are records of named fields, published as Parquet structs.

Consumers read such a list as ``List(Struct)`` and take its fields by name (polars'
``.struct.field("gss")``), which a list of JSON texts would make them parse. Inside the bake
each element is kept as one text, its fields' values joined by :data:`FIELD_SEPARATOR`, so
that the shared machinery (the joined table's dictionary-encoded lists, row digests, the
diff's keys, the per-ID counts) handles it like any list of IDs; only the outcode files hold
the structs, converted on whole columns when a file is encoded
(:mod:`databaker.layers.element_files`) and back when one is compared.

A field is null in the struct exactly when its text is empty: a value the export leaves
empty is published as null, never as ``""``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

FIELD_SEPARATOR = "\x1e"
"""Between an element's fields (ASCII's record separator). The diff joins whole elements with
the unit separator, so the two never meet."""


class ElementTextError(ValueError):
    """An element's text does not hold one value per field (a value held a separator)."""


@dataclass(frozen=True)
class ElementFields:
    """The string fields of a layer's list elements, in their published order."""

    names: tuple[str, ...]

    @property
    def struct(self) -> pa.StructType:
        return pa.struct([(name, pa.string()) for name in self.names])

    @property
    def list_type(self) -> pa.ListType:
        """The list column's type in the outcode files."""
        return pa.list_(self.struct)

    def text(self, element: Mapping[str, Any]) -> str:
        """One element's text, from its fields (as a reader gives them: a dict)."""
        return FIELD_SEPARATOR.join(element.get(name) or "" for name in self.names)

    def structs(self, texts: pa.Array) -> pa.StructArray:
        """Elements' structs from their texts (plain strings, no nulls)."""
        parts = pc.split_pattern(texts, FIELD_SEPARATOR)
        counts = pc.list_value_length(parts)
        wrong = pc.not_equal(counts, len(self.names))
        if len(texts) and pc.any(wrong).as_py():
            bad = texts.filter(wrong)[0].as_py()
            raise ElementTextError(
                f"an element holds {len(bad.split(FIELD_SEPARATOR))} fields, not "
                f"{len(self.names)} ({', '.join(self.names)}): {bad!r}"
            )
        values = [pc.list_element(parts, i) for i in range(len(self.names))]
        nulled = [pc.if_else(pc.equal(v, ""), pa.scalar(None, pa.string()), v) for v in values]
        return pa.StructArray.from_arrays(nulled, fields=list(self.struct))

    def texts(self, structs: pa.Array) -> pa.Array:
        """Elements' texts from their structs (fields plain or dictionary-encoded strings):
        :meth:`structs` undone."""
        values = [pc.fill_null(_plain(structs.field(name)), "") for name in self.names]
        return pc.binary_join_element_wise(*values, FIELD_SEPARATOR)

    def published_lists(self, lists: pa.Array | pa.ChunkedArray) -> pa.Array:
        """A list column of element texts (plain or dictionary-encoded strings) as lists of
        structs of plain strings: the values the outcode files hold."""
        lists = one_chunk(lists)
        values = pc.list_flatten(lists)
        if pa.types.is_dictionary(values.type):
            converted = self.structs(values.dictionary).take(values.indices)
        else:
            converted = self.structs(values)
        return pa.ListArray.from_arrays(offsets_from_zero(lists), converted)

    def text_lists(self, lists: pa.Array | pa.ChunkedArray) -> pa.Array:
        """A published list column (lists of structs) as lists of element texts."""
        lists = one_chunk(lists)
        return pa.ListArray.from_arrays(
            offsets_from_zero(lists), self.texts(pc.list_flatten(lists))
        )


def one_chunk(lists: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The column as one array (a chunked one's chunks combined, their dictionaries
    unified)."""
    if isinstance(lists, pa.ChunkedArray):
        return lists.combine_chunks() if lists.num_chunks != 1 else lists.chunk(0)
    return lists


def offsets_from_zero(lists: pa.ListArray) -> pa.Array:
    """The list array's offsets, from 0: its values flattened hold its own elements only."""
    offsets = lists.offsets
    return pc.subtract(offsets, offsets[0]) if len(offsets) and offsets[0].as_py() else offsets


def _plain(values: pa.Array) -> pa.Array:
    return values.cast(values.type.value_type) if pa.types.is_dictionary(values.type) else values
