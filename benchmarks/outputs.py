"""A method's published files: one parquet per outcode, in either layout the methods write.

- ``<folder>/<OUTCODE>.parquet``: the layer's own layout (our bake, the GeoPandas peer).
- ``<folder>/outcode=<OUTCODE>/*.parquet``: what DuckDB's ``PARTITION_BY (outcode)`` writes.

An outcode file with no columns is the layer's "no elections here": every address of that
outcode has no ballot, and the file lists none of them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HIVE_PREFIX = "outcode="
COLUMNS = ["uprn", "ballot_ids"]
SCHEMA = pa.schema([("uprn", pa.string()), ("ballot_ids", pa.list_(pa.string()))])


@dataclass(frozen=True)
class OutcodeFiles:
    """The files of each outcode a method wrote, and which outcodes it wrote as empty."""

    files: dict[str, list[Path]]
    empty: frozenset[str]

    @property
    def non_empty_files(self) -> list[str]:
        return sorted(
            str(path)
            for outcode, paths in self.files.items()
            if outcode not in self.empty
            for path in paths
        )


def outcode_files(folder: Path) -> OutcodeFiles:
    """List ``folder`` in either layout (a loop over files, of which there is one per outcode)."""
    files: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(folder.rglob("*.parquet")):
        hive = path.parent.name.startswith(HIVE_PREFIX) and path.parent.parent == folder
        if hive:
            files[path.parent.name[len(HIVE_PREFIX) :]].append(path)
        elif path.parent == folder:
            files[path.stem].append(path)
    empty = frozenset(
        outcode
        for outcode, paths in files.items()
        if all(pq.read_metadata(path).num_columns == 0 for path in paths)
    )
    return OutcodeFiles(dict(files), empty)


def lookup(found: OutcodeFiles, sample: pa.Table) -> pa.Table:
    """The rows for ``sample``'s UPRNs, read from the files of their outcodes only.

    Returns ``uprn, ballot_ids`` for every row found (several if a method wrote an address
    twice); an address of an empty outcode file gets ``[]``, one of an outcode with no file
    gets no row.
    """
    tables = [SCHEMA.empty_table()]
    for outcode in pc.unique(sample["outcode"]).to_pylist():
        wanted = sample.filter(pc.equal(sample["outcode"], outcode))["uprn"]
        if outcode in found.empty:
            offsets = pa.array(np.zeros(len(wanted) + 1, dtype=np.int32))
            empties = pa.ListArray.from_arrays(offsets, pa.array([], pa.string()))
            tables.append(pa.table([wanted, empties], schema=SCHEMA))
            continue
        for path in found.files.get(outcode, []):
            table = pq.read_table(path, columns=COLUMNS).cast(SCHEMA)
            tables.append(table.filter(pc.is_in(table["uprn"], wanted)))
    return pa.concat_tables(tables)
