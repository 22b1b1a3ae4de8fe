"""What a bake changes against the published layer: the shared mechanics of every layer.

The layer's promise to consumers is "this address has these IDs", so the diff compares each
UPRN's set of IDs before and after. An address absent from a side has no IDs there (an outcode
where no address has an ID is published as an empty file). Only outcode files whose content
hash differs are read: identical files hold identical rows.

Files are compared a first letter at a time, which bounds memory by the largest letters. Each
side is reduced to ``(uprn, key)``, the key being the address's IDs joined into one string and
encoded as an integer, so whole columns are compared with joins. The Python work is per
distinct *transition* (IDs before, IDs after), of which a layer has thousands, not per address.
A UPRN found on one side only of its letter may have moved to an outcode of another letter; such
rows are matched across letters at the end.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import TypeAdapter
from pydantic.dataclasses import dataclass as record

from databaker.concurrency import WORKERS
from databaker.layers import sampling
from databaker.layers.element_fields import ElementFields
from databaker.layers.outcode_files import ElementIds
from databaker.layers.versions import TOLERANT, Manifest
from databaker.markdown import with_article
from databaker.progress import Progress, logged
from databaker.resources import LayerStore

DIFF = "_diff.json"
SAMPLE_SIZE = 20
SEPARATOR = "\x1f"
"""Joins an address's IDs into its key; IDs never contain it."""
ENCODED_ROWS_KEPT = 8_000_000
"""How many rows of the files a bake has just encoded :class:`EncodedRows` keeps for the
diff: about 16 bytes a row, 128 MB at most."""
IDS_CHANGED, FIRST_IDS, NO_IDS_NOW = 0, 1, 2
"""How an address of :data:`CHANGES` changed: other IDs; IDs where it had none; none now."""
CHANGES = pa.schema([("uprn", pa.int64()), ("change", pa.int8())])
"""The changed addresses a comparison keeps: :mod:`databaker.layers.sampling`'s sample of
them (all, up to its size), in UPRN order, each with how it changed; for the bake's
pictures."""
_RANKED_CHANGES = CHANGES.append(pa.field("rank", pa.uint64()))


@record(frozen=True, config=TOLERANT)
class IdChange:
    """How many addresses an ID covered before and after, and which way they moved."""

    before: int = 0
    after: int = 0
    gained: int = 0
    lost: int = 0


@record(frozen=True, config=TOLERANT)
class AddressChange:
    uprn: int
    postcode: str = ""
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)


@record(frozen=True, config=TOLERANT)
class LayerDiff:
    """A bake against the version published when it was compared (``baseline``; ``None`` when
    nothing was published, in which case only the bake's own totals are filled in)."""

    bake_id: str
    baseline: str | None = None
    addresses_before: int = 0
    addresses_after: int = 0
    with_ids_before: int = 0
    with_ids_after: int = 0
    addresses_changed: int = 0
    """Addresses whose set of IDs differs, including the next two kinds."""
    addresses_gaining_first_ids: int = 0
    addresses_losing_all_ids: int = 0
    addresses_losing_kind: dict[str, int] = field(default_factory=dict)
    """For a layer whose elements are of kinds (a council, a constituency): by kind, the
    addresses that had an element of it and have none now."""
    ids: dict[str, IdChange] = field(default_factory=dict)
    """Every ID that gained or lost an address; IDs not listed are unchanged."""
    unchanged_ids: int = 0
    outcodes_added: list[str] = field(default_factory=list)
    outcodes_removed: list[str] = field(default_factory=list)
    outcodes_changed: list[str] = field(default_factory=list)
    """Outcodes in both whose file differs (in its IDs or in any other column)."""
    sample: list[AddressChange] = field(default_factory=list)
    """The changed addresses with the lowest UPRNs."""

    @property
    def ids_appearing(self) -> list[str]:
        return sorted(i for i, c in self.ids.items() if c.before == 0 and c.after > 0)

    @property
    def ids_disappearing(self) -> list[str]:
        return sorted(i for i, c in self.ids.items() if c.before > 0 and c.after == 0)

    def markdown(self, id_label: str = "ID", rows: int = 20) -> str:
        """The diff for a reader: totals, then the IDs with the most addresses moved."""
        if self.baseline is None:
            return f"First bake, nothing published to compare: {self.addresses_after:,} addresses."
        lines = [
            f"Compared with published bake `{self.baseline}`.",
            "",
            "| | before | after | change |",
            "|---|---:|---:|---:|",
            _row("addresses", self.addresses_before, self.addresses_after),
            _row(
                f"addresses with {with_article(id_label)}",
                self.with_ids_before,
                self.with_ids_after,
            ),
            "",
            f"- addresses whose {id_label}s changed: **{self.addresses_changed:,}** "
            f"({self.addresses_gaining_first_ids:,} had none before, "
            f"{self.addresses_losing_all_ids:,} have none now)",
            f"- {id_label}s appearing: {_names(self.ids_appearing)}",
            f"- {id_label}s disappearing: {_names(self.ids_disappearing)}",
            f"- {id_label}s with addresses gained or lost: {len(self.ids):,}; "
            f"unchanged: {self.unchanged_ids:,}",
            f"- outcodes added: {_names(self.outcodes_added)}",
            f"- outcodes removed: {_names(self.outcodes_removed)}",
            f"- outcodes changed: {_names(self.outcodes_changed)}",
            *(
                f"- addresses that had a {kind} and have none now: {count:,}"
                for kind, count in self.addresses_losing_kind.items()
            ),
        ]
        if self.ids:
            moved = sorted(
                self.ids.items(), key=lambda item: (-(item[1].gained + item[1].lost), item[0])
            )
            lines += [
                "",
                f"| {id_label} | before | after | gained | lost |",
                "|---|---:|---:|---:|---:|",
                *(
                    f"| {name} | {c.before:,} | {c.after:,} | {c.gained:,} | {c.lost:,} |"
                    for name, c in moved[:rows]
                ),
            ]
            if len(moved) > rows:
                lines.append(f"\n({len(moved) - rows:,} more in the JSON diff)")
        return "\n".join(lines)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LayerDiff:
        """A diff kept by this release or another: unknown fields ignored, missing ones
        defaulted."""
        return _LAYER_DIFF.validate_json(data)


_LAYER_DIFF = TypeAdapter(LayerDiff)


def diff_versions(store: LayerStore, **comparison: Any) -> LayerDiff:
    """The diff of :func:`compare_versions`, without the changed addresses."""
    return compare_versions(store, **comparison)[0]


def compare_versions(
    store: LayerStore,
    *,
    before: Manifest | None,
    before_prefix: str,
    after: Manifest,
    after_prefix: str,
    ids_column: str,
    element_ids: ElementIds | None = None,
    element_fields: ElementFields | None = None,
    element_kinds: ElementIds | None = None,
    encoded: EncodedRows | None = None,
    changed_lists: Mapping[str, pa.Table] | None = None,
    sample_size: int = SAMPLE_SIZE,
    workers: int = WORKERS,
    progress: Progress = logged,
) -> tuple[LayerDiff, pa.Table]:
    """Compare the files of version ``after`` (under ``after_prefix``) with those of the
    published version ``before`` (under ``before_prefix``). An address changed when its list
    changed at all; per ID (each element's, by ``element_ids``, as in the manifest's
    ``addresses_per_id``), the addresses that gained or lost it. ``progress`` counts the
    letters compared. The files of ``after`` whose rows ``encoded`` holds are not read. A
    letter of ``changed_lists`` (by letter, the rows of the joined letter whose lists changed
    since the rows ``before`` was derived from, :mod:`databaker.layers.changed_lists`) is
    compared from those rows, its files not read, unless it gained or lost an outcode. With
    ``element_fields``, the files' lists hold records, compared as their texts; with
    ``element_kinds`` (each element's kind, or null), the addresses losing every element of a
    kind are counted.
    Returns the diff and a sample of the changed addresses (:data:`CHANGES`).
    """
    totals = {
        "bake_id": after.bake_id,
        "addresses_after": after.rows,
        "with_ids_after": after.rows_with_ids,
    }
    if before is None:
        first = LayerDiff(baseline=None, addresses_before=0, with_ids_before=0, **totals)
        return first, pa.Table.from_batches([], schema=CHANGES)
    added = sorted(after.files.keys() - before.files.keys())
    removed = sorted(before.files.keys() - after.files.keys())
    changed = sorted(
        n for n in after.files.keys() & before.files.keys() if after.files[n] != before.files[n]
    )
    by_letter: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for name in removed + changed:
        by_letter[name[0]][0].append(name)
    for name in added + changed:
        by_letter[name[0]][1].append(name)

    def compare(letter: str, names: tuple[list[str], list[str]]) -> _Comparison:
        logged = (changed_lists or {}).get(letter)
        if logged is not None and sorted(names[0]) == sorted(names[1]):
            compared = _compare_changed_lists(logged, sample_size)
            done.advance()
            return compared
        old = _read_side(
            store, [before_prefix + name for name in names[0]], ids_column, element_fields
        )
        held = encoded.sides(names[1]) if encoded else {}
        read = [after_prefix + name for name in names[1] if name not in held]
        new = _concat_sides([_read_side(store, read, ids_column, element_fields), *held.values()])
        compared = _compare(old, new, sample_size)
        done.advance()
        return compared

    with (
        progress("comparing with the published layer", len(by_letter), "letters") as done,
        ThreadPoolExecutor(max_workers=max(workers, 1)) as pool,
    ):
        letters = list(pool.map(compare, by_letter.keys(), by_letter.values()))
    transitions, sample, changes = _merged(letters, sample_size)
    gained: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    kinds_lost: Counter[str] = Counter()
    id_of = _id_of_elements(transitions, element_ids)
    kind_of = _id_of_elements(transitions, element_kinds) if element_kinds else {}
    for (old, new), count in transitions.items():
        old_ids = {id_of[element] for element in _ids(old)}
        new_ids = {id_of[element] for element in _ids(new)}
        gained.update(dict.fromkeys(new_ids - old_ids, count))
        lost.update(dict.fromkeys(old_ids - new_ids, count))
        if kind_of:
            old_kinds = {kind_of[element] for element in _ids(old)} - {None}
            new_kinds = {kind_of[element] for element in _ids(new)}
            kinds_lost.update(dict.fromkeys(old_kinds - new_kinds, count))
    ids = {
        i: IdChange(
            before=after.addresses_per_id.get(i, 0) - gained[i] + lost[i],
            after=after.addresses_per_id.get(i, 0),
            gained=gained[i],
            lost=lost[i],
        )
        for i in sorted(gained.keys() | lost.keys())
    }
    return LayerDiff(
        baseline=before.bake_id,
        addresses_before=before.rows,
        with_ids_before=before.rows_with_ids,
        addresses_changed=sum(transitions.values()),
        addresses_gaining_first_ids=sum(n for (old, _), n in transitions.items() if not old),
        addresses_losing_all_ids=sum(n for (_, new), n in transitions.items() if not new),
        addresses_losing_kind=dict(sorted(kinds_lost.items())),
        ids=ids,
        unchanged_ids=len(after.addresses_per_id.keys() - ids.keys()),
        outcodes_added=_outcodes(added),
        outcodes_removed=_outcodes(removed),
        outcodes_changed=_outcodes(changed),
        sample=sample,
        **totals,
    ), changes


def _row(label: str, before: int, after: int) -> str:
    change = f"{after - before:+,}"
    if before:
        change += f" ({(after - before) / before:+.2%})"
    return f"| {label} | {before:,} | {after:,} | {change} |"


def _names(names: list[str], shown: int = 10) -> str:
    if not names:
        return "none"
    listed = ", ".join(f"`{name}`" for name in names[:shown])
    return f"{len(names):,}: {listed}" + (", ..." if len(names) > shown else "")


def _id_of_elements(
    transitions: Counter[tuple[str, str]], element_ids: ElementIds | None
) -> dict[str, str]:
    """The ID each element of the transitions' keys counts for, in one call for all of them."""
    elements = sorted({e for pair in transitions for key in pair for e in _ids(key)})
    if element_ids is None:
        return {element: element for element in elements}
    ids = element_ids(pa.array(elements, pa.string())).to_pylist()
    return dict(zip(elements, ids, strict=True))


def _ids(key: str) -> list[str]:
    return key.split(SEPARATOR) if key else []


def _outcodes(names: Iterable[str]) -> list[str]:
    return [name.removesuffix(".parquet") for name in names]


_SIDE = pa.schema([("uprn", pa.int64()), ("postcode", pa.string()), ("key", pa.string())])
_EMPTY_SIDE = pa.Table.from_batches([], schema=_SIDE)
_NO_ROWS_ASIDE = pa.Table.from_batches(
    [],
    schema=pa.schema(
        [
            ("uprn", pa.int64()),
            ("postcode", pa.dictionary(pa.int32(), pa.string())),
            ("key", pa.dictionary(pa.int32(), pa.string())),
        ]
    ),
)
"""What :func:`_set_aside` gives of no rows."""


class EncodedRows:
    """The rows of the outcode files a bake has just encoded, as the diff compares them, so
    that it need not read those files back (for a change spread over the country, a thousand
    files). Up to ``budget`` rows are kept, postcodes and keys dictionary-encoded; the files
    past it are read from the store like any other. The files of the letters ``not_needed``
    (compared from their changed lists) are not kept. :meth:`keep` is called from the threads
    that encode the files."""

    def __init__(
        self,
        ids_column: str,
        budget: int = ENCODED_ROWS_KEPT,
        element_fields: ElementFields | None = None,
        not_needed: Collection[str] = (),
    ) -> None:
        self._ids_column = ids_column
        self._element_fields = element_fields
        self._not_needed = frozenset(not_needed)
        self._budget = budget
        self._kept: dict[str, pa.Table] = {}
        self._lock = threading.Lock()

    def keep(self, name: str, rows: pa.Table) -> None:
        """Hold the rows of the file ``name`` (an empty file has no columns), within budget."""
        if name[:1] in self._not_needed:
            return
        with self._lock:
            if rows.num_rows > self._budget:
                return
            self._budget -= rows.num_rows
        side = (
            _side(rows, self._ids_column, self._element_fields) if rows.num_columns else _EMPTY_SIDE
        )
        compact = pa.table(
            {
                "uprn": side["uprn"],
                "postcode": pc.dictionary_encode(side["postcode"]),
                "key": pc.dictionary_encode(side["key"]),
            }
        )
        with self._lock:
            self._kept[name] = compact

    def sides(self, names: Iterable[str]) -> dict[str, pa.Table]:
        """The rows held of the files ``names``, as :func:`_read_side` reads them."""
        return {name: self._kept[name].cast(_SIDE) for name in names if name in self._kept}


def _read_side(
    store: LayerStore,
    keys: list[str],
    ids_column: str,
    element_fields: ElementFields | None = None,
) -> pa.Table:
    """The rows of ``keys`` as ``(uprn, postcode, key)``; an empty outcode file has none.

    Outcode files are small: each is read whole, in one request, the store reading ahead."""
    tables = []
    for data in store.read_all(keys):
        with pa.BufferReader(data) as source:
            parquet = pq.ParquetFile(source)
            if parquet.schema_arrow.names:
                columns = ["uprn", "postcode", ids_column]
                rows = parquet.read(columns=columns)
                tables.append(_side(rows, ids_column, element_fields))
    return _concat_sides(tables)


def _side(rows: pa.Table, ids_column: str, element_fields: ElementFields | None) -> pa.Table:
    lists = rows[ids_column]
    if element_fields is not None:
        lists = element_fields.text_lists(lists)
    return pa.table(
        {
            "uprn": rows["uprn"].cast(pa.int64()),
            "postcode": rows["postcode"].cast(pa.string()),
            "key": pc.binary_join(lists, SEPARATOR),
        }
    )


def _concat_sides(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables).combine_chunks() if tables else _EMPTY_SIDE


@dataclass(frozen=True)
class _Comparison:
    transitions: Counter[tuple[str, str]]
    """``(key before, key after)``: how many addresses went from the one to the other."""
    sample: list[AddressChange]
    changes: pa.Table
    """The letter's share of the sample of changed addresses, with their ranks."""
    before_only: pa.Table
    """Changed rows whose UPRN is not on the other side; counted as going to no IDs until a
    UPRN is found on the other side of another letter."""
    after_only: pa.Table


def _compare(old: pa.Table, new: pa.Table, sample_size: int) -> _Comparison:
    """Every changed address of two sides, a UPRN on one side only counted against no IDs."""
    codes = pc.dictionary_encode(
        pa.concat_arrays([old["key"].combine_chunks(), new["key"].combine_chunks()])
    )
    keys = codes.dictionary
    old = _with_codes(old, codes.indices[: old.num_rows], keys)
    new = _with_codes(new, codes.indices[old.num_rows :], keys)
    pair = ["uprn", "code"]
    changed = (
        old.select([*pair, "row"])
        .join(new.select(pair), keys=pair, join_type="left anti")
        .join(
            new.select([*pair, "row"]).join(old.select(pair), keys=pair, join_type="left anti"),
            keys="uprn",
            join_type="full outer",
            left_suffix="_old",
            right_suffix="_new",
        )
        .combine_chunks()
    )
    names = [*keys.to_pylist(), ""]
    blank = np.array([not name for name in names])
    old_codes = pc.fill_null(changed["code_old"], -1).to_numpy()
    new_codes = pc.fill_null(changed["code_new"], -1).to_numpy()
    # Rows with no IDs that appear or vanish (into an empty outcode file) are no change.
    real = ~(blank[old_codes] & blank[new_codes])
    changed = changed.filter(real)
    old_codes, new_codes = old_codes[real], new_codes[real]
    transitions = _transitions(old_codes, new_codes, names)
    change = _change_kinds(blank, old_codes, new_codes)
    first = pc.sort_indices(changed["uprn"])[:sample_size]
    postcodes = pc.coalesce(
        new["postcode"].take(changed["row_new"].take(first)),
        old["postcode"].take(changed["row_old"].take(first)),
    )
    sample = [
        AddressChange(uprn, postcode, _ids(names[o]), _ids(names[n]))
        for uprn, postcode, o, n in zip(
            changed["uprn"].take(first).to_pylist(),
            postcodes.to_pylist(),
            old_codes[first.to_numpy()].tolist(),
            new_codes[first.to_numpy()].tolist(),
            strict=True,
        )
    ]
    lonely_old = pc.drop_null(changed["row_old"].filter(pc.is_null(changed["row_new"])))
    lonely_new = pc.drop_null(changed["row_new"].filter(pc.is_null(changed["row_old"])))
    return _Comparison(
        transitions,
        sample,
        _ranked_changes(changed["uprn"], change),
        _set_aside(old, lonely_old),
        _set_aside(new, lonely_new),
    )


def _compare_changed_lists(rows: pa.Table, sample_size: int) -> _Comparison:
    """:func:`_compare` of a letter's two sides, from its rows whose lists changed
    (``CHANGED_LISTS_COLUMNS``): the letter's other rows are the same on both sides, or on
    neither (an address with no IDs, in an outcode published as an empty file), and no address
    is on one side only, as the letter's addresses did not change."""
    old_keys = pc.fill_null(pc.binary_join(rows["before"], SEPARATOR), "").combine_chunks()
    new_keys = pc.fill_null(pc.binary_join(rows["after"], SEPARATOR), "").combine_chunks()
    codes = pc.dictionary_encode(pa.concat_arrays([old_keys, new_keys]))
    names = codes.dictionary.to_pylist()
    all_codes = codes.indices.to_numpy()
    old_codes, new_codes = all_codes[: rows.num_rows], all_codes[rows.num_rows :]
    real = old_codes != new_codes
    rows = rows.filter(pa.array(real))
    old_codes, new_codes = old_codes[real], new_codes[real]
    change = _change_kinds(np.array([not name for name in names]), old_codes, new_codes)
    uprns = rows["uprn"].cast(pa.int64())
    first = pc.sort_indices(uprns)[:sample_size]
    sample = [
        AddressChange(uprn, postcode, _ids(names[o]), _ids(names[n]))
        for uprn, postcode, o, n in zip(
            uprns.take(first).to_pylist(),
            rows["postcode"].take(first).to_pylist(),
            old_codes[first.to_numpy()].tolist(),
            new_codes[first.to_numpy()].tolist(),
            strict=True,
        )
    ]
    return _Comparison(
        _transitions(old_codes, new_codes, names),
        sample,
        _ranked_changes(uprns, change),
        _NO_ROWS_ASIDE,
        _NO_ROWS_ASIDE,
    )


def _change_kinds(blank: np.ndarray, old_codes: np.ndarray, new_codes: np.ndarray) -> np.ndarray:
    """How each changed address changed (:data:`CHANGES`), given which keys are blank (no IDs)
    and its keys' codes before and after."""
    return np.where(
        blank[old_codes], FIRST_IDS, np.where(blank[new_codes], NO_IDS_NOW, IDS_CHANGED)
    )


def _with_codes(side: pa.Table, codes: pa.Array, keys: pa.Array) -> pa.Table:
    return (
        side.append_column("code", codes.cast(pa.int32()))
        .append_column("row", pa.array(np.arange(side.num_rows, dtype=np.int64)))
        .set_column(
            side.schema.get_field_index("key"),
            "key",
            pa.DictionaryArray.from_arrays(codes.cast(pa.int32()), keys),
        )
    )


def _set_aside(side: pa.Table, rows: pa.Array) -> pa.Table:
    """Rows kept for matching across letters, keys and postcodes dictionary-encoded (a few
    bytes a row: a new election can leave millions of addresses on one side only)."""
    kept = side.take(rows)
    return pa.table(
        {
            "uprn": kept["uprn"],
            "postcode": pc.dictionary_encode(kept["postcode"]),
            "key": kept["key"],
        }
    )


def _transitions(old_codes: np.ndarray, new_codes: np.ndarray, names: list[str]) -> Counter:
    """Count the distinct ``(before, after)`` code pairs, by key; ``-1`` (``names[-1]``) and
    the code of an empty key both mean no IDs."""
    base = len(names) + 1
    pairs, counts = np.unique(
        (old_codes.astype(np.int64) + 1) * base + (new_codes.astype(np.int64) + 1),
        return_counts=True,
    )
    transitions: Counter[tuple[str, str]] = Counter()
    for pair, count in zip(pairs.tolist(), counts.tolist(), strict=True):
        old, new = divmod(pair, base)
        transitions[(names[old - 1], names[new - 1])] += count
    return transitions


def _ranked_changes(uprns: pa.ChunkedArray | pa.Array, change: np.ndarray) -> pa.Table:
    """The sample of these changed addresses (ranked as :mod:`databaker.layers.sampling`)."""
    ranked = pa.table(
        {"uprn": uprns, "change": change.astype(np.int8), "rank": sampling.uprn_ranks(uprns)},
        schema=_RANKED_CHANGES,
    )
    return sampling.sampled(ranked)


def _merged(
    letters: list[_Comparison], sample_size: int
) -> tuple[Counter, list[AddressChange], pa.Table]:
    """The letters' transitions and samples, corrected for UPRNs that moved between letters:
    each was counted as losing its IDs in one letter and gaining them in another."""
    transitions = sum((c.transitions for c in letters), Counter())
    sample = [a for c in letters for a in c.sample]
    changes = pa.concat_tables(
        [pa.Table.from_batches([], schema=_RANKED_CHANGES)] + [c.changes for c in letters]
    )
    if not letters:
        return transitions, sample, pa.Table.from_batches([], schema=CHANGES)
    old = pa.concat_tables([c.before_only for c in letters])
    new = pa.concat_tables([c.after_only for c in letters])
    old = _plain(old.filter(pc.is_in(old["uprn"], value_set=new["uprn"].combine_chunks())))
    new = _plain(new.filter(pc.is_in(new["uprn"], value_set=old["uprn"].combine_chunks())))
    moved = old.join(new, keys="uprn", left_suffix="_old", right_suffix="_new")
    if moved.num_rows:
        counted = moved.group_by(["key_old", "key_new"]).aggregate([([], "count_all")])
        for key_old, key_new, count in zip(*counted.to_pydict().values(), strict=True):
            transitions[(key_old, "")] -= count
            transitions[("", key_new)] -= count
            if key_old != key_new:
                transitions[(key_old, key_new)] += count
        moving = moved.filter(pc.not_equal(moved["key_old"], moved["key_new"]))
        first = pc.sort_indices(moving["uprn"])[:sample_size]
        sampled = pc.is_in(pa.array([a.uprn for a in sample], pa.int64()), moved["uprn"])
        sample = [a for a, gone in zip(sample, sampled.to_pylist(), strict=True) if not gone]
        columns = moving.take(first).select(["uprn", "postcode_new", "key_old", "key_new"])
        sample += [
            AddressChange(uprn, postcode, _ids(old_key), _ids(new_key))
            for uprn, postcode, old_key, new_key in zip(*columns.to_pydict().values(), strict=True)
        ]
        # A moved address was set aside only with IDs on both sides: it changed them, or not.
        # (One that did not leaves its letter's share, and so the sample, a little short.)
        changes = pa.concat_tables(
            [
                changes.filter(
                    pc.invert(pc.is_in(changes["uprn"], value_set=moved["uprn"].combine_chunks()))
                ),
                _ranked_changes(moving["uprn"], np.full(moving.num_rows, IDS_CHANGED)),
            ]
        )
    transitions = Counter({t: n for t, n in transitions.items() if n > 0})
    changes = sampling.sampled(changes).drop_columns("rank").sort_by("uprn")
    return transitions, sorted(sample, key=lambda a: a.uprn)[:sample_size], changes


def _plain(table: pa.Table) -> pa.Table:
    """A set-aside table with its dictionaries decoded (they differ from letter to letter)."""
    return table.cast(_SIDE)
