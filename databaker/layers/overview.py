"""What a bake's version shows a person on its asset page, beside the figures: the coverage
map, the table of addresses per ID and, when addresses' IDs changed, the map of the changes.

Every layer gets them from the shared machinery. The addresses drawn are the bake's sample
(:mod:`databaker.layers.sampling`, taken while the outcode files were written, with each
address's number of IDs) and the diff's sample of changed addresses; their locations are
read from the partitioned AddressBase in one pass of three columns, kept for the sampled UPRNs
only, while the areas are read and matplotlib imported. A layer whose input says how to read
its areas (``LayerInput.areas``) has them outlined, and those of IDs reaching no address
filled in red. A picture that cannot be drawn is left out with a warning: it never fails the
bake.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.concurrency import WORKERS
from databaker.layers.areas import Areas
from databaker.layers.diff import FIRST_IDS, IDS_CHANGED, NO_IDS_NOW, LayerDiff
from databaker.layers.layer import Layer
from databaker.layers.outcode_files import OutcodeFiles
from databaker.layers.per_id import AddressesPerId
from databaker.layers.pictures import CELL, Classes, Frame, Shapes, draw_map, load_matplotlib
from databaker.layers.sampling import RankSet, uprn_ranks
from databaker.resources import LayerStore

COUNT_COLOURS = ("#b4b4b4", "#3b528b", "#21918c", "#5ec962", "#b5de2b", "#fde725")
"""Addresses with no ID, 1, 2, 3, 4, and 5 or more IDs: grey, then viridis, which has no red."""
CHANGE_COLOURS = {IDS_CHANGED: "#ff7f0e", FIRST_IDS: "#1f77b4", NO_IDS_NOW: "#d62728"}
COVERAGE_CELL = CELL // 2
CHANGES_CELL = CELL
COVERAGE_MAP = "coverage_map"
"""The metadata key of the coverage map, on the version and on the published layer."""
_LOCATED = pa.schema(
    [("uprn", pa.string()), ("longitude", pa.float64()), ("latitude", pa.float64())]
)


def overview(
    log: logging.Logger | dg.DagsterLogManager,
    store: LayerStore,
    layer: Layer,
    written: OutcodeFiles,
    ids_named: set[str],
    diff: LayerDiff,
    changes: pa.Table,
) -> dict[str, dg.MetadataValue]:
    """The version's pictures and table, keyed as its metadata; the diff's ``changes`` is
    its sample of changed addresses (``databaker.layers.diff.CHANGES``)."""
    label = layer.id_label.replace(" ", "_")
    per_id = AddressesPerId.of(written.addresses_per_id, ids_named)
    metadata = {f"addresses_per_{label}": dg.MetadataValue.md(per_id.markdown(layer.id_label))}
    started = time.perf_counter()
    try:
        wanted = [written.address_sample["uprn"], changes["uprn"]]
        with ThreadPoolExecutor(max_workers=max(WORKERS, 1)) as pool:
            try:
                locate = _locating(store, wanted, pool)
                areas = layer.input.areas(store) if layer.input and layer.input.areas else None
                load_matplotlib()
                located = locate()
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
        sample = written.address_sample.join(located, "uprn")
        lons, lats = _coordinates(sample)
        frame = Frame.around(lons, lats, areas.geometries if areas else np.array([]))
    except Exception as error:  # a picture is no reason to refuse a bake
        log.warning(f"no pictures of the bake: reading what they show failed: {error!r}")
        return metadata
    if frame is None:
        return metadata
    outlines = None
    try:
        outlines = Shapes.of(areas.geometries, frame) if areas else None
        metadata[COVERAGE_MAP] = _coverage(layer, written, per_id, areas, outlines, frame, sample)
    except Exception as error:
        log.warning(f"the coverage map was left out: drawing it failed: {error!r}")
    if diff.baseline is not None and diff.addresses_changed:
        try:
            metadata["changes_map"] = _changes(
                layer, diff, changes, located, outlines, frame, sample
            )
        except Exception as error:
            log.warning(f"the map of changes was left out: drawing it failed: {error!r}")
    log.info(f"pictures of the bake drawn in {time.perf_counter() - started:.1f} s")
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


def _locating(
    store: LayerStore, wanted: list[pa.ChunkedArray], pool: ThreadPoolExecutor
) -> Callable[[], pa.Table]:
    """Start finding the addresses of each list of ``wanted`` UPRNs in the partitioned
    AddressBase on ``pool`` (a file to a thread: nested pools cost more than they give), so
    that the caller can do other work meanwhile; the function returned waits for them and
    gives their ``uprn, longitude, latitude``. Each list is a :class:`RankSet` of its own: the
    bake's sample, the lowest ranks of all, is found with one comparison per address."""
    sets = [RankSet.of(uprns) for uprns in wanted]
    prefix = ADDRESSBASE_PARTITIONED_TABLE.prefix

    def read(key: str) -> pa.Table:
        with store.open_input(key) as source:
            # Large strings read a fifth faster; the few kept are cast back.
            table = pq.read_table(
                source, columns=_LOCATED.names, use_threads=False, binary_type=pa.large_binary()
            )
        kept = []
        for batch in table.to_batches():
            if batch["uprn"].null_count:
                batch = batch.filter(batch["uprn"].is_valid())
            ranks = uprn_ranks(batch["uprn"])
            kept.append(batch.take(np.unique(np.concatenate([s.find(ranks) for s in sets]))))
        found = pa.Table.from_batches(kept, schema=table.schema)
        return found.set_column(0, "uprn", pc.cast(found["uprn"], pa.string())).cast(_LOCATED)

    keys = [
        key
        for key in store.list_keys(prefix)
        if not key.rsplit("/", 1)[-1].startswith(("_", ".")) and "/" in key[len(prefix) :]
    ]
    reads = [pool.submit(read, key) for key in keys]

    def located() -> pa.Table:
        parts = [r.result() for r in reads]
        return pa.concat_tables([pa.Table.from_batches([], schema=_LOCATED), *parts])

    return located
