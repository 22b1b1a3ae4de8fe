"""The Parquet leaf columns of Arrow columns, as pyarrow's ``use_dictionary`` and
``read_dictionary`` name them.

Both options match leaf paths, not top-level names: given ``ballot_ids`` for a
``list<string>`` column they leave its strings alone, and the column is written plainly (and
read back as strings, one allocation each). Its leaf, ``ballot_ids.list.element``, is what
turns dictionary encoding on. A layer's lists hold a few thousand distinct IDs over millions of
rows, so dictionary-encoded they are about an eighth of the bytes and several times quicker to
read and to gather.
"""

from collections.abc import Iterable, Iterator

import pyarrow as pa


def string_leaves(schema: pa.Schema, columns: Iterable[str]) -> list[str]:
    """The paths of the string (or binary) leaves of ``columns`` in ``schema``, through lists
    (``.list.element``) and structs (``.<field>``); columns not in ``schema`` are left out."""
    names = set(schema.names)
    return [
        path
        for column in columns
        if column in names
        for path in _string_leaves(column, schema.field(column).type)
    ]


def _string_leaves(path: str, kind: pa.DataType) -> Iterator[str]:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_binary(kind):
        yield path
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        yield from _string_leaves(f"{path}.list.element", kind.value_type)
    elif pa.types.is_struct(kind):
        for field in kind:
            yield from _string_leaves(f"{path}.{field.name}", field.type)


def decoded(kind: pa.DataType) -> pa.DataType:
    """``kind`` with its dictionary-encoded parts as their plain values, its lists' and
    structs' fields otherwise as they are: the type a column read without dictionaries has."""
    if pa.types.is_dictionary(kind):
        return decoded(kind.value_type)
    if pa.types.is_list(kind):
        return pa.list_(kind.value_field.with_type(decoded(kind.value_type)))
    if pa.types.is_large_list(kind):
        return pa.large_list(kind.value_field.with_type(decoded(kind.value_type)))
    if pa.types.is_struct(kind):
        return pa.struct([field.with_type(decoded(field.type)) for field in kind])
    return kind
