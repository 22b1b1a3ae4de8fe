"""What a bake's version shows a person on its asset page, beside the figures: the coverage
map, the table of addresses per ID and, when addresses' IDs changed, the map of the changes.

Every layer gets them from the shared machinery. The addresses drawn are the bake's sample
(:mod:`databaker.layers.sampling`, taken while the outcode files were written, with each
address's number of IDs) and the diff's sample of changed addresses; their locations are
read from the partitioned AddressBase, three columns a letter, kept for the wanted UPRNs
only, while the areas are read and matplotlib imported. A layer whose input says how to read
its areas (``LayerInput.areas``) has them outlined, and those of IDs reaching no address
filled in red. A picture that cannot be drawn is left out with a warning: it never fails the
bake.

Each version keeps where its sampled addresses were found (``LOCATED``), with the token each
AddressBase letter's record held (:mod:`databaker.layers.located`). A letter holding the same
token holds the same rows, so the next bake takes from the published bake's file the location
of every address it wants that was found in such a letter, then from the join's (``REJOINED``:
the addresses a rebuild joined again, among them every address whose IDs it changed in a letter
it did not join whole), and reads only the letters where the others can be: those whose token
changed, those the sample's other addresses are in, and, for the changed addresses left, those
of the outcode files the diff found changed. A rebake from a changed ballots export on the same
AddressBase reads at most the letters of the addresses whose IDs changed, and locates what a
read of every letter locates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.concurrency import threads_for
from databaker.layers.areas import Areas
from databaker.layers.diff import FIRST_IDS, IDS_CHANGED, NO_IDS_NOW, LayerDiff
from databaker.layers.layer import Layer
from databaker.layers.located import (
    EMPTY_LOCATED,
    LOCATED,
    LOCATED_COLUMNS,
    REJOINED,
    KeptLocations,
)
from databaker.layers.outcode_files import LETTER_FOLDER, OutcodeFiles
from databaker.layers.per_id import AddressesPerId
from databaker.layers.pictures import CELL, Classes, Frame, Shapes, draw_map, load_matplotlib
from databaker.layers.sampling import RankSet, uprn_ranks
from databaker.resources import LayerStore
from databaker.staging import PartitionRecord, is_data_file, partition_record

COUNT_COLOURS = ("#b4b4b4", "#3b528b", "#21918c", "#5ec962", "#b5de2b", "#fde725")
"""Addresses with no ID, 1, 2, 3, 4, and 5 or more IDs: grey, then viridis, which has no red."""
CHANGE_COLOURS = {IDS_CHANGED: "#ff7f0e", FIRST_IDS: "#1f77b4", NO_IDS_NOW: "#d62728"}
COVERAGE_CELL = CELL // 2
CHANGES_CELL = CELL
COVERAGE_MAP = "coverage_map"
"""The metadata key of the coverage map, on the version and on the published layer."""


def overview(
    log: logging.Logger | dg.DagsterLogManager,
    store: LayerStore,
    layer: Layer,
    written: OutcodeFiles,
    ids_named: set[str],
    diff: LayerDiff,
    changes: pa.Table,
    *,
    version: str | None = None,
    earlier: str | None = None,
) -> dict[str, dg.MetadataValue]:
    """The version's pictures and table, keyed as its metadata; the diff's ``changes`` is
    its sample of changed addresses (``databaker.layers.diff.CHANGES``). Where the sampled
    addresses were found is kept under ``version`` (the bake's version's prefix), and taken
    from the kept locations of ``earlier`` (the published bake's) where they still hold."""
    label = layer.id_label.replace(" ", "_")
    per_id = AddressesPerId.of(written.addresses_per_id, ids_named)
    metadata = {f"addresses_per_{label}": dg.MetadataValue.md(per_id.markdown(layer.id_label))}
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(threads_for(store.in_flight())) as pool:
            try:
                addressbase = _AddressBase.reading(store, pool, earlier, layer.joined.prefix)
                locate = addressbase.locating(_wanted(written, diff, changes))
                areas = layer.input.areas(store) if layer.input and layer.input.areas else None
                load_matplotlib()
                located = locate()
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
        sample = written.address_sample.join(located.table, "uprn")
        lons, lats = _coordinates(sample)
        frame = Frame.around(lons, lats, areas.geometries if areas else np.array([]))
    except Exception as error:  # a picture is no reason to refuse a bake
        log.warning(f"no pictures of the bake: reading what they show failed: {error!r}")
        return metadata
    if version is not None:
        try:
            kept = KeptLocations(sample.select(LOCATED_COLUMNS.names), located.tokens)
            kept.write(store, version + LOCATED)
        except Exception as error:
            log.warning(f"where the sampled addresses are was not kept: {error!r}")
    if frame is not None:
        metadata |= _maps(log, layer, written, per_id, areas, diff, changes, located, frame, sample)
    log.info(
        f"pictures of the bake drawn in {time.perf_counter() - started:.1f} s; "
        f"{len(located.letters_read)} of {len(addressbase.files)} AddressBase letters read to "
        f"locate their addresses ({', '.join(located.letters_read) or 'none'}), "
        f"{located.taken:,} located where the published bake found them and "
        f"{located.by_join:,} where the join found them"
    )
    return metadata


def _maps(
    log: logging.Logger | dg.DagsterLogManager,
    layer: Layer,
    written: OutcodeFiles,
    per_id: AddressesPerId,
    areas: Areas | None,
    diff: LayerDiff,
    changes: pa.Table,
    located: _Located,
    frame: Frame,
    sample: pa.Table,
) -> dict[str, dg.MetadataValue]:
    metadata = {}
    outlines = None
    try:
        outlines = Shapes.of(areas.geometries, frame) if areas else None
        metadata[COVERAGE_MAP] = _coverage(layer, written, per_id, areas, outlines, frame, sample)
    except Exception as error:
        log.warning(f"the coverage map was left out: drawing it failed: {error!r}")
    if diff.baseline is not None and diff.addresses_changed:
        try:
            metadata["changes_map"] = _changes(
                layer, diff, changes, located.table, outlines, frame, sample
            )
        except Exception as error:
            log.warning(f"the map of changes was left out: drawing it failed: {error!r}")
    return metadata


def _coverage(
    layer: Layer,
    written: OutcodeFiles,
    per_id: AddressesPerId,
    areas: Areas | None,
    outlines: Shapes | None,
    frame: Frame,
    sample: pa.Table,
) -> dg.MetadataValue:
    name = layer.id_label
    lons, lats = _coordinates(sample)
    classes = np.minimum(sample["ids"].to_numpy(), len(COUNT_COLOURS) - 1)
    drawn = np.bincount(classes, minlength=len(COUNT_COLOURS))
    labels = [
        f"no {name} ({drawn[0]:,})",
        *(f"{n} {name}{'s' * (n > 1)} ({drawn[n]:,})" for n in range(1, len(drawn) - 1)),
        f"{len(drawn) - 1} or more {name}s ({drawn[-1]:,})",
    ]
    empty = None
    if areas is not None:
        pieces = areas.geometries[np.isin(areas.ids, per_id.reaching_none)]
        empty = Shapes.of(pieces, frame, points=True)
    picture = draw_map(
        frame,
        Classes(lons, lats, classes, COUNT_COLOURS, labels),
        cell=COVERAGE_CELL,
        areas=outlines,
        empty=empty,
        area_label=f"{name} area",
        empty_label=f"{name} reaching no address",
    )
    if areas is None:
        drawn_areas = f"The layer has no areas to draw for its {name}s."
    else:
        ids = len(np.unique(areas.ids))
        reaching_none = len(np.unique(areas.ids[np.isin(areas.ids, per_id.reaching_none)]))
        drawn_areas = (
            f"{ids:,} {name}s' areas outlined ({len(areas.ids):,} pieces); "
            f"{reaching_none:,} {name}s reaching no address filled in red and ringed."
        )
    caption = (
        f"{sample.num_rows:,} of {written.rows:,} addresses, the same sample on every bake, "
        f"in squares of {COVERAGE_CELL} pixels coloured by how many {name}s most of their "
        f"addresses have. {drawn_areas}"
    )
    return dg.MetadataValue.md(f"{picture.markdown('coverage')}\n\n{caption}")


def _changes(
    layer: Layer,
    diff: LayerDiff,
    changes: pa.Table,
    located: pa.Table,
    outlines: Shapes | None,
    frame: Frame,
    sample: pa.Table,
) -> dg.MetadataValue:
    name = layer.id_label
    changed = pa.table(
        {"uprn": pc.cast(changes["uprn"], pa.string()), "change": changes["change"]}
    ).join(located, "uprn")
    lons, lats = _coordinates(changed)
    classes = changed["change"].to_numpy().astype(np.int64)
    drawn = np.bincount(classes, minlength=len(CHANGE_COLOURS))
    titles = {
        IDS_CHANGED: f"different {name}s",
        FIRST_IDS: f"{name}s, none before",
        NO_IDS_NOW: f"no {name} now",
    }
    picture = draw_map(
        frame,
        Classes(
            lons,
            lats,
            classes,
            [CHANGE_COLOURS[c] for c in sorted(CHANGE_COLOURS)],
            [f"{titles[c]} ({drawn[c]:,})" for c in sorted(CHANGE_COLOURS)],
        ),
        cell=CHANGES_CELL,
        areas=outlines,
        area_label=f"{name} area",
        background=_coordinates(sample),
    )
    sampled = changes.num_rows < diff.addresses_changed
    kept = f", a sample of {changes.num_rows:,}" if sampled else ""
    missing = changes.num_rows - changed.num_rows
    gone = f"; {missing:,} no longer in AddressBase are not drawn" if missing else ""
    caption = (
        f"{diff.addresses_changed:,} addresses' {name}s changed against bake "
        f"`{diff.baseline}`: {changed.num_rows:,} drawn in squares of {CHANGES_CELL} pixels"
        f"{kept}{gone}. In grey, the coverage map's addresses."
    )
    return dg.MetadataValue.md(f"{picture.markdown('changes')}\n\n{caption}")


def _coordinates(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    return (
        table["longitude"].to_numpy().astype(np.float64),
        table["latitude"].to_numpy().astype(np.float64),
    )


@dataclass(frozen=True)
class _Wanted:
    """The UPRNs to locate: the bake's sample with the letter each address is in (null: not
    known), and the diff's changed addresses with the letters of the outcode files the diff
    found changed, which they are all in unless the AddressBase changed (None: not known)."""

    sample: pa.Table
    changes: pa.ChunkedArray
    change_letters: frozenset[str] | None


def _wanted(written: OutcodeFiles, diff: LayerDiff, changes: pa.Table) -> _Wanted:
    sample, ranked = written.address_sample, written.ranked_sample
    known = ranked.num_rows == sample.num_rows and ranked["uprn"].equals(sample["uprn"])
    letters = ranked["letter"] if known else pa.nulls(sample.num_rows, pa.string())
    outcodes = [*diff.outcodes_added, *diff.outcodes_changed, *diff.outcodes_removed]
    return _Wanted(
        pa.table({"uprn": sample["uprn"], "letter": letters}),
        changes["uprn"],
        frozenset(outcode[:1] for outcode in outcodes) if outcodes else None,
    )


@dataclass(frozen=True)
class _Located:
    table: pa.Table
    """``uprn, longitude, latitude, letter`` of the wanted addresses AddressBase holds."""
    tokens: dict[str, str]
    """The letters' tokens, read before their rows."""
    letters_read: list[str]
    taken: int
    """Addresses whose location was taken from the published bake's kept locations."""
    by_join: int
    """Addresses whose location was taken from those the join kept."""


@dataclass(frozen=True)
class _AddressBase:
    """The partitioned AddressBase's data files by letter, its letters' records, and the
    locations kept by the published bake and by the joined table's last rebuild in part, being
    read on ``pool``."""

    store: LayerStore
    pool: ThreadPoolExecutor
    files: dict[str, list[str]]
    records: dict[str, Future[PartitionRecord | None]]
    kept: Future[KeptLocations | None] | None
    rejoined: Future[KeptLocations | None]

    @classmethod
    def reading(
        cls, store: LayerStore, pool: ThreadPoolExecutor, earlier: str | None, joined: str
    ) -> _AddressBase:
        """Start reading the letters' records, the kept locations of the version under
        ``earlier`` and those of the joined table under ``joined``, all at once."""
        prefix = ADDRESSBASE_PARTITIONED_TABLE.prefix
        files: dict[str, list[str]] = {}
        for key in store.list_keys(prefix):
            folder, slash, _ = key[len(prefix) :].partition("/")
            if slash and is_data_file(key):
                files.setdefault(folder.removeprefix(LETTER_FOLDER), []).append(key)
        records = {letter: pool.submit(partition_record, store, prefix, letter) for letter in files}
        kept = pool.submit(KeptLocations.read, store, earlier + LOCATED) if earlier else None
        rejoined = pool.submit(KeptLocations.read, store, joined + REJOINED)
        return cls(store, pool, dict(sorted(files.items())), records, kept, rejoined)

    def locating(self, wanted: _Wanted) -> Callable[[], _Located]:
        """Take the kept locations of the ``wanted`` addresses found in unchanged letters (the
        published bake's, then the join's), and start reading the letters where the others can
        be (:func:`_locating`); the function returned waits for them. The records are read
        before any row, so that a token kept with a location is never newer than the rows it
        was read from."""
        tokens = {
            letter: record.token
            for letter, future in self.records.items()
            if (record := future.result()) is not None
        }
        kept = self.kept.result() if self.kept else None
        unchanged = kept.unchanged_letters(tokens) if kept else set()
        sample_uprns, changed_uprns = _numbers(wanted.sample["uprn"]), _numbers(wanted.changes)
        either = _set(pa.chunked_array(sample_uprns.chunks + changed_uprns.chunks, pa.int64()))
        taken = _held(kept, tokens, either)
        by_join = _held(self.rejoined.result(), tokens, either, besides=taken)
        taken = pa.concat_tables([taken, by_join])
        found = _set(_numbers(taken["uprn"]))
        sample = wanted.sample.filter(pc.invert(pc.is_in(sample_uprns, value_set=found)))
        changed = changed_uprns.filter(pc.invert(pc.is_in(changed_uprns, value_set=found)))
        letters: set[str] = set()
        if sample.num_rows or len(changed):
            letters = self.files.keys() - unchanged
            if sample.num_rows:
                in_sample = pc.unique(sample["letter"])
                letters |= set(self.files) if in_sample.null_count else set(in_sample.to_pylist())
            if len(changed):
                letters |= wanted.change_letters or set(self.files)
        read = sorted(letters & self.files.keys())
        scan = _locating(
            self.store,
            [sample["uprn"], changed],
            self.pool,
            [key for letter in read for key in self.files[letter]],
        )

        def located() -> _Located:
            return _Located(
                pa.concat_tables([taken, scan()]),
                tokens,
                read,
                taken.num_rows - by_join.num_rows,
                by_join.num_rows,
            )

        return located


def _held(
    kept: KeptLocations | None,
    tokens: Mapping[str, str],
    wanted: pa.Array,
    besides: pa.Table = EMPTY_LOCATED,
) -> pa.Table:
    """The locations ``kept`` holds of the ``wanted`` UPRNs, in letters that hold the token
    they held then (by ``tokens``), but for those ``besides`` holds already."""
    letters = kept.unchanged_letters(tokens) if kept else set()
    if not letters:
        return EMPTY_LOCATED
    held = kept.located.filter(
        pc.is_in(kept.located["letter"], value_set=pa.array(sorted(letters)))
    )
    uprns = _numbers(held["uprn"])
    wanted_here = pc.is_in(uprns, value_set=wanted)
    if besides.num_rows:
        known = _set(_numbers(besides["uprn"]))
        wanted_here = pc.and_(wanted_here, pc.invert(pc.is_in(uprns, value_set=known)))
    return held.filter(wanted_here)


def _numbers(uprns: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """UPRNs as integers, equal when their ranks are (text or not)."""
    numbers = pc.cast(uprns, pa.int64())
    return numbers if isinstance(numbers, pa.ChunkedArray) else pa.chunked_array([numbers])


def _set(uprns: pa.ChunkedArray) -> pa.Array:
    return pc.drop_null(uprns).combine_chunks()


def _locating(
    store: LayerStore,
    wanted: list[pa.Array | pa.ChunkedArray],
    pool: ThreadPoolExecutor,
    keys: list[str],
) -> Callable[[], pa.Table]:
    """Start finding the addresses of each list of ``wanted`` UPRNs in the partitioned
    AddressBase's files ``keys`` on ``pool`` (a file to a thread: nested pools cost more than
    they give), so that the caller can do other work meanwhile; the function returned waits
    for them and gives their ``uprn, longitude, latitude`` and letter. Each list is a
    :class:`RankSet` of its own: the bake's sample, the lowest ranks of all, is found with one
    comparison per address."""
    sets = [RankSet.of(uprns) for uprns in wanted]
    prefix = ADDRESSBASE_PARTITIONED_TABLE.prefix

    def read(key: str) -> pa.Table:
        with store.open_input(key) as source:
            # Large strings read a fifth faster; the few kept are cast back.
            table = pq.read_table(
                source,
                columns=LOCATED_COLUMNS.names[:3],
                use_threads=False,
                binary_type=pa.large_binary(),
            )
        kept = []
        for batch in table.to_batches():
            if batch["uprn"].null_count:
                batch = batch.filter(batch["uprn"].is_valid())
            ranks = uprn_ranks(batch["uprn"])
            kept.append(batch.take(np.unique(np.concatenate([s.find(ranks) for s in sets]))))
        found = pa.Table.from_batches(kept, schema=table.schema)
        letter = key[len(prefix) :].partition("/")[0].removeprefix(LETTER_FOLDER)
        return (
            found.set_column(0, "uprn", pc.cast(found["uprn"], pa.string()))
            .append_column("letter", pa.repeat(pa.scalar(letter, pa.string()), found.num_rows))
            .cast(LOCATED_COLUMNS)
        )

    reads = [pool.submit(read, key) for key in keys]

    def located() -> pa.Table:
        return pa.concat_tables([EMPTY_LOCATED, *(r.result() for r in reads)])

    return located
