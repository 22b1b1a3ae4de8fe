"""Input tables of areas: an export read line by line into one parquet table, every line it
does not keep reported with its file, line and reason.

The ballots, boundary-reviews and organisations exports are read alike: the asset belongs to
its layer's group and pool; its export is the configured one or the deployment's, taken from
the data root when that is EveryElection's database; its lines are cut by
:mod:`databaker.line_reading`; a query writes the kept rows and the report into a staging area,
which :func:`databaker.rejections.publish_checked_input` publishes. The SQL rules a line and its
area follow are shared as well (``area_rules.duckdb.sql``). A reader declares an
:class:`InputTable` and states only what is its own: its columns, its export's layout and
header, its fields' faults, its counts and its metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from databaker.catalog import OWNERS, ROW_COUNT, table_schema
from databaker.concurrency import layer_pool
from databaker.csv_records import record_pattern
from databaker.layers.exported import DatabaseExport
from databaker.line_reading import InputUnreadable, run_on_lines
from databaker.rejections import REJECTED_ROWS, VALID_ROWS, RejectionLimit, publish_checked_input
from databaker.resources import DuckDBQueryEngine, LayerStore, SqlQuery, Table
from databaker.resources.every_election import is_every_election_url
from databaker.resources.input_locations import InputLocations
from databaker.staging import staging_area

MAX_LINE_BYTES = 64 << 20
"""The longest line read as a record, in bytes: a line holds a whole geometry, which may be
large; a longer line is a rejected row (``line_fault`` in ``area_rules.duckdb.sql``)."""

ROWS_PER_BATCH = 512
"""The lines DuckDB takes at a time from those Python hands it: the geometries are parsed by
every thread, a batch each, however few lines the export has (a table of 20,000 lines is one
row group, which one thread alone reads)."""

Outputs = dict[str, str]
"""Where a reading query writes: ``output`` (the kept rows, parquet) and ``rejects_output``
(the report of the lines not kept, CSV), both in the run's staging area."""


@dataclass(frozen=True)
class PublishedTable:
    """An input table as published: the reading query's ``summary`` row, the rejected rows
    ``allowed`` in an export of its size, and where the ``report`` and the table are."""

    summary: Mapping[str, Any]
    allowed: int
    report: str
    path: str

    def metadata(
        self,
        head: Mapping[str, Any],
        counts: Mapping[str, Any],
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The materialisation's metadata, in this order: ``head`` (the export's location and
        version, what the table holds), the kept rows, ``counts`` (the reader's other counts:
        its repaired geometries, the lines it skipped), the rejected rows and their allowance,
        ``details`` (lists an operator or a layer's guard rails read), the report and the
        table."""
        rows = self.summary["rows"]
        return {
            **head,
            ROW_COUNT: rows,
            "rows": rows,
            **counts,
            "rejected_rows": self.summary["rejected_rows"],
            "rejected_rows_allowed": self.allowed,
            **(details or {}),
            "rejected_report": dg.MetadataValue.path(self.report),
            "path": dg.MetadataValue.path(self.path),
        }


@dataclass(frozen=True)
class InputTable:
    """An input table of areas: the asset of the table's name writes ``table`` as one parquet
    file (:attr:`target`), with ``columns``, for the layer ``layer``; it reads the export that
    messages call ``what`` (``"ballots export"``), which ``every_election`` takes from
    EveryElection's database when the deployment names that database as its location."""

    table: Table
    layer: str
    columns: Sequence[dg.TableColumn]
    what: str
    every_election: DatabaseExport

    @property
    def name(self) -> str:
        """The asset's name, the table's."""
        return self.table.name

    @property
    def target(self) -> str:
        """The table's file in the layer store."""
        return f"{self.table.prefix}{self.table.name}.parquet"

    def asset(
        self, compute: Callable[..., dg.MaterializeResult], upstream: Sequence[dg.AssetKey] = ()
    ) -> dg.AssetsDefinition:
        """The asset computed by ``compute`` (whose signature names its config and resources and
        whose docstring describes it), in its layer's group and pool, declaring the table's
        columns; ``upstream``: the asset that writes the export it reads, when that is taken
        from EveryElection's database (:mod:`databaker.layers.exported`)."""
        return dg.asset(
            name=self.name,
            deps=upstream,
            group_name=self.layer,
            kinds={"duckdb", "csv", "parquet"},
            pool=layer_pool(self.layer),
            owners=OWNERS,
            metadata=table_schema(self.columns),
        )(compute)

    def source(
        self,
        configured: str | None,
        store: LayerStore,
        inputs: InputLocations,
        *,
        required: bool = True,
    ) -> str:
        """The export to read: ``configured`` (the asset's config), else the deployment's; when
        that is EveryElection's database, the latest export of it in the data root. With
        ``required``, an empty location is refused as no export configured; without, it is
        passed on as it is (the ballots export, which a deployment must name)."""
        source = configured or self.every_election.configured(inputs)
        if required and not source:
            raise dg.Failure(f"no {self.what} is configured")
        if is_every_election_url(source):
            source = self.every_election.location_read(store, source, inputs)
        return source

    def lines(
        self,
        reader: DuckDBQueryEngine,
        query: SqlQuery,
        params: Mapping[str, Any],
        *,
        files: list[str],
        table: str,
    ) -> pa.Table:
        """Run ``query`` on the lines of ``files``, the table ``table`` of
        :func:`databaker.line_reading.run_on_lines` (lines longer than ``MAX_LINE_BYTES`` kept
        as their start, to be rejected); return its last statement's rows. A file that cannot
        be read to its end refuses the export."""
        try:
            return run_on_lines(
                reader, query, params, files=files, table=table, max_line_bytes=MAX_LINE_BYTES
            )
        except InputUnreadable as error:
            raise dg.Failure(f"{self.what} refused: {error}") from None

    def fields(
        self,
        reader: DuckDBQueryEngine,
        query: SqlQuery,
        export: str,
        header: Header,
        *,
        table: str,
    ) -> pa.Table:
        """The lines of the one-file export ``export``, cut into their fields by ``query`` (which
        takes ``$record_pattern``, the RFC 4180 pattern of as many fields as ``header`` names,
        and reads the lines as ``table``), once line 1 is found to be a header it accepts."""
        params = {"record_pattern": record_pattern(len(header.fields))}
        fields = self.lines(reader, query, params, files=[export], table=table)
        header.check(export, fields)
        return fields

    def publish(
        self,
        context: dg.AssetExecutionContext,
        store: LayerStore,
        limit: RejectionLimit,
        location: str,
        read: Callable[[Outputs], Mapping[str, Any]],
    ) -> PublishedTable:
        """Read the export at ``location`` into the table: ``read`` runs the reading query with
        the :data:`Outputs` it is given and returns its summary row, which counts the lines it
        read (``rows_read``: kept, skipped and rejected), kept (``rows``) and rejected
        (``rejected_rows``), and lists the ``first_rejected``. The report is published
        whatever happens; the table only when the rejected rows are within ``limit``, else the
        asset fails naming them."""
        with staging_area(store, context) as staging:
            summary = read(
                {
                    "output": store.uri_for_writing(staging + VALID_ROWS),
                    "rejects_output": store.uri_for_writing(staging + REJECTED_ROWS),
                }
            )
            report = publish_checked_input(
                store,
                staging,
                asset_name=self.name,
                what=f"{self.what} {location}",
                summary=summary,
                rows=summary["rows_read"],
                limit=limit,
                target=self.target,
            )
        allowed = limit.allowed(summary["rows_read"])
        return PublishedTable(summary, allowed, report, store.uri(self.target))

    def publish_query(
        self,
        context: dg.AssetExecutionContext,
        store: LayerStore,
        limit: RejectionLimit,
        location: str,
        reader: DuckDBQueryEngine,
        query: SqlQuery,
        params: Mapping[str, Any],
        tables: Mapping[str, pa.Table],
    ) -> PublishedTable:
        """:meth:`publish`, the reading query being ``query`` run on ``params`` and ``tables``,
        which it reads by their names, in batches of ``ROWS_PER_BATCH`` that its threads
        share."""

        def read(outputs: Outputs) -> dict[str, Any]:
            streams = {name: rows.to_reader(ROWS_PER_BATCH) for name, rows in tables.items()}
            summary = reader.run_sql(query, {**params, **outputs}, streams=streams)
            return summary.to_pylist()[0]

        return self.publish(context, store, limit, location, read)


@dataclass(frozen=True)
class Header:
    """What line 1 of an export with a header must hold: one of ``accepted``, each a tuple of
    field names. ``fields`` names the columns that hold line 1's fields as the export's fields
    query returns them; with ``fold``, a field is compared trimmed and in lower case; a line 1
    that is no record is shown by its first ``shown`` characters."""

    fields: tuple[str, ...]
    accepted: tuple[tuple[str, ...], ...]
    fold: bool = False
    shown: int = 300

    def check(self, export: str, lines: pa.Table) -> None:
        """Refuse the export ``export`` whose ``lines`` (as its fields query returns them:
        ``line_no``, ``text``, ``line_fault``, ``well_formed`` and ``fields``) do not start with
        an accepted header, naming line 1 and what it holds instead."""
        line_one = lines.filter(pc.equal(lines["line_no"], 1)).to_pylist()
        first = line_one[0] if line_one else None
        header = [first[name] for name in self.fields] if first and first["well_formed"] else None
        found = tuple(field.strip().lower() if self.fold else field for field in header or ())
        if found in self.accepted:
            return
        if header:
            shown = ",".join(header)
        elif first:
            reason = first["line_fault"] or f"not a CSV record of {len(self.fields)} fields"
            shown = f"{first['text'][: self.shown]!r} ({reason})"
        else:
            shown = "(nothing)"
        expected = " or ".join(",".join(names) for names in self.accepted)
        raise dg.Failure(f"{export}:1: the header must be {expected}, not {shown}")
