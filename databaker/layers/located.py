"""Where some addresses of the partitioned AddressBase are, kept with the token each letter's
record held when they were found: a letter holding the same token holds the same rows, and a
UPRN is in one letter only, so an address found in such a letter is still where it was found.

Two files hold them, both Arrow IPC (no ``.parquet``: whoever reads a folder's parquet files
expects a table's rows):

- ``LOCATED``, beside a version's manifest: where the version's sampled addresses are, for the
  next bake's pictures (:mod:`databaker.layers.overview`);
- ``REJOINED``, beside a joined table's letters: the addresses the last rebuild that joined
  some again joined again (:mod:`databaker.layers.rejoined_addresses`), which the join had to
  locate anyway. The addresses that rebuild changed are among them, so its map of changes reads
  no letter to find them; an older file still holds true locations while the tokens hold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa

from databaker.resources import LayerStore, LayerStoreError

LOCATED = "_located_sample.arrow"
"""Beside a version's manifest: where its sampled addresses were found."""
REJOINED = "_rejoined_located.arrow"
"""Beside a joined table's letters: where the addresses a rebuild last joined again are."""
LOCATED_COLUMNS = pa.schema(
    [
        ("uprn", pa.string()),
        ("longitude", pa.float64()),
        ("latitude", pa.float64()),
        ("letter", pa.string()),
    ]
)
EMPTY_LOCATED = pa.Table.from_batches([], schema=LOCATED_COLUMNS)
_TOKENS = b"addressbase_tokens"
"""The key, in the files' schema metadata, of the letters' tokens (JSON)."""


@dataclass(frozen=True)
class KeptLocations:
    """Where some addresses were found: their ``uprn, longitude, latitude`` and the AddressBase
    letter each is in (``located``), and the token each letter's record held before any of its
    rows were read (``tokens``; letters with a record only)."""

    located: pa.Table
    tokens: dict[str, str]

    @classmethod
    def read(cls, store: LayerStore, key: str) -> KeptLocations | None:
        """The file at ``key`` (a prefix and ``LOCATED`` or ``REJOINED``); None when there is
        none (written by an older release, say) or it cannot be read: its addresses are then
        located as if nothing were kept."""
        try:
            with pa.ipc.open_file(pa.py_buffer(store.read_bytes(key))) as file:
                table = file.read_all()
            tokens = json.loads((table.schema.metadata or {})[_TOKENS])
            located = table.select(LOCATED_COLUMNS.names).cast(LOCATED_COLUMNS)
        except (LayerStoreError, OSError, KeyError, ValueError, pa.ArrowException):
            return None
        if not isinstance(tokens, dict) or not all(isinstance(t, str) for t in tokens.values()):
            return None
        return cls(located, tokens)

    def write(self, store: LayerStore, key: str) -> None:
        tokens = json.dumps(self.tokens, sort_keys=True)
        table = self.located.cast(LOCATED_COLUMNS).replace_schema_metadata({_TOKENS: tokens})
        sink = pa.BufferOutputStream()
        options = pa.ipc.IpcWriteOptions(compression="zstd")
        with pa.ipc.new_file(sink, table.schema, options=options) as file:
            file.write_table(table)
        store.write_bytes(key, sink.getvalue().to_pybytes())

    def unchanged_letters(self, tokens: Mapping[str, str]) -> set[str]:
        """The letters that hold, by ``tokens``, the token they held when these were found."""
        return {letter for letter, token in self.tokens.items() if tokens.get(letter) == token}
