"""What a layer is: the one declaration the shared machinery builds everything else from.

A layer answers one question per address ("which ballots are here?", "is this ward being
redrawn?") and is published as one parquet file per outcode, a row per address with a list
column of answers. What differs from layer to layer is small, and is all a :class:`Layer`
says: its own input, how it joins that input to the partitioned AddressBase and aggregates
the answers into its list column, which IDs the list names, and its guard rails. From it,
:func:`databaker.layers.build.layer_definitions` makes the joined table and its checks, the
version (manifest, diff, guard rails), the published layer, the jobs, the sensor on the input
and the nightly schedule; the command line, ``databaker status`` and the reader take the layer
by its name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import dagster as dg
import pyarrow as pa

from databaker.catalog import ADDRESS_TABLE_COLUMNS
from databaker.layers.areas import Areas
from databaker.layers.element_fields import ElementFields
from databaker.layers.exported import DatabaseExport
from databaker.layers.guard_rails import LayerConfig, Rail
from databaker.layers.outcode_files import ElementIds
from databaker.resources import LayerStore, QueryEngine, Table, TableRef
from databaker.resources.input_locations import InputLocations

ADDRESS_COLUMNS = tuple(column.name for column in ADDRESS_TABLE_COLUMNS)
"""The columns every layer carries from the partitioned AddressBase, in the order published."""
LAYER_SUFFIX = "_parquet"
"""A layer named ``current_elections`` is published under ``current_elections_parquet/``."""


@dataclass(frozen=True)
class JoinRun:
    """What a layer's join is given: where to write, and for which letters.

    The join writes ``first_letter=<L>/`` folders of parquet files under ``output`` (a URI the
    engine can write to), one row per address of those letters with its ``uprn`` and the
    layer's list column (the version takes the other ``ADDRESS_COLUMNS`` from the partitioned
    AddressBase: :mod:`databaker.layers.joined_addresses`). ``scratch`` is a store prefix
    private to the run for intermediate tables; it is emptied when the join ends.
    """

    engine: QueryEngine
    store: LayerStore
    letters: list[str]
    output: str
    scratch: str
    tables: Mapping[str, TableRef] = field(default_factory=dict)
    """Tables read from elsewhere than their place in the store, by name: a rebuild that joins
    only some addresses of a letter gives them as the partitioned AddressBase (on an engine
    that does not share table names with other runs: ``QueryEngine.shares_table_names``)."""

    def table(self, table: Table) -> TableRef:
        """One of the project's tables as a query parameter."""
        return self.tables.get(table.name) or table.in_store(self.store)

    def scratch_table(self, table: Table) -> TableRef:
        """An intermediate table kept under ``scratch`` for the length of the join."""
        return TableRef(table.name, self.store.uri(self.scratch + table.prefix), table.declaration)

    def scratch_output(self, table: Table) -> str:
        """Where a query writes the intermediate ``table`` (see :meth:`scratch_table`)."""
        return self.store.uri_for_writing(self.scratch + table.prefix)


@dataclass(frozen=True)
class LayerInput:
    """A layer's own input: the asset that reads it into a table, and how its version is known.

    A change of the input's content version rebuilds the layer (the input's sensor), and an
    unchanged one lets the coverage guard rail hold the layer steady.
    """

    asset: dg.AssetsDefinition
    table: Table
    """The table the asset writes, which the layer's join reads."""
    label: str
    """What the input is called in texts: ``ballots export``."""
    option: str
    """Its name on the command line (``--ballots``) and as a keyword of ``bake``."""
    version_key: str
    """The metadata key of its content version, on the input asset and the layer's assets."""
    version_of: Callable[[InputLocations], str]
    """The deployment's input's content version now (what the sensor compares)."""
    ids_named: Callable[[LayerStore, Mapping[str, Any]], set[str]]
    """Every ID the input names, read from its table and its asset's latest metadata, including
    IDs of rows it rejected: a broken row must not pass for a withdrawn ID."""
    sensor_name: str
    rebuild_job_name: str
    summary: Callable[[Mapping[str, Any]], str]
    """One line of a bake's summary from the input asset's metadata (``ballots: 12 in ...``)."""
    as_of_key: str | None = None
    """For an input read as of a date (what is current on it), the metadata key of that date
    on the input asset, whose config takes it as ``on`` (``databaker bake --on``); kept in
    each version's manifest. ``None``: the input does not depend on the date."""
    areas: Callable[[LayerStore], Areas] | None = None
    """The input's areas, each piece with the ID it counts for (read from its table), which
    the bake's coverage map outlines; ``None``: the map shows addresses only."""
    ids_from: Sequence[str] = ()
    """The columns of the input's table that the layer's list column is made from (with each
    address's location), as the UI's column lineage shows them."""
    contained_by: str | None = None
    """The geometry column of the input's table, when an address's list depends on nothing
    but the rows (their ``ids_from`` columns) whose geometry contains the address, and the join
    reads nothing of an address but its UPRN and location to make it: a rebuild then keeps the
    letters with no address in the box of a row that changed
    (:mod:`databaker.layers.unchanged_letters`) and joins again only the addresses in those
    boxes (:mod:`databaker.layers.rejoined_addresses`). ``None``: every rebuild joins every
    letter."""
    export: DatabaseExport | None = None
    """How the input is exported from EveryElection's database, when a deployment names that
    database as its location; ``None``: the input is only ever a delivered file."""
    asset_after: Callable[[Sequence[dg.AssetKey]], dg.AssetsDefinition] | None = None
    """The input asset made again with upstream assets (the export's), which it runs after:
    a dependency must be declared where the asset is defined for a run to order its steps."""

    @property
    def asset_name(self) -> str:
        return self.asset.key.to_user_string()


@dataclass(frozen=True, eq=False)
class Layer:
    """One layer: its name, list column, input, join and guard rails (see the module doc)."""

    name: str
    description: str
    ids_column: str
    id_label: str
    """What one ID of the list is called in texts: ``ballot``."""
    joined: Table
    """The joined table: every address with the list column, split by first letter."""
    join: Callable[[JoinRun], None]
    config: type[LayerConfig]
    rails: Sequence[Rail]
    input: LayerInput | None = None
    element_ids: ElementIds | None = None
    """The ID each distinct element of the list column counts for, in the manifest's
    ``addresses_per_id`` and the diff's per-ID counts; the element itself when ``None``."""
    element_fields: ElementFields | None = None
    """The fields of the list's elements when they are records, published as structs
    (:mod:`databaker.layers.element_fields`); ``None``: the elements are strings. The join
    writes each element as its text, and ``element_ids`` is given texts."""
    element_kinds: ElementIds | None = None
    """The kind each distinct element is of (a council, a constituency; null for none), for
    rails that count the addresses losing every element of a kind
    (``LayerDiff.addresses_losing_kind``); ``None``: elements have no kinds."""
    element_json: Callable[[Any], Any] | None = None
    """How ``lookup --json`` shows an element (parsed, for a layer of JSON elements)."""
    element_text: Callable[[Any], str] | None = None
    """How ``lookup`` shows an element in its table (a dict, for a layer of records)."""
    nothing_here: str = ""
    """What ``lookup`` says of a postcode whose addresses have empty lists."""
    ids_column_description: str = ""
    """What the list column holds, as the UI describes the column (``description`` if empty)."""
    freshness: timedelta = timedelta(hours=26)
    """How old the published layer may get: a nightly rebuild plus two hours' grace."""
    nightly_cron: str | None = "0 1 * * *"

    @property
    def prefix(self) -> str:
        """Where the layer is published in the store (``current_elections_parquet/``)."""
        return f"{self.name}{LAYER_SUFFIX}/"

    @property
    def columns(self) -> list[str]:
        """The columns of a non-empty outcode file, in order."""
        return [*ADDRESS_COLUMNS, self.ids_column, "outcode"]

    @property
    def version_asset_name(self) -> str:
        return f"{self.name}_version"

    @property
    def published_asset_name(self) -> str:
        return f"{self.name}{LAYER_SUFFIX}"

    @property
    def job_name(self) -> str:
        return f"{self.name}_layer"

    @property
    def rebuild_job_name(self) -> str:
        """The job that rebuilds the layer on the AddressBase already partitioned."""
        return self.input.rebuild_job_name if self.input else f"{self.name}_from_addressbase"

    @property
    def input_version_key(self) -> str:
        return self.input.version_key if self.input else "input_version"

    def __post_init__(self) -> None:
        if not self.nothing_here:
            object.__setattr__(self, "nothing_here", f"no {self.id_label}s here")
        if not self.ids_column_description:
            object.__setattr__(self, "ids_column_description", self.description)

    def distinct_ids(self, elements: Sequence[Any]) -> list[str]:
        """The sorted, distinct IDs that ``elements`` (as a reader gives them) count for."""
        if self.element_fields is not None:
            elements = [self.element_fields.text(element) for element in elements]
        distinct = sorted(set(elements))
        if self.element_ids is not None and distinct:
            distinct = self.element_ids(pa.array(distinct, pa.string())).to_pylist()
        return sorted(set(distinct))

    def element_as_json(self, element: Any) -> Any:
        return self.element_json(element) if self.element_json else element

    def element_as_text(self, element: Any) -> str:
        return self.element_text(element) if self.element_text else element
