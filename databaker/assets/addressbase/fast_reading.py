"""The fast reading of an AddressBase drop: blocks of whole lines parsed and judged as Arrow
columns, on every core.

It keeps exactly the rows, with exactly the values, that the line-by-line reading
(``addressbase_cleaned_raw.duckdb.sql``) keeps, or it declines the drop. At the first block
holding a line it cannot be sure to read the same way, it raises :class:`DropNotReadFast`:
a line that breaks a rule, a record spanning lines, a quote inside a bare field (Arrow's
CSV parser is more lenient than RFC 4180 there), a byte-order mark, a lone carriage return, a
NUL byte, or a line that may be longer than ``MAX_LINE_BYTES``. The caller then reads the drop
line by line (``line_by_line.py``), which names every rejected line. A clean drop, the usual
case, is read once, at the speed of Arrow's CSV parser.

One thread decompresses the files in order and cuts them into blocks of whole lines; workers
parse, judge and write the blocks, each worker into its own parquet file per postcode first
letter, as ``first_letter=<L>/part-<worker>.parquet`` under the output prefix.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from databaker.assets.addressbase.line_by_line import MAX_LINE_BYTES
from databaker.concurrency import WORKERS
from databaker.line_reading import InputUnreadable
from databaker.progress import Progress, logged
from databaker.resources import LayerStore
from databaker.sources import opened_input

BLOCK_BYTES = 4 << 20
ROW_GROUP_ROWS = 122_880
"""Rows per parquet row group, as DuckDB writes them."""

FIELDS = ("uprn", "address", "postcode", "location", "address_type")
POSTCODE = r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$"
CANONICAL_LOCATION = (
    r"^SRID=4326;POINT\((?P<lon>-?[0-9]+(?:\.[0-9]+)?) (?P<lat>-?[0-9]+(?:\.[0-9]+)?)\)$"
)
LOCATION = (
    r"^(?:SRID=4326;)?POINT\s*\(\s*(?P<lon>-?[0-9]+(?:\.[0-9]+)?)"
    r"\s+(?P<lat>-?[0-9]+(?:\.[0-9]+)?)\s*\)$"
)
GREAT_BRITAIN = {"longitude": (-10.0, 3.0), "latitude": (49.0, 62.0)}
REPEATED_COLUMNS = ("postcode", "outcode", "address_type", "addressbase_source", "source_file")
"""Columns worth dictionary-encoding in parquet; UPRNs and addresses are (nearly) unique."""
LETTER_PARQUET = {
    "compression": "snappy",
    "use_dictionary": list(REPEATED_COLUMNS),
    "write_statistics": ["uprn", "postcode", "longitude", "latitude"],
    "store_schema": False,
}
"""How a letter's parquet files are written, in row groups of ``ROW_GROUP_ROWS``."""

_QUOTE, _COMMA, _LF, _CR, _SPACE = b'"'[0], b","[0], b"\n"[0], b"\r"[0], b" "[0]
_CANONICAL_PREFIX = "SRID=4326;POINT("
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"
_PARSING = {
    "read_options": pcsv.ReadOptions(
        column_names=list(FIELDS), use_threads=False, block_size=2 * BLOCK_BYTES
    ),
    "parse_options": pcsv.ParseOptions(newlines_in_values=True),
    "convert_options": pcsv.ConvertOptions(
        column_types=dict.fromkeys(FIELDS, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    ),
}


class DropNotReadFast(Exception):
    """The drop holds a line the fast reading cannot take as it stands; says which kind."""


def write_drop_partitions(
    store: LayerStore,
    files: list[str],
    *,
    addressbase_source: str,
    output: str,
    workers: int = WORKERS,
    progress: Progress = logged,
) -> None:
    """Write every address of the drop's ``files`` under the prefix ``output``, partitioned by
    first letter, with the columns of the line-by-line reading; ``progress`` counts the rows
    read, a block at a time.

    Raises :class:`DropNotReadFast` (or :class:`InputUnreadable`), leaving partial files under
    ``output`` for the caller to delete.
    """
    writers: list[_LetterWriters] = []
    local = threading.local()
    lock = threading.Lock()

    def write_block(block: _Block) -> None:
        if not hasattr(local, "writers"):
            with lock:
                local.writers = _LetterWriters(store, output, len(writers))
                writers.append(local.writers)
        rows = _judged(block, addressbase_source)
        local.writers.add(rows)
        read.advance(rows.num_rows)

    pending: set[Future[None]] = set()
    try:
        with (
            progress(f"reading {len(files):,} file(s) of the drop", None, "rows") as read,
            ThreadPoolExecutor(max_workers=workers) as pool,
        ):
            for block in _blocks(files):
                pending.add(pool.submit(write_block, block))
                if len(pending) >= 2 * workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()
            for future in pending:
                future.result()
            for future in [pool.submit(w.close) for w in writers]:
                future.result()
    finally:
        for letter_writers in writers:
            letter_writers.close_files()


@dataclass(frozen=True)
class _Block:
    file: str
    data: bytes


def _blocks(files: list[str]) -> Iterator[_Block]:
    """Each file's decompressed bytes in blocks of whole lines, about ``BLOCK_BYTES`` each."""
    for file in files:
        try:
            yield from _file_blocks(file)
        except (OSError, EOFError) as error:
            raise InputUnreadable(f"{file}: {error}") from None


def _file_blocks(file: str) -> Iterator[_Block]:
    """A line left open at the end of a read is carried into the next block, unless it is
    already too long (then it could grow without bound, and the drop is declined)."""
    with opened_input(file) as stream:
        tail = b""
        first = True
        while piece := stream.read(BLOCK_BYTES):
            if first and piece.startswith(_BYTE_ORDER_MARK):
                raise DropNotReadFast(f"{file} starts with a byte-order mark")
            first = False
            cut = piece.rfind(b"\n") + 1
            if cut == 0:
                tail += piece
            else:
                yield _Block(file, b"".join((tail, memoryview(piece)[:cut])))
                tail = piece[cut:]
            if len(tail) > MAX_LINE_BYTES + 1:
                raise DropNotReadFast(f"{file}: a line longer than {MAX_LINE_BYTES} bytes")
        if tail:
            yield _Block(file, tail)


def _judged(block: _Block, addressbase_source: str) -> pa.Table:
    """The block's rows with the columns of the raw table (and ``first_letter``), if every
    line is one the line-by-line reading would keep with these same values."""
    _require_plain_bytes(block)
    try:
        records = pcsv.read_csv(pa.BufferReader(block.data), **_PARSING)
    except pa.ArrowInvalid as error:
        raise DropNotReadFast(f"{block.file}: {str(error).splitlines()[0]}") from None
    _require_one_line_per_record(block, records)
    _require_short_lines(block, records)
    uprn, address, address_type = records["uprn"], records["address"], records["address_type"]
    _require(block, "a UPRN that is not 1 to 12 digits", pc.ascii_is_decimal(uprn))
    _require(block, "a UPRN that is not 1 to 12 digits", pc.less_equal(pc.binary_length(uprn), 12))
    if pc.any(pc.starts_with(uprn, "0")).as_py():
        uprn = pc.ascii_ltrim(uprn, "0")
        _require(block, "a UPRN of zero", pc.greater(pc.binary_length(uprn), 0))
    _require(block, "an empty address", pc.greater(pc.binary_length(address), 0))
    _require(block, "an address of whitespace only", pc.invert(pc.utf8_is_space(address)))
    postcode = _postcodes(block, records["postcode"])
    longitude, latitude = _points(block, records["location"])
    for name, values in (("longitude", longitude), ("latitude", latitude)):
        low, high = GREAT_BRITAIN[name]
        inside = pc.and_(pc.greater_equal(values, low), pc.less_equal(values, high))
        _require(block, "a location outside Great Britain", inside)
    rows = records.num_rows
    return pa.table(
        {
            "uprn": uprn,
            "address": address,
            "postcode": postcode,
            "outcode": pc.utf8_slice_codeunits(postcode, 0, -4),
            "longitude": longitude,
            "latitude": latitude,
            "address_type": address_type,
            "addressbase_source": _repeated(addressbase_source, rows),
            "source_file": _repeated(block.file, rows),
            "first_letter": pc.utf8_slice_codeunits(postcode, 0, 1),
        }
    )


def _require_plain_bytes(block: _Block) -> None:
    """Refuse the bytes on which Arrow's parser and the line-by-line reading could differ."""
    data = block.data
    if b"\x00" in data:
        raise DropNotReadFast(f"{block.file}: a NUL byte")
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        raise DropNotReadFast(f"{block.file}: a carriage return that does not end a line")
    if b'"' in data and not _strictly_quoted(np.frombuffer(data, dtype=np.uint8)):
        raise DropNotReadFast(f"{block.file}: a quote that is not RFC 4180 quoting")


def _strictly_quoted(data: np.ndarray) -> bool:
    """True when every quote opens or closes a quoted field, or doubles a quote inside one.

    Counting quotes from the start of a block of whole lines, odd ones open and even ones
    close a quoted field: an opening quote must start a field (or double the quote just
    closed), a closing quote must end one (or be doubled). A quote inside a bare field, which
    RFC 4180 leaves to the reader, breaks this and is left to the line-by-line reading.
    """
    quotes = np.flatnonzero(data == _QUOTE)
    if len(quotes) % 2:
        return False
    opening, closing = quotes[0::2], quotes[1::2]
    before = data[np.maximum(opening - 1, 0)]
    after = data[np.minimum(closing + 1, len(data) - 1)]
    return bool(
        np.all((opening == 0) | (before == _COMMA) | (before == _LF) | (before == _QUOTE))
        and np.all(
            (closing == len(data) - 1)
            | (after == _COMMA)
            | (after == _LF)
            | (after == _CR)
            | (after == _QUOTE)
        )
    )


def _require_one_line_per_record(block: _Block, records: pa.Table) -> None:
    """A record spanning lines is rejected line by line: refuse any line break inside a field.

    Arrow passes over blank lines, as the line-by-line reading does, so fewer records than
    lines means blank lines or a field holding a line break; only then are fields searched.
    """
    line_breaks = np.count_nonzero(np.frombuffer(block.data, dtype=np.uint8) == _LF)
    lines = int(line_breaks) + (not block.data.endswith(b"\n"))
    if records.num_rows == lines:
        return
    for name in FIELDS:
        breaks = pc.or_(
            pc.match_substring(records[name], "\n"), pc.match_substring(records[name], "\r")
        )
        _require(block, "a record spanning lines", pc.invert(breaks))


def _require_short_lines(block: _Block, records: pa.Table) -> None:
    """Refuse a block where a line may be longer than ``MAX_LINE_BYTES``. A line holds one
    record here, so its fields bound its length: quoted, a field takes two quotes more and its
    own quotes doubled, and commas part the fields."""
    lengths = functools.reduce(pc.add, [pc.binary_length(records[name]) for name in FIELDS])
    longest = pc.max(lengths).as_py() or 0
    if 2 * longest + 3 * len(FIELDS) - 1 > MAX_LINE_BYTES:
        raise DropNotReadFast(
            f"{block.file}: a line that may be longer than {MAX_LINE_BYTES} bytes"
        )


def _postcodes(block: _Block, text: pa.ChunkedArray) -> pa.ChunkedArray:
    """Postcodes as the line-by-line reading writes them: canonical ones as they are, others
    upper-cased, without whitespace, with one space before the inward code."""
    if pc.all(pc.match_substring_regex(text, POSTCODE)).as_py():
        return text
    _require(block, "a postcode with characters other than ASCII", pc.string_is_ascii(text))
    compact = pc.replace_substring_regex(pc.ascii_upper(text), r"\s", "")
    postcode = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(compact, 0, -3), pc.utf8_slice_codeunits(compact, -3), " "
    )
    length = pc.binary_length(compact)
    _require(
        block, "an invalid postcode", pc.and_(pc.greater_equal(length, 5), pc.less_equal(length, 7))
    )
    _require(block, "an invalid postcode", pc.match_substring_regex(postcode, POSTCODE))
    return postcode


def _points(block: _Block, location: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Longitude and latitude from ``SRID=4326;POINT(<lon> <lat>)``, also read without the SRID
    or with extra spaces, as the line-by-line reading reads them."""
    try:
        if pc.all(pc.match_substring_regex(location, CANONICAL_LOCATION)).as_py():
            return _canonical_points(location)
        point = pc.extract_regex(location, LOCATION)
        _require(block, "a location that is not SRID=4326;POINT(<lon> <lat>)", pc.is_valid(point))
        return tuple(pc.cast(pc.struct_field(point, [i]), pa.float64()) for i in (0, 1))
    except pa.ArrowInvalid:
        raise DropNotReadFast(f"{block.file}: a coordinate out of range") from None


def _canonical_points(location: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """The numbers of locations that all match ``CANONICAL_LOCATION``, cut where they stand.

    A canonical location holds one space, between its two numbers, so each value's bytes are
    cut at its prefix, its space and its closing parenthesis into the pieces ``<lon>``, `` ``,
    ``<lat>`` and ``)SRID=4326;POINT(`` (the next value's prefix): one string array over the
    same bytes, from which every fourth piece is a longitude. This is the regular
    expression's capture without its cost (a third of judging a block went to it).
    """
    longitudes, latitudes = [], []
    for chunk in location.chunks:
        rows = len(chunk)
        if rows == 0:
            continue
        _, offsets_buffer, data_buffer = chunk.buffers()
        offsets = np.frombuffer(offsets_buffer, np.int32)[chunk.offset : chunk.offset + rows + 1]
        data = np.frombuffer(data_buffer, np.uint8)
        spaces = offsets[0] + np.flatnonzero(data[offsets[0] : offsets[-1]] == _SPACE)
        cuts = np.empty(4 * rows, np.int32)
        cuts[0::4] = offsets[:-1] + len(_CANONICAL_PREFIX)
        cuts[1::4] = spaces
        cuts[2::4] = spaces + 1
        cuts[3::4] = offsets[1:] - 1
        pieces = pa.StringArray.from_buffers(4 * rows - 1, pa.py_buffer(cuts), data_buffer)
        longitudes.append(pieces.take(np.arange(0, 4 * rows, 4)))
        latitudes.append(pieces.take(np.arange(2, 4 * rows, 4)))
    return tuple(
        pc.cast(pa.chunked_array(numbers, pa.string()), pa.float64())
        for numbers in (longitudes, latitudes)
    )


def _require(block: _Block, breach: str, holds: pa.ChunkedArray) -> None:
    if pc.all(holds, skip_nulls=False).as_py() is not True:
        raise DropNotReadFast(f"{block.file}: {breach}")


def _repeated(value: str, rows: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(np.zeros(rows, dtype=np.int32), pa.array([value]))


@dataclass
class _LetterWriters:
    """One worker's parquet files, one per first letter, fed a row group at a time."""

    store: LayerStore
    output: str
    number: int
    pending: dict[str, list[pa.Table]] = field(default_factory=dict)
    writers: dict[str, tuple[pa.NativeFile, pq.ParquetWriter]] = field(default_factory=dict)

    def add(self, rows: pa.Table) -> None:
        letters = pc.dictionary_encode(rows["first_letter"]).combine_chunks()
        codes = letters.indices.to_numpy()
        order = np.argsort(codes, kind="stable")
        sorted_rows = rows.drop_columns("first_letter").take(order)
        starts = np.flatnonzero(np.diff(codes[order], prepend=-1))
        ends = np.append(starts[1:], len(order))
        for start, end in zip(starts, ends, strict=True):
            letter = letters.dictionary[int(codes[order[start]])].as_py()
            self.pending.setdefault(letter, []).append(sorted_rows.slice(start, end - start))
            if sum(part.num_rows for part in self.pending[letter]) >= ROW_GROUP_ROWS:
                self._flush(letter)

    def close(self) -> None:
        """Write the rows still pending and close the files."""
        for letter in list(self.pending):
            self._flush(letter)
        self.close_files()

    def close_files(self) -> None:
        """Close the files as they are (after a failure, the caller deletes them)."""
        for sink, writer in self.writers.values():
            writer.close()
            sink.close()
        self.writers.clear()

    def _flush(self, letter: str) -> None:
        rows = pa.concat_tables(self.pending.pop(letter))
        if letter not in self.writers:
            sink = self.store.open_output(
                f"{self.output}first_letter={letter}/part-{self.number}.parquet"
            )
            writer = pq.ParquetWriter(sink, rows.schema, **LETTER_PARQUET)
            self.writers[letter] = (sink, writer)
        self.writers[letter][1].write_table(rows, row_group_size=ROW_GROUP_ROWS)
