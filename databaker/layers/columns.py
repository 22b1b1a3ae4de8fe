"""A layer's tables as the UI shows them before their first bake: their columns, described
(the address columns once, in `databaker.catalog`; the list column in the layer's
declaration), and which column of which table each one is made from."""

from typing import Any

import dagster as dg

from databaker.catalog import (
    ADDRESS_TABLE_COLUMNS,
    FIRST_LETTER,
    column_lineage,
    copied_from,
    table_schema,
)
from databaker.layers.layer import Layer

ADDRESSBASE_PARTITIONED = dg.AssetKey("addressbase_partitioned")
LOCATION = ("longitude", "latitude")
"""The AddressBase columns that place an address in or out of an area."""
ADDRESS_NAMES = [column.name for column in ADDRESS_TABLE_COLUMNS]
UPRN = next(column for column in ADDRESS_TABLE_COLUMNS if column.name == "uprn")

OUTCODE_OF_FILE = dg.TableColumn(
    "outcode",
    "string",
    description="The file's outcode: the part of every row's postcode before the space.",
)


def list_column(layer: Layer, *, published: bool = False) -> dg.TableColumn:
    """The layer's list column; ``published``: as the outcode files hold it (a list of
    records as structs, where the joined table holds their texts)."""
    kind = "list<string>"
    if published and layer.element_fields is not None:
        kind = str(layer.element_fields.list_type)
    return dg.TableColumn(layer.ids_column, kind, description=layer.ids_column_description)


def joined_metadata(layer: Layer) -> dict[str, Any]:
    """The joined table: each address's UPRN and the list column, made from the input's
    columns and the address's location (the other address columns stay in the partitioned
    AddressBase: :mod:`databaker.layers.joined_addresses`)."""
    made_from = copied_from(ADDRESSBASE_PARTITIONED, [UPRN.name, FIRST_LETTER.name])
    from_input = (
        [(layer.input.asset.key, name) for name in layer.input.ids_from] if layer.input else []
    )
    made_from[layer.ids_column] = [
        *from_input,
        *((ADDRESSBASE_PARTITIONED, name) for name in LOCATION),
    ]
    return {
        **table_schema([UPRN, list_column(layer), FIRST_LETTER]),
        **column_lineage(made_from),
    }


def outcode_files_metadata(
    layer: Layer,
    made_from: dg.AssetKey,
    *,
    addresses_from: dg.AssetKey | None = None,
    outcode_from: str = "postcode",
) -> dict[str, Any]:
    """A layer's outcode files (a version, the published layer), whose columns are
    ``layer.columns``: the UPRN and the list copied from the table ``made_from``, the other
    address columns from ``addresses_from`` (``made_from`` by default), the outcode from its
    column ``outcode_from``. A version's are made from the joined table and the partitioned
    AddressBase, whose postcode gives the outcode; the published layer's are a version's."""
    addresses_from = addresses_from or made_from
    lineage = copied_from(made_from, [UPRN.name, layer.ids_column])
    lineage.update(copied_from(addresses_from, [n for n in ADDRESS_NAMES if n != UPRN.name]))
    lineage[OUTCODE_OF_FILE.name] = [(addresses_from, outcode_from)]
    columns = [*ADDRESS_TABLE_COLUMNS, list_column(layer, published=True), OUTCODE_OF_FILE]
    return {**table_schema(columns), **column_lineage(lineage)}
