"""Input files cut into numbered lines by Python, for a DuckDB query to judge line by line.

Both inputs are read this way (the AddressBase drop when it is not read fast, the ballots
export always), so that a line is the same thing whatever the input and whatever its bytes:

- each file is opened by its own name, on disk or on S3, never taken for a glob pattern
  (DuckDB's ``read_csv`` reads ``part[1].csv`` as ``part1.csv``), and decompressed when its
  name ends in ``.gz`` in any case (:func:`databaker.sources.opened_input`);
- a line ends at LF, or CRLF; any other carriage return, and any NUL byte, is a character of
  its line (which the query then rejects), so line numbers never drift and no text is lost;
- a line longer than the input's ``max_line_bytes`` is kept as its start, marked
  ``too_long``, to be rejected: one runaway line (a file without line breaks, say) costs a
  row, not the bake, and memory stays bounded by the longest line kept;
- the text must be UTF-8 (a byte-order mark starting a file is passed over): a file that is
  not is refused, named with its first bad line.

The lines reach DuckDB as an Arrow stream (``run_sql(..., streams=...)``), a batch per read of
``READ_BYTES``, never the whole file at once.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from databaker.resources import DuckDBQueryEngine, SqlQuery
from databaker.resources.query_engine import ParamValue, QueryError
from databaker.sources import opened_input

READ_BYTES = 4 << 20
LINES = pa.schema(
    [
        ("source_file", pa.dictionary(pa.int32(), pa.string())),
        ("line_no", pa.int64()),
        ("raw_line", pa.string()),
        ("too_long", pa.bool_()),
    ]
)
"""The lines as a query reads them: ``raw_line`` without its LF or CRLF, numbered from 1 in
each file; a too long line holds its first ``max_line_bytes`` (less a character they cut)."""

_LF, _CR = b"\n"[0], b"\r"[0]
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"


class InputUnreadable(Exception):
    """A file of an input cannot be read to its end (a truncated or corrupt gzip stream, an
    unreachable object, bytes that are not UTF-8): a wrong file, not a bad line, so the input
    is refused whole."""


def run_on_lines(
    reader: DuckDBQueryEngine,
    query: SqlQuery,
    params: Mapping[str, ParamValue],
    *,
    files: list[str],
    table: str,
    max_line_bytes: int,
) -> pa.Table:
    """Run ``query`` with the lines of ``files`` as the table ``table`` (columns ``LINES``),
    read once as they are cut; return the rows of its last statement.

    Raises :class:`InputUnreadable` when a file cannot be read to its end.
    """
    stopped: list[InputUnreadable] = []

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from numbered_lines(files, max_line_bytes=max_line_bytes)
        except InputUnreadable as error:
            stopped.append(error)
            raise

    lines = pa.RecordBatchReader.from_batches(LINES, batches())
    try:
        return reader.run_sql(query, params, streams={table: lines})
    except QueryError:
        # DuckDB passes on an error raised while it reads a stream only as text.
        if stopped:
            raise stopped[0] from None
        raise


def numbered_lines(files: list[str], *, max_line_bytes: int) -> Iterator[pa.RecordBatch]:
    """Every line of ``files``, in order, numbered from 1 in each file, as ``LINES`` batches;
    a line longer than ``max_line_bytes`` (its line ending left out) is marked too long."""
    for file in files:
        try:
            yield from _file_lines(file, max_line_bytes)
        except (OSError, EOFError) as error:
            raise InputUnreadable(f"{file}: {error}") from None


def _file_lines(file: str, max_line_bytes: int) -> Iterator[pa.RecordBatch]:
    """The lines of one file, a batch per read of ``READ_BYTES``.

    A read ends inside a line: that open line is held and completed by the next read, as the
    start of the next batch or, when it has grown too long to hold, as a row of its own.
    """
    held = max_line_bytes + 1  # the longest line and a CR
    lines_before = 0
    open_line = _OpenLine(file, 1, b"", max_line_bytes)
    with opened_input(file) as stream:
        for piece in _pieces(stream):
            first_end = piece.find(b"\n")
            if first_end < 0:
                open_line.extend(piece)
                continue
            cut = piece.rfind(b"\n") + 1
            if open_line.length + first_end > held:
                open_line.extend(piece[:first_end])
                yield open_line.too_long_row()
                lines_before += 1
                data = piece[first_end + 1 : cut]
            else:
                data = open_line.held + piece[:cut]
            if data:
                batch = _lines(file, data, lines_before, max_line_bytes)
                lines_before += batch.num_rows
                yield batch
            open_line = _OpenLine(file, lines_before + 1, piece[cut:], max_line_bytes)
    if open_line.length > held:
        yield open_line.too_long_row()
    elif open_line.length:
        yield _lines(file, open_line.held, lines_before, max_line_bytes)


def _pieces(stream: BinaryIO) -> Iterator[bytes]:
    """The stream's bytes in reads of ``READ_BYTES``, less a UTF-8 byte-order mark at its
    start: a mark of the encoding, not text of the first line."""
    start = b""
    while len(start) < len(_BYTE_ORDER_MARK) and (piece := stream.read(READ_BYTES)):
        start += piece
    yield start.removeprefix(_BYTE_ORDER_MARK)
    while piece := stream.read(READ_BYTES):
        yield piece


class _OpenLine:
    """A line a read ended inside: its first ``max_line_bytes + 1`` bytes (grown in place, a
    long line costs no copying per read) and its whole length. Its bytes are checked as UTF-8
    as they pass, those not held included."""

    def __init__(self, file: str, number: int, start: bytes, max_line_bytes: int) -> None:
        self.file, self.number, self.max_line_bytes = file, number, max_line_bytes
        self.held, self.length = bytearray(), 0
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.extend(start)

    def extend(self, data: bytes) -> None:
        self._check(data)
        room = self.max_line_bytes + 1 - len(self.held)
        if room > 0:
            self.held += data[:room]
        self.length += len(data)

    def too_long_row(self) -> pa.RecordBatch:
        """The line, ended, as a row marked too long."""
        self._check(b"", final=True)
        start = _start(self.held, self.max_line_bytes)
        return _batch(self.file, self.number, pa.array([start]), [True])

    def _check(self, data: bytes, *, final: bool = False) -> None:
        try:
            self._decoder.decode(data, final)
        except UnicodeDecodeError:
            raise InputUnreadable(f"{self.file}:{self.number}: not UTF-8 encoded") from None


def _lines(
    file: str, data: bytes | bytearray, lines_before: int, max_line_bytes: int
) -> pa.RecordBatch:
    """The lines of ``data`` (whole lines; the last one may lack its LF, at the end of a file)
    without their line endings, numbered from ``lines_before + 1``."""
    raw = np.frombuffer(data, dtype=np.uint8)
    breaks = np.flatnonzero(raw == _LF)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.append(breaks, len(raw))
    if data.endswith(b"\n"):
        starts, ends = starts[:-1], ends[:-1]
    by_crlf = (ends < len(raw)) & (ends > starts) & (raw[np.maximum(ends - 1, 0)] == _CR)
    ends = ends - by_crlf
    kept = np.ones(len(raw), dtype=bool)
    kept[breaks] = False
    kept[ends[by_crlf]] = False
    text = raw[kept]
    lengths = ends - starts
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    lines = pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets), pa.py_buffer(text))
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        raise InputUnreadable(_first_bad_line(file, text, offsets, lines_before)) from None
    too_long = lengths > max_line_bytes
    if too_long.any():
        lines = pa.array(
            [
                _start(text[offsets[i] : offsets[i + 1]].tobytes(), max_line_bytes) if cut else line
                for i, (cut, line) in enumerate(zip(too_long, lines.to_pylist(), strict=True))
            ]
        )
    return _batch(file, lines_before + 1, lines, too_long)


def _batch(file: str, first: int, lines: pa.Array, too_long: Any) -> pa.RecordBatch:
    rows = len(lines)
    return pa.record_batch(
        [
            pa.DictionaryArray.from_arrays(np.zeros(rows, dtype=np.int32), pa.array([file])),
            pa.array(np.arange(first, first + rows, dtype=np.int64)),
            lines,
            pa.array(too_long, type=pa.bool_()),
        ],
        schema=LINES,
    )


def _start(line: bytes | bytearray, max_line_bytes: int) -> str:
    """A too long line's first ``max_line_bytes`` bytes, less a character they would cut."""
    end = max_line_bytes
    while end and line[end] & 0xC0 == 0x80:
        end -= 1
    return line[:end].decode("utf-8")


def _first_bad_line(file: str, text: np.ndarray, offsets: np.ndarray, lines_before: int) -> str:
    try:
        text.tobytes().decode("utf-8")
    except UnicodeDecodeError as error:
        line = lines_before + int(np.searchsorted(offsets, error.start, side="right"))
        return f"{file}:{line}: not UTF-8 encoded"
    return f"{file}: not UTF-8 encoded"
