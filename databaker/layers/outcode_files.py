"""Publishing a layer as one parquet file per outcode: the shared mechanics of every layer.

A layer's joined table (one row per address, partitioned by first letter, with a list column of
IDs) is cut into ``<OUTCODE>.parquet`` files, rows sorted by postcode then UPRN. An outcode where
no address has any ID gets an empty parquet file (no columns, no rows): consumers read that as
"nothing here" without looking inside. The files are written to a bake's own version, with a
content hash each; publishing it is :mod:`databaker.layers.versions`' job.

Each file's rows also get a digest, kept beside the version's manifest (``ROW_DIGESTS``). A
file's bytes follow from its rows and from how they are encoded (``ENCODING``), so a later bake
whose rows for an outcode have the same digest copies the earlier version's file instead of
encoding it again: a rebake from a changed ballots export on the same drop encodes only the
outcodes whose rows changed.

Work is done a letter at a time on whole columns, which bounds memory by the largest letters.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databaker.concurrency import WORKERS
from databaker.layers.sampling import sampled, uprn_ranks
from databaker.layers.versions import content_hash
from databaker.progress import Progress, logged
from databaker.resources import LayerStore, LayerStoreError

ElementIds: TypeAlias = Callable[[pa.Array], pa.Array]
"""Maps distinct elements of a layer's list column to the IDs they count for."""
LETTER_FOLDER = "first_letter="
ADDRESS_SAMPLE = pa.schema([("uprn", pa.string()), ("ids", pa.int32())])
_RANKED_SAMPLE = ADDRESS_SAMPLE.append(pa.field("rank", pa.uint64()))
REPEATING_COLUMNS = ("postcode", "outcode", "addressbase_source")
"""Columns with few distinct values per file, worth dictionary-encoding (plus the IDs column)."""
ROWS_PER_GROUP = 1024
"""Rows per row group of an outcode file. The rows are sorted by postcode and each group's
postcode statistics are written, so a reader looking up one postcode decodes one group (or two)
rather than the whole file: at 1,024 rows that costs about a third of reading a large outcode
whole, for files a tenth larger."""
ROW_DIGESTS = "_row_digests.json"
"""Beside a version's manifest: the digest of each outcode file's rows, by file name."""
ENCODING = f"outcode files 1, pyarrow {pa.__version__}"
"""What a row digest is taken under, with the rows: the number goes up whenever
:func:`_parquet_bytes` changes how it writes, so that no file of another encoding is reused."""
READ_AS_DICTIONARY = ("addressbase_source",)
"""Columns read dictionary-encoded: one value for a whole bake, which would otherwise be
materialised once per row. Sort keys (``postcode``) must stay plain strings."""


@dataclass(frozen=True)
class OutcodeFiles:
    """What publishing a layer wrote."""

    outcodes: int
    empty_outcodes: int
    rows: int
    rows_with_ids: int
    sources: tuple[str, ...]
    """The distinct ``addressbase_source`` values of the rows written."""
    files: dict[str, str]
    """Each file's name (``<OUTCODE>.parquet``) and the SHA-256 of its content."""
    addresses_per_id: dict[str, int]
    """How many addresses each ID covers."""
    rows_in_files: int = 0
    """The rows the files hold: ``rows`` but for the addresses of empty outcode files."""
    address_sample: pa.Table = field(
        default_factory=lambda: pa.Table.from_batches([], schema=ADDRESS_SAMPLE)
    )
    """The addresses of :mod:`databaker.layers.sampling`'s sample: ``uprn`` (as in the joined
    table) and ``ids``, how many IDs it has; for the bake's pictures."""
    row_digests: dict[str, str] = field(default_factory=dict)
    """Each file's rows' digest (under ``ENCODING``), by file name: what ``ROW_DIGESTS``
    keeps."""
    reused: int = 0
    """Files copied from the earlier version, their rows unchanged, rather than encoded."""


def write_outcode_files(
    store: LayerStore,
    *,
    joined_prefix: str,
    output_prefix: str,
    columns: list[str],
    ids_column: str,
    element_ids: ElementIds | None = None,
    earlier: EarlierFiles | None = None,
    workers: int = WORKERS,
    progress: Progress = logged,
) -> OutcodeFiles:
    """Write the layer's files under ``output_prefix`` from the joined table under
    ``joined_prefix``. ``element_ids`` names the ID each distinct element of the list column
    counts for in ``addresses_per_id`` (the element itself by default); an address's elements
    must count for distinct IDs.

    Letters are cut ``workers`` at a time (reading, sorting and parquet encoding run outside
    the GIL); memory is bounded by the largest letters in flight. The files go to the store as
    many at a time as it keeps requests in flight. A file whose rows have the digest the
    ``earlier`` version's file of that name has is copied from it, not encoded. ``progress``
    counts the letters cut.
    """

    def write_letter(keys: list[str]) -> _LetterFiles:
        table = _read_parquet(store, keys)
        written = _LetterFiles(
            rows=table.num_rows,
            sources=frozenset(pc.unique(table["addressbase_source"]).drop_null().to_pylist()),
            addresses_per_id=_addresses_per_id(table[ids_column], element_ids),
            address_sample=_sample_of(table, ids_column),
        )
        for outcode, part, with_ids in _split_by_outcode(table, ids_column):
            name = f"{outcode}.parquet"
            rows = part.select(columns) if with_ids else pa.table({})
            digest = _own_rows_digest(rows)
            if earlier is not None and earlier.reusable(name, digest):
                written.reused.append((earlier.prefix + name, output_prefix + name))
                written.files[name] = earlier.files[name]
            else:
                data = _parquet_bytes(rows, ids_column)
                write(output_prefix + name, data)
                written.files[name] = content_hash(data)
            written.row_digests[name] = digest
            written.outcodes += 1
            written.empty_outcodes += not with_ids
            written.rows_with_ids += with_ids
            written.rows_in_files += part.num_rows if with_ids else 0
        done.advance()
        return written

    by_letter = _keys_by_letter(store, joined_prefix)
    with (
        progress("writing outcode files", len(by_letter), "letters") as done,
        store.writes() as write,
        ThreadPoolExecutor(max_workers=max(workers, 1)) as pool,
    ):
        letters = list(pool.map(write_letter, by_letter.values()))
    store.copy_all([pair for letter in letters for pair in letter.reused])
    return OutcodeFiles(
        outcodes=sum(letter.outcodes for letter in letters),
        empty_outcodes=sum(letter.empty_outcodes for letter in letters),
        rows=sum(letter.rows for letter in letters),
        rows_with_ids=sum(letter.rows_with_ids for letter in letters),
        rows_in_files=sum(letter.rows_in_files for letter in letters),
        sources=tuple(sorted(set().union(*(letter.sources for letter in letters)))),
        files=dict(sorted(kv for letter in letters for kv in letter.files.items())),
        addresses_per_id=dict(
            sorted(sum((Counter(letter.addresses_per_id) for letter in letters), Counter()).items())
        ),
        address_sample=sampled(
            pa.concat_tables(
                [pa.Table.from_batches([], schema=_RANKED_SAMPLE)]
                + [letter.address_sample for letter in letters]
            )
        ).drop_columns("rank"),
        row_digests=dict(sorted(kv for letter in letters for kv in letter.row_digests.items())),
        reused=sum(len(letter.reused) for letter in letters),
    )


def rows_digest(rows: pa.Table) -> str:
    """SHA-256 of ``ENCODING`` and the rows as Arrow's IPC stream writes them, once copied
    into buffers of their own: a slice's buffers keep its parent's offsets and bytes, so equal
    rows sliced from different tables would otherwise be written differently."""
    return _own_rows_digest(rows.take(np.arange(rows.num_rows)))


def _own_rows_digest(rows: pa.Table) -> str:
    """:func:`rows_digest` of rows whose buffers hold them alone, as ``take`` leaves them."""
    own = rows.combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, own.schema) as stream:
        stream.write_table(own)
    digest = hashlib.sha256(ENCODING.encode())
    digest.update(sink.getvalue())
    return digest.hexdigest()


@dataclass(frozen=True)
class EarlierFiles:
    """A complete version whose files a bake may reuse: where they are, their SHA-256 and
    their rows' digests, by file name."""

    prefix: str
    files: dict[str, str]
    row_digests: dict[str, str]

    @classmethod
    def kept(cls, store: LayerStore, prefix: str, files: dict[str, str]) -> EarlierFiles | None:
        """The version under ``prefix`` with its manifest's ``files``; None when it has no
        row digests (a version written before they were kept) or they cannot be read."""
        try:
            digests = json.loads(store.read_bytes(prefix + ROW_DIGESTS))
        except (LayerStoreError, ValueError):
            return None
        if not isinstance(digests, dict):
            return None
        return cls(prefix, files, digests)

    def reusable(self, name: str, digest: str) -> bool:
        return name in self.files and self.row_digests.get(name) == digest


@dataclass
class _LetterFiles:
    rows: int
    sources: frozenset[str]
    addresses_per_id: dict[str, int]
    address_sample: pa.Table
    outcodes: int = 0
    empty_outcodes: int = 0
    rows_with_ids: int = 0
    rows_in_files: int = 0
    files: dict[str, str] = field(default_factory=dict)
    row_digests: dict[str, str] = field(default_factory=dict)
    reused: list[tuple[str, str]] = field(default_factory=list)


def _addresses_per_id(ids: pa.ChunkedArray, element_ids: ElementIds | None) -> dict[str, int]:
    """IDs are distinct within an address, so counting them counts addresses. The work in
    Python is per distinct element, not per address."""
    counted = pc.value_counts(pc.list_flatten(ids))
    values = counted.field("values")
    if element_ids is not None:
        values = element_ids(values)
    totals: Counter[str] = Counter()
    for value, count in zip(values.to_pylist(), counted.field("counts").to_pylist(), strict=True):
        totals[value] += count
    return dict(totals)


def _sample_of(table: pa.Table, ids_column: str) -> pa.Table:
    """The letter's share of the sample, its lowest-ranked addresses with their ranks (the
    whole sample is among them): whole-column operations, no pass per address."""
    ranked = pa.table(
        {
            "uprn": table["uprn"],
            "ids": pc.list_value_length(table[ids_column]),
            "rank": uprn_ranks(table["uprn"]),
        }
    )
    return sampled(ranked).cast(_RANKED_SAMPLE)


def _keys_by_letter(store: LayerStore, prefix: str) -> dict[str, list[str]]:
    """Data files per letter folder; Athena's ``UNLOAD`` names its files without a suffix."""
    letters: dict[str, list[str]] = defaultdict(list)
    for key in store.list_keys(prefix):
        folder, _, name = key[len(prefix) :].partition("/")
        if folder.startswith(LETTER_FOLDER) and name and not name.startswith(("_", ".")):
            letters[folder].append(key)
    return dict(sorted(letters.items()))


def _read_parquet(store: LayerStore, keys: list[str]) -> pa.Table:
    tables = []
    for key in keys:
        with store.open_input(key) as source:
            tables.append(pq.read_table(source, read_dictionary=list(READ_AS_DICTIONARY)))
    return pa.concat_tables(tables, promote_options="permissive")


def _split_by_outcode(table: pa.Table, ids_column: str) -> Iterator[tuple[str, pa.Table, int]]:
    """Yield ``(outcode, rows, rows with IDs)`` per outcode, rows sorted by postcode then UPRN,
    with an ``outcode`` column; each outcode's rows are a table of their own, whose buffers hold
    those rows only (as :func:`_own_rows_digest` needs them).

    Postcodes are canonical (``OUTCODE INW``, a three-character inward code), so sorting by
    postcode also groups each outcode's rows together: a space sorts before any letter or digit.
    Outcodes are found among the distinct postcodes, not row by row. Each outcode's rows are
    taken from the letter's table in one gather: sorting the whole letter first would copy every
    row once more.
    """
    if table.num_rows == 0:
        return
    table = table.combine_chunks()
    postcodes = pc.dictionary_encode(table["postcode"]).combine_chunks()
    order = _postcode_then_uprn(table, postcodes)
    outcodes = pc.dictionary_encode(pc.utf8_slice_codeunits(postcodes.dictionary, 0, -4))
    row_outcodes = outcodes.indices.to_numpy()[postcodes.indices.to_numpy()][order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(row_outcodes)) + 1])
    ends = np.append(starts[1:], table.num_rows)
    has_ids = pc.list_value_length(table[ids_column]).to_numpy(zero_copy_only=False) > 0
    with_ids = np.add.reduceat(has_ids[order].astype(np.int64), starts)
    names = outcodes.dictionary.take(row_outcodes[starts]).to_pylist()
    order = pa.array(order)
    for name, start, end, count in zip(names, starts, ends, with_ids, strict=True):
        rows = table.take(order.slice(start, end - start))
        yield name, rows.append_column("outcode", pa.repeat(name, end - start)), int(count)


_UPRN_DIGITS = 12
_UPRN_BITS = 44
"""Bits of a UPRN's sort key: ``10**12 * 16`` is less than ``2**44``."""


def _postcode_then_uprn(table: pa.Table, postcodes: pa.DictionaryArray) -> np.ndarray:
    """The order of the rows by postcode then UPRN, both as text, as Arrow sorts them, given
    the table's ``postcode`` column dictionary-encoded.

    A drop's UPRNs are 1 to 12 digits (its rules see to it), and such a UPRN sorts as text in
    the order of its value padded with zeros to 12 digits, then its length; postcodes sort by
    their rank among the distinct postcodes. Integers sort several times faster than strings,
    and unique keys need no stable sort: UPRNs are unique in a joined table whose checks passed
    (rows that repeat a key would come in an order of the sort's choosing). A table holding
    other UPRNs is sorted as Arrow sorts it (UPRNs as numbers, where they are numbers).
    """
    uprn = table["uprn"]
    if (
        not pa.types.is_string(uprn.type)
        or postcodes.null_count
        or pc.all(pc.ascii_is_decimal(uprn), skip_nulls=False).as_py() is not True
        or pc.max(pc.binary_length(uprn)).as_py() > _UPRN_DIGITS
    ):
        return pc.sort_indices(table, [("postcode", "ascending"), ("uprn", "ascending")]).to_numpy()
    digits = pc.binary_length(uprn).to_numpy().astype(np.int64)
    padded = pc.cast(uprn, pa.int64()).to_numpy() * 10 ** (_UPRN_DIGITS - digits)
    uprn_key = (padded * 16 + digits).astype(np.uint64)
    ranks = pc.rank(postcodes.dictionary, tiebreaker="first").to_numpy().astype(np.uint64)
    postcode_key = ranks[postcodes.indices.to_numpy()]
    if len(ranks) < 1 << (64 - _UPRN_BITS):
        return np.argsort((postcode_key << np.uint64(_UPRN_BITS)) | uprn_key)
    return np.lexsort((uprn_key, postcode_key))


def _parquet_bytes(table: pa.Table, ids: str) -> bytes:
    """The outcode file. Dictionary encoding only where values repeat (it slows writing and
    grows files for unique ones such as UPRNs and addresses); statistics only for the columns a
    reader filters on; row groups of ``ROWS_PER_GROUP``. No Arrow schema is stored, so columns
    read dictionary-encoded here reach consumers as the plain strings they are in Parquet."""
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        use_dictionary=[c for c in table.column_names if c in REPEATING_COLUMNS or c == ids],
        write_statistics=[c for c in ("postcode", "uprn") if c in table.column_names],
        row_group_size=ROWS_PER_GROUP,
        store_schema=False,
    )
    return sink.getvalue()
