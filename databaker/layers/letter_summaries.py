"""What a joined table's checks compare, summarised a letter at a time and kept by token.

Both checks of a joined table (:mod:`databaker.layers.joined`) compare the partitioned
AddressBase with the joined table: rows and an order-insensitive checksum of the UPRNs of each
letter on both sides, and the AddressBase sources (drops) each AddressBase letter names. A
letter's record holds a token that is new whenever the letter is written
(:class:`~databaker.staging.PartitionRecord`): a summary taken under a token holds for as long
as the letter holds it. So the summaries are kept beside the joined table, with the token each
was taken under, and a check reads only the letters whose token is not among them: a rebake on
the AddressBase already baked reads no AddressBase letter, and of the joined table only the
letters it wrote. A letter without a record is read every time.

A checksum is a sum of the engine's 64-bit hashes: the kept summaries name the engine and
version that computed them (:attr:`QueryEngine.functions_version`) and are set aside when
another engine reads them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from pydantic import TypeAdapter, ValidationError

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.layers.outcode_files import LETTER_FOLDER, keys_by_letter
from databaker.resources import LayerStore, LayerStoreError, QueryEngine, SqlQuery, Table
from databaker.staging import partition_records

ADDRESSBASE_QUERY = SqlQuery.beside(__file__, "addressbase_letter_summaries")
JOINED_QUERY = SqlQuery.beside(__file__, "joined_letter_summaries")
_QUERIES = {
    "addressbase": (ADDRESSBASE_QUERY, "addressbase_partitioned"),
    "joined": (JOINED_QUERY, "joined"),
}
"""Each side's query and the parameter naming its table."""
KEPT = "_letter_summaries.json"
"""Under the joined table's prefix: the summaries of both sides, by letter."""


@dataclass(frozen=True)
class LetterSummary:
    """One letter of a table: its rows and the sum of its UPRNs' hashes; for the partitioned
    AddressBase, also the sources its rows name and how many rows name none."""

    token: str | None
    """The token of the letter's record when it was summarised (None: it had no record)."""
    rows: int
    checksum: int
    sources: list[str] = field(default_factory=list)
    rows_without_source: int = 0


@dataclass(frozen=True)
class _Kept:
    functions_version: str
    addressbase: dict[str, LetterSummary] = field(default_factory=dict)
    joined: dict[str, LetterSummary] = field(default_factory=dict)


_KEPT = TypeAdapter(_Kept)


def addressbase_summaries(
    engine: QueryEngine, store: LayerStore, joined_prefix: str
) -> dict[str, LetterSummary]:
    """Each letter of the partitioned AddressBase that holds data files, summarised (those
    kept beside the joined table under ``joined_prefix`` taken as they are)."""
    return _summaries(engine, store, joined_prefix, "addressbase", ADDRESSBASE_PARTITIONED_TABLE)


def joined_summaries(
    engine: QueryEngine, store: LayerStore, joined_table: Table
) -> dict[str, LetterSummary]:
    """Each letter of the joined table that holds data files, summarised."""
    return _summaries(engine, store, joined_table.prefix, "joined", joined_table)


def _summaries(
    engine: QueryEngine, store: LayerStore, joined_prefix: str, side: str, table: Table
) -> dict[str, LetterSummary]:
    letters = [f.removeprefix(LETTER_FOLDER) for f in keys_by_letter(store, table.prefix)]
    tokens = {
        letter: record.token if record else None
        for letter, record in partition_records(store, table.prefix, letters).items()
    }
    kept = _read_kept(store, joined_prefix, engine.functions_version)
    earlier = getattr(kept, side)
    summaries = {
        letter: earlier[letter]
        for letter in letters
        if tokens[letter] is not None
        and letter in earlier
        and earlier[letter].token == tokens[letter]
    }
    unknown = [letter for letter in letters if letter not in summaries]
    if not unknown:
        return dict(sorted(summaries.items()))
    query, parameter = _QUERIES[side]
    found = engine.run(query, {parameter: table.in_store(store), "letters": unknown}).to_pylist()
    for row in found:
        letter = row["first_letter"]
        summaries[letter] = LetterSummary(
            token=tokens[letter],
            rows=int(row["row_count"]),
            checksum=int(row["checksum"]),
            sources=list(row.get("sources") or []),
            rows_without_source=int(row.get("rows_without_source") or 0),
        )
    for letter in unknown:
        summaries.setdefault(letter, LetterSummary(tokens[letter], rows=0, checksum=0))
    summaries = dict(sorted(summaries.items()))
    _write_kept(store, joined_prefix, engine.functions_version, side, summaries)
    return summaries


def _read_kept(store: LayerStore, joined_prefix: str, functions_version: str) -> _Kept:
    """The kept summaries, if the same engine computed them; none if unreadable."""
    try:
        kept = _KEPT.validate_json(store.read_bytes(joined_prefix + KEPT))
    except (LayerStoreError, ValidationError):
        return _Kept(functions_version)
    return kept if kept.functions_version == functions_version else _Kept(functions_version)


def _write_kept(
    store: LayerStore,
    joined_prefix: str,
    functions_version: str,
    side: str,
    summaries: Mapping[str, LetterSummary],
) -> None:
    """Keep ``summaries`` for ``side`` beside the other side's, the letters summarised without
    a record left out (nothing would tell when they changed)."""
    kept = _read_kept(store, joined_prefix, functions_version)
    sides = {"addressbase": kept.addressbase, "joined": kept.joined}
    sides[side] = {letter: s for letter, s in summaries.items() if s.token is not None}
    document = {
        "functions_version": functions_version,
        **{name: {letter: asdict(s) for letter, s in each.items()} for name, each in sides.items()},
    }
    store.write_bytes(joined_prefix + KEPT, json.dumps(document, sort_keys=True).encode())
