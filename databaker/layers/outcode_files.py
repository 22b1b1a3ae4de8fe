"""Publishing a layer as one parquet file per outcode: the shared mechanics of every layer.

A layer's joined table (one row per address, partitioned by first letter, with a list column of
IDs), with the address columns of the AddressBase letters it was joined from
(:mod:`databaker.layers.joined_addresses`), is cut into ``<OUTCODE>.parquet`` files, rows sorted
by postcode then UPRN. An outcode where
no address has any ID gets an empty parquet file (no columns, no rows): consumers read that as
"nothing here" without looking inside. The files are written to a bake's own version, with a
content hash each; publishing it is :mod:`databaker.layers.versions`' job.

Each file's rows also get a digest, kept beside the version's manifest (``ROW_DIGESTS``). A
file's bytes follow from its rows and from how they are encoded (``ENCODING``), so a later bake
whose rows for an outcode have the same digest copies the earlier version's file instead of
encoding it again: a rebake from a changed ballots export on the same drop encodes only the
outcodes whose rows changed.

What each letter of the joined table gave the version is kept too (``LETTERS``), under the
token of the letter's :class:`~databaker.staging.PartitionRecord`, with the version's address
sample (``SAMPLE``). A joined letter holding the same token as when the earlier version read it
holds the same rows, so a later bake does not read it at all: it copies the letter's files and
takes its counts from ``LETTERS``. A rebake after one ballot changed reads one letter of 22.
A letter whose record says which outcodes' rows changed since that token
(:class:`~databaker.staging.RowChanges`) is read in part: its counts and sample are taken on whole
columns, but only those outcodes' rows are sorted and their files derived; the others' files are
copied, with their hashes and digests from ``LETTERS``. A letter that also keeps the rows whose
lists changed, with both lists (:mod:`databaker.layers.changed_lists`), is not read at all: the
changed outcodes' files are the earlier version's files with those lists replaced, and its
counts and sample the earlier ones with those rows' changes applied.

Work is done a letter at a time on whole columns, which bounds memory by the largest letters.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import TypeAdapter, ValidationError

from databaker.concurrency import WORKERS
from databaker.layers import sampling
from databaker.layers.changed_lists import addresses_per_element_now, with_changed_lists
from databaker.layers.element_fields import ElementFields
from databaker.layers.element_files import ELEMENT_FILES, LetterElements
from databaker.layers.joined_addresses import read_joined, with_address_columns
from databaker.layers.sampling import sampled, uprn_ranks
from databaker.layers.versions import content_hash
from databaker.parquet_leaves import decoded, string_leaves
from databaker.progress import Progress, logged
from databaker.resources import LayerStore, LayerStoreError
from databaker.staging import is_data_file, partition_records

ElementIds: TypeAlias = Callable[[pa.Array], pa.Array]
"""Maps distinct elements of a layer's list column to the IDs they count for."""
LETTER_FOLDER = "first_letter="
ADDRESS_SAMPLE = pa.schema([("uprn", pa.string()), ("ids", pa.int32())])
_RANKED_SAMPLE = ADDRESS_SAMPLE.append(pa.field("rank", pa.uint64()))
_LETTER_SAMPLE = _RANKED_SAMPLE.append(pa.field("letter", pa.string()))
REPEATING_COLUMNS = ("postcode", "outcode", "addressbase_source")
"""Columns with few distinct values per file, worth dictionary-encoding (plus the IDs column)."""
ROW_DIGESTS = "_row_digests.json"
"""Beside a version's manifest: the digest of each outcode file's rows, by file name."""
LETTERS = "_letters.json"
"""Beside a version's manifest: what each letter of the joined table gave it (a
:class:`LetterFiles` by letter), and what its files were derived under."""
SAMPLE = "_address_sample.arrow"
"""Beside a version's manifest: its address sample with each address's rank and letter, from
which a later bake that reads only some letters draws its own. An Arrow IPC file, not named
``.parquet``: whoever reads a version's ``*.parquet`` expects outcode files only."""
ENCODING = f"outcode files 2, pyarrow {pa.__version__}"
"""What a row digest is taken under, with the rows: the number goes up whenever
:func:`_parquet_bytes` changes how it writes, so that no file of another encoding is reused."""


@dataclass
class LetterFiles:
    """What one letter of the joined table gave a version: what a later bake takes instead of
    reading the letter, when the letter still holds ``token``."""

    token: str | None
    """The token of the letter's record when it was read; None (it had no record) is never
    matched."""
    rows: int
    sources: list[str]
    addresses_per_element: dict[str, int]
    """How many addresses each distinct element of the list column is on. The IDs they count
    for are found for the whole version (``element_ids`` is code, which may change when the
    rows do not)."""
    outcodes: int
    empty_outcodes: int
    rows_with_ids: int
    rows_in_files: int
    files: dict[str, str]
    row_digests: dict[str, str]


@dataclass(frozen=True)
class _KeptLetters:
    """``LETTERS``' content."""

    derived_under: str
    """:func:`_derivation` of the files: letters derived under another are read again."""
    letters: dict[str, LetterFiles]


_KEPT_LETTERS = TypeAdapter(_KeptLetters)


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
    """Each file's rows' digest (under ``ENCODING``; a list of records', under
    ``ELEMENT_FILES`` too), by file name: what ``ROW_DIGESTS`` keeps."""
    reused: int = 0
    """Files copied from the earlier version, their rows unchanged, rather than encoded."""
    reused_files: tuple[str, ...] = ()
    """Their names: files of the earlier version, copied unless the caller keeps them where
    they are."""
    letters: dict[str, LetterFiles] = field(default_factory=dict)
    """What each letter of the joined table gave, by letter (``A``): what ``LETTERS`` keeps."""
    letters_kept: int = 0
    """Letters not read at all: their token was the earlier version's, their files copied."""
    letters_in_part: int = 0
    """Letters whose files were derived only for the outcodes their record says changed since
    the earlier version read them; the others' files copied."""
    letters_from_earlier_files: int = 0
    """Of those, the letters not read: their changed outcodes' files derived from the earlier
    version's and the lists that changed."""
    ranked_sample: pa.Table = field(
        default_factory=lambda: pa.Table.from_batches([], schema=_LETTER_SAMPLE)
    )
    """``address_sample`` with each address's rank and letter: what ``SAMPLE`` keeps."""
    derived_under: str = ""
    """What the files follow from besides the rows (:func:`_derivation`), kept in ``LETTERS``."""

    def keep(self, store: LayerStore, prefix: str) -> None:
        """Write, beside the files of the version under ``prefix``, what a later bake reads
        to reuse them (:meth:`EarlierFiles.kept`)."""
        store.write_bytes(prefix + ROW_DIGESTS, json.dumps(self.row_digests).encode())
        letters = _KeptLetters(self.derived_under, self.letters)
        store.write_bytes(prefix + LETTERS, json.dumps(asdict(letters)).encode())
        sink = pa.BufferOutputStream()
        options = pa.ipc.IpcWriteOptions(compression="zstd")
        with pa.ipc.new_file(sink, _LETTER_SAMPLE, options=options) as file:
            file.write_table(self.ranked_sample)
        store.write_bytes(prefix + SAMPLE, sink.getvalue().to_pybytes())


def write_outcode_files(
    store: LayerStore,
    *,
    joined_prefix: str,
    output_prefix: str,
    columns: list[str],
    ids_column: str,
    element_ids: ElementIds | None = None,
    element_fields: ElementFields | None = None,
    addresses: str,
    earlier: EarlierFiles | None = None,
    copy_reused: bool = True,
    on_encoded: Callable[[str, pa.Table], None] | None = None,
    changed_lists: Mapping[str, pa.Table] | None = None,
    workers: int = WORKERS,
    progress: Progress = logged,
) -> OutcodeFiles:
    """Write the layer's files under ``output_prefix`` from the joined table under
    ``joined_prefix``. ``element_ids`` names the ID each distinct element of the list column
    counts for in ``addresses_per_id`` (the element itself by default); an address's elements
    must count for distinct IDs. With ``element_fields``, the list's elements are texts of
    records, and the files hold them as structs (:mod:`databaker.layers.element_files`).
    ``addresses`` is the prefix of the partitioned AddressBase, whose letters give the
    ``columns`` a joined letter does not hold (:mod:`databaker.layers.joined_addresses`; a
    joined table written with them, as an earlier bake's was, is read as it is).

    Letters are cut ``workers`` at a time (reading, sorting and parquet encoding run outside
    the GIL); memory is bounded by the largest letters in flight. The files go to the store as
    many at a time as it keeps requests in flight. A file whose rows have the digest the
    ``earlier`` version's file of that name has is copied from it, not encoded. A letter whose
    record holds the token it held when ``earlier`` read it is not read: its files are copied
    and what it gave is ``earlier``'s (:func:`_sample_with_kept` says when its sample allows
    it). A letter whose record says which outcodes' rows changed since the token ``earlier``
    read it under is read, but only those outcodes are cut and derived; the other outcodes'
    files are copied, and the letter's counts and sample are what reading it whole gives.
    ``changed_lists`` gives, by letter, the rows whose lists changed since the token
    ``earlier`` read the letter under (:mod:`databaker.layers.changed_lists`): such a letter
    read in part is not read at all, its changed outcodes' files derived from ``earlier``'s
    files and those rows, and its counts from ``earlier``'s and theirs (for a layer whose lists
    hold plain IDs, a letter of one AddressBase source, whose changed outcodes' earlier files
    hold their rows: not published empty). Without ``copy_reused``, files of ``earlier`` are
    not copied but named (``OutcodeFiles.reused_files``), for the caller to say where they
    are. ``on_encoded`` is called with the name and rows of each file encoded (an empty file's
    rows have no columns), from the threads that encode them. ``progress`` counts the letters
    done, read or not.
    """
    derived_under = _derivation(columns, ids_column, element_fields)

    def derive(
        name: str, rows: pa.Table, elements: LetterElements | None
    ) -> tuple[str, str, tuple[str, str] | None]:
        """File ``name`` of ``rows`` (no columns: an empty file): its SHA-256, its rows' digest
        and, when the earlier version's file holds the same rows, the copy that stands for it;
        else it is encoded and written."""
        digest, published = _file_rows(rows, ids_column, elements)
        if earlier is not None and earlier.reusable(name, digest):
            return earlier.files[name], digest, (earlier.prefix + name, output_prefix + name)
        encoded = published()
        data = _parquet_bytes(encoded, ids_column)
        write(output_prefix + name, data)
        if on_encoded is not None:
            on_encoded(name, encoded)
        return content_hash(data), digest, None

    def letter_from_files(letter: str) -> _Letter | None:
        """The letter's files and counts from ``earlier``'s and its changed lists, the letter
        not read; None when its earlier files cannot give them."""
        before = in_part[letter][0]
        changed = _changed_by_outcode(from_files[letter])
        names = {f"{outcode}.parquet": rows for outcode, rows in changed.items()}
        if any(
            before.row_digests.get(name, _EMPTY_FILE_DIGEST) == _EMPTY_FILE_DIGEST for name in names
        ):
            return None
        now = {}
        try:
            for name, data in zip(
                names, store.read_all([earlier.key(n) for n in names]), strict=True
            ):
                rows = _as_cut(pq.read_table(pa.BufferReader(data)), columns)
                now[name] = (
                    None if rows is None else with_changed_lists(rows, ids_column, names[name])
                )
                if now[name] is None:
                    return None
        except (LayerStoreError, OSError, pa.ArrowException):
            return None
        lists = from_files[letter]
        had, has = (
            int(pc.sum(pc.greater(pc.list_value_length(lists[side]), 0)).as_py() or 0)
            for side in ("before", "after")
        )
        summary = replace(
            before,
            token=tokens.get(letter),
            addresses_per_element=addresses_per_element_now(before.addresses_per_element, lists),
            rows_with_ids=before.rows_with_ids - had + has,
            files=dict(before.files),
            row_digests=dict(before.row_digests),
        )
        reused = [
            (earlier.prefix + name, output_prefix + name)
            for name in before.files
            if name not in now
        ]
        for name, rows in now.items():
            if not pc.max(pc.list_value_length(rows[ids_column])).as_py():
                summary.empty_outcodes += 1
                summary.rows_in_files -= rows.num_rows
                rows = pa.table({})
            summary.files[name], summary.row_digests[name], copy = derive(name, rows, None)
            reused += [copy] if copy else []
        summary.files = dict(sorted(summary.files.items()))
        summary.row_digests = dict(sorted(summary.row_digests.items()))
        return _Letter(summary, _updated_sample(earlier, letter, lists), reused, held=True)

    def write_letter(letter: str, whole: bool = False) -> _Letter:
        """The letter's files; ``whole``: read it, even if its earlier files could give them."""
        if letter in from_files and not whole:
            from_earlier = letter_from_files(letter)
            if from_earlier is not None:
                done.advance()
                return from_earlier
        table = read_joined(store, by_letter[letter], lists=[ids_column])
        table = with_address_columns(
            store,
            table,
            letter=letter,
            record=records[letter],
            addresses=addresses,
            columns=[name for name in columns if name != "outcode"],
        )
        outcodes = _Outcodes.of(table, ids_column)
        before, changed = in_part.get(letter, (None, []))
        derived = None if before is None else _outcodes_to_derive(outcodes, changed, before)
        reused: list[tuple[str, str]] = []
        files: dict[str, str] = {}
        row_digests: dict[str, str] = {}
        elements = (
            None if element_fields is None else LetterElements.of(element_fields, table[ids_column])
        )
        # An outcode none of whose addresses has an ID is the empty file: its rows are neither
        # sorted nor taken.
        wanted = set(outcodes.names) if derived is None else derived & set(outcodes.names)
        with_ids = {n for n, i in zip(outcodes.names, outcodes.with_ids.tolist(), strict=True) if i}
        for outcode in sorted(wanted - with_ids):
            name = f"{outcode}.parquet"
            files[name], row_digests[name], copy = derive(name, pa.table({}), elements)
            reused += [copy] if copy else []
        cut = _with_letter_elements(table, ids_column, elements)
        only = None if wanted & with_ids == set(outcodes.names) else wanted & with_ids
        for outcode, part, _ in _split_by_outcode(cut, ids_column, only, outcodes):
            name = f"{outcode}.parquet"
            files[name], row_digests[name], copy = derive(name, part.select(columns), elements)
            reused += [copy] if copy else []
        if before is not None:
            for name in (f"{outcode}.parquet" for outcode in outcodes.names):
                if name not in files:
                    reused.append((earlier.prefix + name, output_prefix + name))
                    files[name] = before.files[name]
                    row_digests[name] = before.row_digests[name]
        sample = _sample_of(table, ids_column)
        summary = LetterFiles(
            token=tokens.get(letter),
            rows=table.num_rows,
            sources=sorted(pc.unique(table["addressbase_source"]).drop_null().to_pylist()),
            addresses_per_element=_addresses_per_element(table[ids_column]),
            outcodes=len(outcodes.names),
            empty_outcodes=int(np.count_nonzero(outcodes.with_ids == 0)),
            rows_with_ids=int(outcodes.with_ids.sum()),
            rows_in_files=int(outcodes.rows[outcodes.with_ids > 0].sum()),
            files=dict(sorted(files.items())),
            row_digests=dict(sorted(row_digests.items())),
        )
        if not whole or letter not in from_files:
            done.advance()
        letter_sample = sample.append_column("letter", pa.repeat(letter, sample.num_rows))
        return _Letter(summary, letter_sample, reused)

    by_letter = keys_by_letter(store, joined_prefix)
    by_letter = {folder.removeprefix(LETTER_FOLDER): keys for folder, keys in by_letter.items()}
    records = partition_records(store, joined_prefix, list(by_letter))
    tokens = {letter: record.token if record else None for letter, record in records.items()}
    kept = {
        letter: summary
        for letter in by_letter
        if earlier is not None
        and (summary := earlier.unread(letter, tokens[letter], derived_under)) is not None
    }
    in_part = {
        letter: (before, record.changes.outcodes)
        for letter, record in records.items()
        if earlier is not None
        and letter not in kept
        and record is not None
        and record.changes is not None
        and (before := earlier.unread(letter, record.changes.since, derived_under)) is not None
    }
    from_files = {
        letter: rows
        for letter, rows in (changed_lists or {}).items()
        if letter in in_part and element_fields is None and len(in_part[letter][0].sources) == 1
    }
    with (
        progress("writing outcode files", len(by_letter), "letters") as done,
        store.writes() as write,
        ThreadPoolExecutor(max_workers=max(workers, 1)) as pool,
    ):
        read = [letter for letter in by_letter if letter not in kept]
        letters = dict(zip(read, pool.map(write_letter, read), strict=True))
        samples = {letter: each.sample for letter, each in letters.items() if not each.held}
        held = {letter: each for letter, each in letters.items() if each.held}
        sample = (
            _sample_with_kept(samples, kept, earlier, held)
            if kept or held
            else _sample_of_all(samples)
        )
        if sample is None:
            again = [*kept, *held]
            letters |= dict(
                zip(
                    again,
                    pool.map(lambda letter: write_letter(letter, whole=True), again),
                    strict=True,
                )
            )
            kept = {}
            sample = _sample_of_all({letter: written.sample for letter, written in letters.items()})
        for letter, summary in kept.items():
            reused = [(earlier.prefix + name, output_prefix + name) for name in summary.files]
            letters[letter] = _Letter(summary, sample.slice(0, 0), reused)
            done.advance()
    letters = dict(sorted(letters.items()))
    reused = [pair for letter in letters.values() for pair in letter.reused]
    if copy_reused:
        store.copy_all(reused)
    summaries = [letter.summary for letter in letters.values()]
    per_element = sum((Counter(summary.addresses_per_element) for summary in summaries), Counter())
    return OutcodeFiles(
        outcodes=sum(summary.outcodes for summary in summaries),
        empty_outcodes=sum(summary.empty_outcodes for summary in summaries),
        rows=sum(summary.rows for summary in summaries),
        rows_with_ids=sum(summary.rows_with_ids for summary in summaries),
        rows_in_files=sum(summary.rows_in_files for summary in summaries),
        sources=tuple(sorted(set().union(*(summary.sources for summary in summaries)))),
        files=dict(sorted(kv for summary in summaries for kv in summary.files.items())),
        addresses_per_id=_addresses_per_id(per_element, element_ids),
        address_sample=sample.select(ADDRESS_SAMPLE.names),
        row_digests=dict(sorted(kv for summary in summaries for kv in summary.row_digests.items())),
        reused=len(reused),
        reused_files=tuple(sorted(target[len(output_prefix) :] for _, target in reused)),
        letters={letter: written.summary for letter, written in letters.items()},
        letters_kept=len(kept),
        letters_in_part=len(in_part),
        letters_from_earlier_files=sum(letter.held for letter in letters.values()),
        ranked_sample=sample,
        derived_under=derived_under,
    )


def _sample_of_all(samples: Mapping[str, pa.Table]) -> pa.Table:
    """The sample of the letters, given each one's lowest ranks, by letter; rows in the order
    of their letters, then of their positions."""
    return sampled(_concat([samples[letter] for letter in sorted(samples)]))


def _sample_with_kept(
    samples: Mapping[str, pa.Table],
    kept: Mapping[str, LetterFiles],
    earlier: EarlierFiles,
    held: Mapping[str, _Letter] | None = None,
) -> pa.Table | None:
    """:func:`_sample_of_all`, the letters read given by ``samples`` and the ``kept`` ones, not
    read, by the sample of the ``earlier`` version; None when that sample cannot tell. The
    ``held`` letters, not read either, hold the addresses they held then: each is given by the
    earlier sample's share of it, its counts of IDs as they are now, and counts as kept.

    Ranks follow from UPRNs alone, and the earlier sample held the lowest ranks of the earlier
    version, whose kept letters held the rows they hold now: every kept row whose rank is at
    most the earlier sample's highest was in it. The sample is exact if the earlier one held
    every row of the kept letters, or if it is full and its highest rank is no higher than the
    earlier sample's. Otherwise (the letters read lost low ranks) rows of the kept letters that
    the earlier sample left out might belong in it.
    """
    before = earlier.letters.sample if earlier.letters else _concat([])
    candidates = dict(samples)
    for letter in kept:
        candidates[letter] = before.filter(pc.equal(before["letter"], letter))
    unread = dict(kept)
    for letter, each in (held or {}).items():
        candidates[letter] = each.sample
        unread[letter] = each.summary
    sample = _sample_of_all(candidates)
    in_sample = sum(candidates[letter].num_rows for letter in unread)
    if in_sample == sum(summary.rows for summary in unread.values()):
        return sample
    if (
        sample.num_rows == sampling.SAMPLE_SIZE
        and before.num_rows
        and pc.max(sample["rank"]).as_py() <= pc.max(before["rank"]).as_py()
    ):
        return sample
    return None


def _concat(samples: list[pa.Table]) -> pa.Table:
    return pa.concat_tables([pa.Table.from_batches([], schema=_LETTER_SAMPLE), *samples])


def _derivation(
    columns: list[str], ids_column: str, element_fields: ElementFields | None = None
) -> str:
    """What a letter's files follow from besides its rows."""
    derivation: dict = {"encoding": ENCODING, "columns": columns, "ids_column": ids_column}
    if element_fields is not None:
        derivation["element_fields"] = list(element_fields.names)
        derivation["element_files"] = ELEMENT_FILES
    return json.dumps(derivation)


def rows_digest(rows: pa.Table) -> str:
    """SHA-256 of ``ENCODING`` and the rows as Arrow's IPC stream writes them, once copied
    into buffers of their own: a slice's buffers keep its parent's offsets and bytes, so equal
    rows sliced from different tables would otherwise be written differently."""
    return _own_rows_digest(rows.take(np.arange(rows.num_rows)))


def _own_rows_digest(rows: pa.Table, encoding: str = ENCODING) -> str:
    """:func:`rows_digest` of rows whose buffers hold them alone, as ``take`` leaves them,
    taken under ``encoding``."""
    own = rows.combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, own.schema) as stream:
        stream.write_table(own)
    digest = hashlib.sha256(encoding.encode())
    digest.update(sink.getvalue())
    return digest.hexdigest()


_EMPTY_FILE_DIGEST = _own_rows_digest(pa.table({}))
"""The row digest of an empty outcode file (no columns, no rows)."""


@dataclass(frozen=True)
class EarlierFiles:
    """A complete version whose files a bake may reuse: where they are, their SHA-256 and
    their rows' digests, by file name; and what each joined letter gave it (None: not known,
    every letter is read)."""

    prefix: str
    files: dict[str, str]
    row_digests: dict[str, str]
    letters: EarlierLetters | None = None
    held_at: dict[str, str] = field(default_factory=dict)
    """Where the files the version holds elsewhere are (the prefix of another version), by
    name; the others are under ``prefix``."""

    @classmethod
    def kept(
        cls,
        store: LayerStore,
        prefix: str,
        files: dict[str, str],
        held_at: dict[str, str] | None = None,
    ) -> EarlierFiles | None:
        """The version under ``prefix`` with its manifest's ``files`` (those it holds elsewhere
        at ``held_at``); None when it has no row digests (a version written before they were
        kept) or they cannot be read."""
        try:
            digests = json.loads(store.read_bytes(prefix + ROW_DIGESTS))
        except (LayerStoreError, ValueError):
            return None
        if not isinstance(digests, dict):
            return None
        return cls(prefix, files, digests, EarlierLetters.kept(store, prefix), held_at or {})

    def reusable(self, name: str, digest: str) -> bool:
        return name in self.files and self.row_digests.get(name) == digest

    def key(self, name: str) -> str:
        """Where the file ``name`` is."""
        return self.held_at.get(name, self.prefix) + name

    def unread(self, letter: str, token: str | None, derived_under: str) -> LetterFiles | None:
        """What ``letter`` gave this version if it held ``token`` then, its files were derived
        as they would be now and they are this version's; else None: the letter is read."""
        if self.letters is None or self.letters.derived_under != derived_under:
            return None
        known = self.letters.letters.get(letter)
        if (
            known is None
            or token is None
            or known.token != token
            or known.files.keys() != known.row_digests.keys()
            or any(self.files.get(name) != sha for name, sha in known.files.items())
        ):
            return None
        return known


@dataclass(frozen=True)
class EarlierLetters:
    """What each joined letter gave an earlier version (``LETTERS``), and its sample
    (``SAMPLE``)."""

    derived_under: str
    letters: dict[str, LetterFiles]
    sample: pa.Table
    """Ranked, with each address's letter (``_LETTER_SAMPLE``)."""

    @classmethod
    def kept(cls, store: LayerStore, prefix: str) -> EarlierLetters | None:
        """The version's; None when either is missing (a version written before they were
        kept) or cannot be read, or the sample was ranked otherwise than addresses are now
        (its addresses would not be the lowest ranks any more)."""
        try:
            letters = _KEPT_LETTERS.validate_json(store.read_bytes(prefix + LETTERS))
            with pa.ipc.open_file(pa.py_buffer(store.read_bytes(prefix + SAMPLE))) as file:
                sample = file.read_all().select(_LETTER_SAMPLE.names).cast(_LETTER_SAMPLE)
            ranked_as_now = np.array_equal(uprn_ranks(sample["uprn"]), sample["rank"].to_numpy())
        except (LayerStoreError, ValidationError, OSError, KeyError, pa.ArrowException):
            return None
        if not ranked_as_now:
            return None
        return cls(letters.derived_under, letters.letters, sample)


@dataclass
class _Letter:
    summary: LetterFiles
    sample: pa.Table
    """Its lowest-ranked addresses (``_LETTER_SAMPLE``): the whole sample is among them; for a
    letter not read (``held``), the earlier version's sample of it instead."""
    reused: list[tuple[str, str]] = field(default_factory=list)
    held: bool = False
    """Derived from the earlier version's files and the changed lists, the letter not read."""


def _as_cut(rows: pa.Table, columns: list[str]) -> pa.Table | None:
    """An outcode file's rows typed as a letter's rows are when it is cut into files, whose
    ``addressbase_source`` is read dictionary-encoded (a letter of one source: the file's own
    dictionary is the letter's); None when the file does not hold ``columns``, in order."""
    if rows.column_names != columns:
        return None
    where = rows.schema.get_field_index("addressbase_source")
    if where < 0:
        return rows
    return rows.set_column(
        where, "addressbase_source", pc.dictionary_encode(rows["addressbase_source"])
    )


def _updated_sample(earlier: EarlierFiles, letter: str, changed: pa.Table) -> pa.Table:
    """The ``earlier`` version's sample of ``letter``, the addresses whose lists ``changed``
    counting the IDs they have now."""
    before = earlier.letters.sample if earlier.letters else _concat([])
    share = before.filter(pc.equal(before["letter"], letter))
    at = pc.index_in(share["uprn"], value_set=changed["uprn"].combine_chunks())
    now = pc.list_value_length(changed["after"]).take(at).cast(pa.int32())
    return share.set_column(
        share.schema.get_field_index("ids"), "ids", pc.coalesce(now, share["ids"])
    )


def _addresses_per_element(ids: pa.ChunkedArray) -> dict[str, int]:
    """Elements are distinct within an address, so counting them counts addresses. The work in
    Python is per distinct element, not per address."""
    counted = pc.value_counts(pc.list_flatten(ids))
    values = counted.field("values").to_pylist()
    return dict(zip(values, counted.field("counts").to_pylist(), strict=True))


def _addresses_per_id(
    per_element: Mapping[str, int], element_ids: ElementIds | None
) -> dict[str, int]:
    """An address's elements count for distinct IDs, so the addresses of an ID's elements add
    up; ``element_ids`` is called once, on the distinct elements of every letter."""
    if element_ids is None:
        return dict(sorted(per_element.items()))
    ids = element_ids(pa.array(list(per_element), pa.string())).to_pylist()
    totals: Counter[str] = Counter()
    for value, count in zip(ids, per_element.values(), strict=True):
        totals[value] += count
    return dict(sorted(totals.items()))


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


def _with_letter_elements(
    table: pa.Table, ids_column: str, elements: LetterElements | None
) -> pa.Table:
    """``table`` as it is cut into files: a list of records holds its elements as
    ``elements`` numbers them, each split into fields once for the whole letter."""
    if elements is None:
        return table
    where = table.schema.get_field_index(ids_column)
    return table.set_column(where, ids_column, elements.lists)


def _file_rows(
    rows: pa.Table, ids_column: str, elements: LetterElements | None
) -> tuple[str, Callable[[], pa.Table]]:
    """The digest of a file's ``rows`` (its own, as ``take`` leaves them; no columns for an
    empty file), and a call giving them as the file holds them, made only if it is encoded.

    A list of records is digested as its element texts (:meth:`FileElements.texts`) under
    ``ELEMENT_FILES`` too, and published as structs of dictionaries; other lists are digested
    as published, as :func:`rows_digest` takes them."""
    if elements is None or not rows.num_columns:
        decoded_rows = _plain_column(rows, ids_column) if rows.num_columns else rows
        return _own_rows_digest(decoded_rows), lambda: decoded_rows
    where = rows.schema.get_field_index(ids_column)
    file = elements.file(rows[ids_column])
    digest = _own_rows_digest(
        rows.set_column(where, ids_column, file.texts()), f"{ENCODING}, {ELEMENT_FILES}"
    )
    return digest, lambda: rows.set_column(where, ids_column, file.published())


def _plain_column(rows: pa.Table, name: str) -> pa.Table:
    """``rows`` with the column ``name`` (if they have it) as the files hold it, its strings
    plain: letters are read with their list column and postcodes dictionary-encoded, for speed
    (:func:`read_joined`), and a file written from a letter's dictionary would hold every value
    of the letter."""
    where = rows.schema.get_field_index(name)
    if where < 0 or decoded(kind := rows.schema.field(where).type) == kind:
        return rows
    return rows.set_column(where, name, rows[name].cast(decoded(kind)))


def keys_by_letter(store: LayerStore, prefix: str) -> dict[str, list[str]]:
    """Data files per letter folder; Athena's ``UNLOAD`` names its files without a suffix."""
    letters: dict[str, list[str]] = defaultdict(list)
    for key in store.list_keys(prefix):
        folder, _, name = key[len(prefix) :].partition("/")
        if folder.startswith(LETTER_FOLDER) and name and is_data_file(key):
            letters[folder].append(key)
    return dict(sorted(letters.items()))


@dataclass(frozen=True)
class _Outcodes:
    """Which outcode each row of a letter is in, and how many rows (with IDs) each outcode has:
    found on whole columns, the outcodes among the distinct postcodes, without sorting."""

    postcodes: pa.DictionaryArray
    """The letter's ``postcode`` column, dictionary-encoded."""
    names: list[str]
    """The letter's distinct outcodes."""
    codes: np.ndarray
    """Each row's outcode: its position in ``names``."""
    rows: np.ndarray
    """Each outcode's rows, in the order of ``names``."""
    with_ids: np.ndarray
    """Each outcode's rows with at least one ID, in the order of ``names``."""

    @classmethod
    def of(cls, table: pa.Table, ids_column: str) -> _Outcodes:
        postcodes = _referenced(pc.dictionary_encode(table["postcode"]).combine_chunks())
        outcodes = pc.dictionary_encode(outcodes_of(postcodes.dictionary))
        codes = outcodes.indices.to_numpy()[postcodes.indices.to_numpy()]
        has_ids = pc.list_value_length(table[ids_column]).to_numpy(zero_copy_only=False) > 0
        count = len(outcodes.dictionary)
        return cls(
            postcodes,
            outcodes.dictionary.to_pylist(),
            codes,
            np.bincount(codes, minlength=count),
            np.bincount(codes[has_ids], minlength=count),
        )


def _referenced(postcodes: pa.DictionaryArray) -> pa.DictionaryArray:
    """``postcodes`` with a dictionary of the values they hold: one made of row groups'
    dictionaries may hold others, which would count as outcodes without rows."""
    indices = postcodes.indices
    if not postcodes.null_count and np.all(
        np.bincount(indices.to_numpy(), minlength=len(postcodes.dictionary))
    ):
        return postcodes
    return pc.dictionary_encode(postcodes.cast(postcodes.type.value_type))


def _outcodes_to_derive(
    outcodes: _Outcodes, changed: Collection[str], before: LetterFiles
) -> set[str]:
    """The outcodes a letter read in part cuts and derives files for: those its record says
    changed, and any other whose earlier file cannot hold its rows now (it had none, or its
    rows then and now differ in having IDs at all), which a record true to its rows never
    leaves. The outcodes of ``before`` that the letter no longer has get no file."""
    derived = set(changed)
    for name, with_ids in zip(outcodes.names, outcodes.with_ids.tolist(), strict=True):
        digest = before.row_digests.get(f"{name}.parquet")
        if digest is None or (digest == _EMPTY_FILE_DIGEST) != (with_ids == 0):
            derived.add(name)
    return derived


def _split_by_outcode(
    table: pa.Table,
    ids_column: str,
    only: Collection[str] | None = None,
    outcodes: _Outcodes | None = None,
) -> Iterator[tuple[str, pa.Table, int]]:
    """Yield ``(outcode, rows, rows with IDs)`` per outcode (of those in ``only``, if given),
    rows sorted by postcode then UPRN, with an ``outcode`` column; each outcode's rows are a
    table of their own, whose buffers hold those rows only (as :func:`_own_rows_digest` needs
    them). ``outcodes`` is :meth:`_Outcodes.of` the table, when the caller has it.

    Postcodes are canonical (``OUTCODE INW``, a three-character inward code), so sorting by
    postcode also groups each outcode's rows together: a space sorts before any letter or digit.
    Each outcode's rows are taken from the letter's table in one gather: sorting the whole
    letter first would copy every row once more. Only the rows of the outcodes wanted are
    gathered into one chunk and sorted: the letter's other rows are not copied at all.
    """
    if table.num_rows == 0:
        return
    outcodes = outcodes or _Outcodes.of(table, ids_column)
    postcodes, codes = outcodes.postcodes, outcodes.codes
    if only is None:
        table = table.combine_chunks()
    else:
        wanted = np.array([name in only for name in outcodes.names], dtype=bool)
        selected = np.flatnonzero(wanted[codes])
        if not len(selected):
            return
        table = _rows_at(table, selected)
        postcodes, codes = postcodes.take(pa.array(selected)), codes[selected]
    order = _postcode_then_uprn(table, postcodes)
    row_outcodes = codes[order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(row_outcodes)) + 1])
    ends = np.append(starts[1:], len(order))
    order = pa.array(order)
    for code, start, end in zip(row_outcodes[starts].tolist(), starts, ends, strict=True):
        name = outcodes.names[code]
        rows = _plain_column(table.take(order.slice(start, end - start)), "postcode")
        yield (
            name,
            rows.append_column("outcode", pa.repeat(name, end - start)),
            int(outcodes.with_ids[code]),
        )


def _rows_at(table: pa.Table, positions: np.ndarray) -> pa.Table:
    """The rows at ``positions`` (ascending), in one chunk, gathered a chunk at a time: Arrow
    takes strings from a table of many chunks by joining the chunks first, which copies every
    row of the table."""
    parts = []
    start = 0
    for batch in table.to_batches():
        end = start + batch.num_rows
        low, high = np.searchsorted(positions, [start, end])
        if high > low:
            parts.append(batch.take(pa.array(positions[low:high] - start)))
        start = end
    return pa.Table.from_batches(parts, schema=table.schema).combine_chunks()


def _changed_by_outcode(rows: pa.Table) -> dict[str, pa.Table]:
    """The changed rows (:mod:`databaker.layers.changed_lists`) of each outcode they are in."""
    outcodes = pc.dictionary_encode(outcodes_of(rows["postcode"]).combine_chunks())
    codes = outcodes.indices.to_numpy()
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(outcodes.dictionary) + 1))
    return {
        name: rows.take(pa.array(order[starts[code] : starts[code + 1]]))
        for code, name in enumerate(outcodes.dictionary.to_pylist())
    }


def outcodes_of(postcodes: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The outcode of each canonical postcode (``OUTCODE INW``): all but its last four
    characters. What names a row's file."""
    return pc.utf8_slice_codeunits(postcodes, 0, -4)


_UPRN_DIGITS = 12
_UPRN_BITS = 44
"""Bits of a UPRN's sort key: ``10**12 * 16`` is less than ``2**44``."""


def _postcode_then_uprn(table: pa.Table, postcodes: pa.DictionaryArray) -> np.ndarray:
    """The order of the rows by postcode then UPRN, both as text, as Arrow sorts them, given
    the table's ``postcode`` column dictionary-encoded.

    A drop's UPRNs are 1 to 12 digits (its rules see to it), and such a UPRN sorts as text in
    the order of its value padded with zeros to 12 digits, then its length; postcodes sort by
    their rank among the distinct postcodes. Integers sort several times faster than strings.
    The sort is numpy's stable one (a merge of the runs it finds), for speed: a drop that lists
    each postcode's addresses together, in UPRN order, comes in long runs that it merges in a
    few passes, ten times faster than a quicksort, and rows in no order sort as fast either way.
    UPRNs are unique in a joined table whose checks passed; rows that repeat a key would keep
    their order. A table holding other UPRNs is sorted as Arrow sorts it (UPRNs as numbers,
    where they are numbers).
    """
    uprn = table["uprn"]
    if (
        not pa.types.is_string(uprn.type)
        or postcodes.null_count
        or pc.all(pc.ascii_is_decimal(uprn), skip_nulls=False).as_py() is not True
        or pc.max(pc.binary_length(uprn)).as_py() > _UPRN_DIGITS
    ):
        keys = _plain_column(table.select(["postcode", "uprn"]), "postcode")
        order = pc.sort_indices(keys, [("postcode", "ascending"), ("uprn", "ascending")])
        return order.to_numpy()
    digits = pc.binary_length(uprn).to_numpy().astype(np.int64)
    padded = pc.cast(uprn, pa.int64()).to_numpy() * 10 ** (_UPRN_DIGITS - digits)
    uprn_key = (padded * 16 + digits).astype(np.uint64)
    ranks = pc.rank(postcodes.dictionary, tiebreaker="first").to_numpy().astype(np.uint64)
    postcode_key = ranks[postcodes.indices.to_numpy()]
    if len(ranks) < 1 << (64 - _UPRN_BITS):
        return np.argsort((postcode_key << np.uint64(_UPRN_BITS)) | uprn_key, kind="stable")
    return np.lexsort((uprn_key, postcode_key))


def _parquet_bytes(table: pa.Table, ids: str) -> bytes:
    """The outcode file, laid out for the consumers' ``polars.read_parquet`` of the whole file
    (docs/benchmarks.md, "Outcode file layout"): one row group, as every group more costs them;
    zstd; dictionary encoding where values repeat, the IDs' elements among them (their leaves),
    not for unique values such as UPRNs and addresses; statistics only for the columns a reader
    filters on; the order of the rows, postcode then UPRN as text, declared. No Arrow schema is
    stored, so columns read dictionary-encoded here reach consumers as the plain strings they
    are in Parquet."""
    repeating = [c for c in table.column_names if c in REPEATING_COLUMNS or c == ids]
    sorted_by = [c for c in ("postcode", "uprn") if c in table.column_names]
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        use_dictionary=string_leaves(table.schema, repeating),
        write_statistics=sorted_by,
        row_group_size=max(table.num_rows, 1),
        sorting_columns=pq.SortingColumn.from_ordering(
            table.schema, [(c, "ascending") for c in sorted_by]
        ),
        store_schema=False,
    )
    return sink.getvalue()
