"""Letters of a joined table rebuilt by joining again only the addresses a change can reach.

When a rebuild cannot keep a letter (:mod:`databaker.layers.unchanged_letters`) because some of
its addresses lie in the box of an input row that was added or removed, the letter's other
addresses still have the lists the letter holds: their lists depend only on the rows whose
geometry contains them, and none of those changed. So the layer's own join is run on just the
letter's addresses in those boxes (given to it as the partitioned AddressBase), and their new
lists replace the old ones in the letter's rows. After a ballots export changed all over the
country, that joins about one address in fifty.

Each letter rebuilt so says in its record which outcodes hold a row whose list changed
(:class:`~databaker.staging.RowChanges`), so that the version derives only those outcodes'
files again (:mod:`databaker.layers.outcode_files`), and keeps the rows whose lists changed,
with their lists before and after, from which the version's diff counts the change
(:mod:`databaker.layers.changed_lists`). A letter most of whose addresses lie in
changed boxes, or whose rows do not hold the addresses joined again, is joined whole.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.concurrency import WORKERS, threads_for
from databaker.layers.changed_lists import (
    CHANGED_LISTS,
    changed_lists_file,
    lists_equal,
    replaced_lists,
)
from databaker.layers.joined_addresses import read_joined
from databaker.layers.layer import JoinRun, Layer
from databaker.layers.located import EMPTY_LOCATED, LOCATED_COLUMNS, REJOINED, KeptLocations
from databaker.layers.outcode_files import outcodes_of
from databaker.layers.unchanged_letters import (
    BoxGrid,
    Rejoinable,
    boxes_of,
    group_extent,
    table_rows,
)
from databaker.resources import LayerStore, QueryEngine, Table, TableRef
from databaker.resources.point_in_area import joined_parquet
from databaker.staging import RowChanges, is_data_file, partition_prefix, partition_record

MOST_OF_A_LETTER = 0.5
"""A letter with more than this share of its addresses in changed boxes is joined whole:
joining every address costs less than joining most of them and merging the rest."""
DATA_FILE = "data_0.parquet"
JOINED_ON = ("uprn", "longitude", "latitude")
"""What the join is given of each address joined again: a layer whose join is local to each
address (``LayerInput.contained_by``) reads nothing else of it to make its list, and the other
columns of its rows are the letter's."""


@dataclass(frozen=True)
class Rejoined:
    """What :func:`rejoin_changed_addresses` did."""

    changes: dict[str, RowChanges]
    """The letters it staged, each with the outcodes whose rows changed; the others are left
    to be joined whole."""
    addresses: int
    """Addresses joined again, in the letters staged."""
    of: int
    """All the addresses of those letters."""


def rejoin_changed_addresses(
    layer: Layer,
    engine: QueryEngine,
    store: LayerStore,
    *,
    rejoinable: Mapping[str, Rejoinable],
    output: str,
    scratch: str,
    workers: int = WORKERS,
) -> Rejoined:
    """Stage under ``output`` (``first_letter=<L>/`` folders) each letter of ``rejoinable``
    with its addresses in changed boxes joined again by ``layer.join`` on ``engine``, and the
    rows of its others as the joined table holds them. ``scratch`` is a store prefix for the
    addresses joined and their rows, emptied by the caller."""
    points = f"{scratch}points/"
    rejoined = f"{scratch}joined/"
    letters = sorted(rejoinable)

    def find(letter: str) -> _Found | None:
        found = _addresses_in(store, letter, rejoinable[letter].changed)
        if found is not None and found.candidates.num_rows:
            key = f"{partition_prefix(points, letter)}{DATA_FILE}"
            store.write_bytes(key, _parquet_bytes(found.candidates, []))
        return found

    in_flight = store.in_flight()
    finding = threads_for(in_flight, len(letters), workers=workers, most=in_flight)
    with ThreadPoolExecutor(finding) as pool:
        found = dict(zip(letters, pool.map(find, letters), strict=True))
    staged = {letter: each for letter, each in found.items() if each is not None}
    _located(staged).write(store, layer.joined.prefix + REJOINED)
    joined = [letter for letter, each in staged.items() if each.candidates.num_rows]
    if joined:
        addressbase = ADDRESSBASE_PARTITIONED_TABLE
        tables = {
            addressbase.name: TableRef(addressbase.name, store.uri(points), addressbase.declaration)
        }
        if layer.input is not None and layer.input.contained_by is not None:
            near = _rows_near(
                store,
                layer.input.table,
                layer.input.contained_by,
                [rejoinable[letter].changed for letter in joined],
                f"{scratch}near/",
            )
            tables[layer.input.table.name] = near
        layer.join(
            JoinRun(
                engine=engine,
                store=store,
                letters=joined,
                output=store.uri_for_writing(rejoined),
                scratch=f"{scratch}join/",
                tables=tables,
            )
        )

    def merge(letter: str) -> RowChanges | None:
        return _merge(
            store,
            letter,
            joined=layer.joined.prefix,
            rejoined=rejoined,
            output=output,
            ids_column=layer.ids_column,
            since=rejoinable[letter].record.token,
            expected=staged[letter].positions,
            postcodes=staged[letter].candidates.select(["uprn", "postcode"]),
        )

    with ThreadPoolExecutor(threads_for(in_flight, len(staged), workers=workers)) as pool:
        merged = dict(zip(staged, pool.map(merge, staged), strict=True))
    changes = {letter: change for letter, change in merged.items() if change is not None}
    return Rejoined(
        changes=changes,
        addresses=sum(staged[letter].candidates.num_rows for letter in changes),
        of=sum(staged[letter].total for letter in changes),
    )


@dataclass(frozen=True)
class _Found:
    """An AddressBase letter's addresses in changed boxes."""

    candidates: pa.Table
    positions: np.ndarray
    """Where they are among the letter's rows, its files read in turn."""
    total: int
    """The letter's rows."""
    token: str | None
    """The token of the AddressBase letter's record, read before its rows (None: no record)."""


def _located(found: Mapping[str, _Found]) -> KeptLocations:
    """Where the addresses found are, for the version's map of changes: every address whose
    list changes is among them, unless its letter is joined whole."""
    tables = [
        each.candidates.select(LOCATED_COLUMNS.names[:3])
        .append_column(
            "letter", pa.repeat(pa.scalar(letter, pa.string()), each.candidates.num_rows)
        )
        .cast(LOCATED_COLUMNS)
        for letter, each in found.items()
        if each.token is not None
    ]
    tokens = {letter: each.token for letter, each in found.items() if each.token is not None}
    return KeptLocations(pa.concat_tables([EMPTY_LOCATED, *tables]), tokens)


def _rows_near(
    store: LayerStore, table: Table, geometry: str, grids: Sequence[BoxGrid], prefix: str
) -> TableRef:
    """The input ``table`` as its rows whose ``geometry``'s box meets a cell of one of the
    ``grids``, written under ``prefix``: the only rows whose geometry can contain an address
    joined again, each of which lies in such a cell. Against 820 changed ballots' pieces of
    19,944 (the rebake benchmark), 5,643 are near; the join's polygons are a quarter as many."""
    rows = table_rows(store, table.prefix)
    if rows is None:
        return table.in_store(store)
    boxes = boxes_of(rows[geometry])
    near = np.zeros(len(boxes), np.bool_)
    for grid in {id(grid): grid for grid in grids}.values():
        near |= grid.meets(boxes)
    sink = io.BytesIO()
    pq.write_table(rows.filter(pa.array(near)), sink, compression="zstd")
    store.write_bytes(f"{prefix}{DATA_FILE}", sink.getvalue())
    return TableRef(table.name, store.uri(prefix), table.declaration)


def _addresses_in(store: LayerStore, letter: str, changed: BoxGrid) -> _Found | None:
    """The AddressBase letter's addresses whose location ``changed`` covers; ``None`` when
    most of them are covered. Only their UPRNs and locations are read, what the join needs of
    them (see :data:`JOINED_ON`), and their postcodes, which name the outcodes whose rows
    change; the other columns are null. A row group at a time: one whose locations'
    statistics put it outside every changed cell is not read, and the UPRNs and postcodes of
    one with no address in a changed cell are not (in the rebake benchmark, 158 and 31 of 453
    groups)."""
    record = partition_record(store, ADDRESSBASE_PARTITIONED_TABLE.prefix, letter)
    schema = None
    parts = []
    positions = []
    total = 0
    for key in store.list_keys(partition_prefix(ADDRESSBASE_PARTITIONED_TABLE.prefix, letter)):
        if is_data_file(key):
            with store.open_input(key) as source:
                footer = pq.ParquetFile(source)
                schema = footer.schema_arrow
                parquet = pq.ParquetFile(
                    source, metadata=footer.metadata, read_dictionary=["postcode"], pre_buffer=True
                )
                for group in range(parquet.num_row_groups):
                    hits, at = _group_hits(parquet, group, changed)
                    positions.append(at + total)
                    total += parquet.metadata.row_group(group).num_rows
                    if len(at):
                        parts.append(_with_schema(hits, schema))
    if parts:
        found = pa.concat_tables(parts, promote_options="permissive")
    else:
        found = schema.empty_table() if schema is not None else pa.table({})
    if found.num_rows > MOST_OF_A_LETTER * total:
        return None
    return _Found(
        found,
        np.concatenate(positions) if positions else np.zeros(0, np.int64),
        total,
        record.token if record else None,
    )


def _group_hits(
    parquet: pq.ParquetFile, group: int, changed: BoxGrid
) -> tuple[pa.Table, np.ndarray]:
    """The row group's addresses in changed cells (their ``JOINED_ON`` columns and postcode)
    and their positions in the group."""
    extent = group_extent(parquet.metadata.row_group(group))
    if extent is not None and not changed.covers_box(*extent):
        return pa.table({}), np.zeros(0, np.int64)
    located = parquet.read_row_group(group, columns=["longitude", "latitude"])
    x = located["longitude"].to_numpy(zero_copy_only=False)
    y = located["latitude"].to_numpy(zero_copy_only=False)
    at = np.flatnonzero(changed.covers(x, y))
    if not len(at):
        return pa.table({}), at
    taken = pa.array(at)
    named = parquet.read_row_group(group, columns=["uprn", "postcode"]).take(taken)
    located = located.take(taken)
    return named.append_column("longitude", located["longitude"]).append_column(
        "latitude", located["latitude"]
    ), at


def _with_schema(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """``rows`` with every column of ``schema``, null where they have none."""
    return pa.table(
        {
            field.name: rows[field.name].cast(field.type)
            if field.name in rows.column_names
            else pa.nulls(rows.num_rows, field.type)
            for field in schema
        },
        schema=schema,
    )


def _merge(
    store: LayerStore,
    letter: str,
    *,
    joined: str,
    rejoined: str,
    output: str,
    ids_column: str,
    since: str,
    expected: np.ndarray,
    postcodes: pa.Table,
) -> RowChanges | None:
    """Stage the letter of the ``joined`` table with the lists of the rows joined again
    (``rejoined``); what changed since ``since``. ``None`` when the rows joined again are not
    the letter's addresses at ``expected`` (their positions in the AddressBase letter), each
    once, in whatever order: the letter is joined whole instead. ``postcodes`` gives the
    ``postcode`` of each ``uprn`` joined again (the joined table holds none)."""
    earlier_keys = _data_files(store, partition_prefix(joined, letter))
    earlier = _read(store, earlier_keys, ids_column)
    again = _read(store, _data_files(store, partition_prefix(rejoined, letter)), ids_column)
    staged = partition_prefix(output, letter)
    if earlier is None or (again.num_rows if again is not None else 0) != len(expected):
        return None
    if again is None:
        store.copy_all([(key, staged + key.rpartition("/")[2]) for key in earlier_keys])
        return RowChanges(since, [], rows=0)
    placed = _placed(earlier["uprn"], again["uprn"], expected)
    if placed is None:
        return None
    at, order = placed
    old_ids = earlier[ids_column].combine_chunks()
    new_ids = again[ids_column].combine_chunks()
    new_ids = (new_ids if order is None else new_ids.take(pa.array(order))).cast(old_ids.type)
    changed = at[~lists_equal(old_ids.take(at), new_ids)]
    if not len(changed):
        store.copy_all([(key, staged + key.rpartition("/")[2]) for key in earlier_keys])
        return RowChanges(since, [], rows=0)
    uprns = earlier["uprn"].take(changed)
    where = pc.index_in(uprns, value_set=postcodes["uprn"])
    changed_postcodes = postcodes["postcode"].take(where)
    outcodes = pc.unique(outcodes_of(changed_postcodes)).to_pylist()
    ids = replaced_lists(old_ids, at, new_ids)
    rows = earlier.set_column(earlier.schema.get_field_index(ids_column), ids_column, ids)
    store.write_bytes(staged + DATA_FILE, _parquet_bytes(rows, [ids_column]))
    log = pa.table(
        {
            "uprn": uprns,
            "postcode": changed_postcodes,
            "before": old_ids.take(changed),
            "after": ids.take(changed),
        }
    )
    store.write_bytes(staged + CHANGED_LISTS, changed_lists_file(log))
    return RowChanges(since, sorted(outcodes), rows=len(changed))


def _placed(
    letter: pa.ChunkedArray, again: pa.ChunkedArray, expected: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Where the rows joined again (UPRNs ``again``) are among the letter's (``letter``),
    sorted, and the order that puts ``again`` there (None: as it is); None when they are not
    rows of the letter, each once.

    A joined letter keeps the rows of the AddressBase letter in their order, and a join keeps
    the order of the addresses it is given, so the rows are first looked for where they were
    read (``expected``); only when they are not all there are they looked up by UPRN, in the
    few rows joined again rather than the letter's many."""
    if not len(expected) or (
        expected[-1] < len(letter)
        and pc.all(pc.equal(letter.take(pa.array(expected)), again)).as_py() is True
    ):
        return expected, None
    found = pc.index_in(letter, value_set=again).combine_chunks()
    at = np.flatnonzero(found.is_valid().to_numpy(zero_copy_only=False))
    order = found.drop_null().to_numpy()
    if len(at) != len(again) or len(np.unique(order)) != len(again):
        return None
    return at, order


def _data_files(store: LayerStore, prefix: str) -> list[str]:
    return [key for key in store.list_keys(prefix) if is_data_file(key)]


def _read(store: LayerStore, keys: list[str], ids_column: str) -> pa.Table | None:
    return read_joined(store, keys, lists=[ids_column]) if keys else None


def _parquet_bytes(rows: pa.Table, lists: list[str]) -> bytes:
    """A table read whole by the next step, written as the joins write theirs."""
    sink = io.BytesIO()
    pq.write_table(rows, sink, **joined_parquet(rows.schema, lists))
    return sink.getvalue()
