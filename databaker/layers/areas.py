"""A layer's areas: the polygons of its input, each with the ID it counts for.

The bake's coverage map outlines them and fills those whose ID reaches no address. A layer
says how to read them (``LayerInput.areas``); its input's table keeps each geometry as WKB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from databaker.resources import LayerStore


@dataclass(frozen=True)
class Areas:
    """One row per piece of area: ``ids[i]`` (an ID as the manifest's ``addresses_per_id``
    counts it) and ``geometries[i]`` (a shapely geometry, in longitude and latitude)."""

    ids: np.ndarray
    geometries: np.ndarray

    @classmethod
    def of(cls, ids: pa.Array | pa.ChunkedArray, geometry: pa.ChunkedArray) -> Areas:
        """From an input table's columns: the IDs (any type, as text) and the WKB geometry
        (plain binary, or a GeoParquet extension type over it)."""
        wkb = geometry.combine_chunks()
        if isinstance(wkb, pa.ExtensionArray):
            wkb = wkb.storage
        return cls(
            ids=pc.cast(ids, pa.string()).to_numpy(zero_copy_only=False),
            geometries=shapely.from_wkb(wkb.to_numpy(zero_copy_only=False)),
        )


def read_areas(store: LayerStore, key: str, id_column: str) -> Areas:
    """The pieces of the parquet file ``key``: ``id_column`` as text, and ``geometry`` (WKB)."""
    with store.open_input(key) as source:
        table = pq.read_table(source, columns=[id_column, "geometry"])
    return Areas.of(table[id_column], table["geometry"])
