"""What the Dagster UI shows of every table before it is first materialised: who owns it, its
columns, each described once, and which columns of which table each column is made from.

The address columns that every table from AddressBase to the published layers carries are
described here; an input's own columns beside its asset, a layer's list column in its
declaration (`Layer.ids_column_description`).
"""

from collections.abc import Iterable, Mapping, Sequence

import dagster as dg

OWNERS = ["team:databaker"]
"""Who answers for every asset of the project."""

COLUMN_SCHEMA = "dagster/column_schema"
COLUMN_LINEAGE = "dagster/column_lineage"
ROW_COUNT = "dagster/row_count"
PARTITION_ROW_COUNT = "dagster/partition_row_count"
"""Dagster's own metadata keys (its `TableMetadataSet`), which the UI shows in their places."""

UPRN = dg.TableColumn(
    "uprn", "string", description="The address's UPRN, in decimal without leading zeros."
)
ADDRESS = dg.TableColumn("address", "string", description="The single-line address.")
POSTCODE = dg.TableColumn(
    "postcode", "string", description="The postcode in its canonical form, `LS6 1AA`."
)
ADDRESSBASE_SOURCE = dg.TableColumn(
    "addressbase_source",
    "string",
    description="The AddressBase drop the row comes from: the drop's absolute location.",
)
ADDRESS_TABLE_COLUMNS = (UPRN, ADDRESS, POSTCODE, ADDRESSBASE_SOURCE)
"""The columns every layer carries from the partitioned AddressBase, in the order published."""

OUTCODE = dg.TableColumn(
    "outcode", "string", description="The part of the postcode before the space (`LS6`)."
)
FIRST_LETTER = dg.TableColumn(
    "first_letter",
    "string",
    description="The postcode's first letter: the letter partition, a `first_letter=<L>/` "
    "folder rather than a column of the files.",
)


def table_schema(columns: Iterable[dg.TableColumn]) -> dict[str, dg.TableSchema]:
    """Definition metadata naming and describing a table's columns."""
    return {COLUMN_SCHEMA: dg.TableSchema(columns=list(columns))}


def column_lineage(
    made_from: Mapping[str, Sequence[tuple[dg.AssetKey, str]]],
) -> dict[str, dg.TableColumnLineage]:
    """Definition metadata saying which columns (asset, column) each column is made from."""
    return {
        COLUMN_LINEAGE: dg.TableColumnLineage(
            deps_by_column={
                column: [dg.TableColumnDep(asset_key=key, column_name=name) for key, name in deps]
                for column, deps in made_from.items()
            }
        )
    }


def copied_from(
    key: dg.AssetKey, columns: Iterable[str]
) -> dict[str, list[tuple[dg.AssetKey, str]]]:
    """Each of ``columns`` made from the column of the same name in ``key``."""
    return {column: [(key, column)] for column in columns}
