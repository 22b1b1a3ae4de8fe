"""The line-by-line reading of an AddressBase drop: Python cuts the files into numbered lines,
``addressbase_cleaned_raw.duckdb.sql`` judges them, rejecting each bad line by its number.

This reading defines what a drop holds; the fast reading (``fast_reading.py``) keeps the same
rows or declines. Cutting the lines here rather than in DuckDB's ``read_csv`` fixes what a
line is, whatever the files:

- each file is opened by its own name, on disk or on S3, never taken for a glob pattern
  (``read_csv`` reads ``part[1].csv`` as ``part1.csv``), and decompressed when its name ends
  in ``.gz`` in any case, by the same code as in the fast reading
  (:func:`databaker.sources.opened_input`);
- a line ends at LF, or CRLF; any other carriage return is a character of its line (which
  the rules then reject), so line numbers never drift;
- a line longer than ``MAX_LINE_BYTES`` is kept as its first MiB, marked ``too_long``, and
  rejected: one runaway line (a file without line breaks, say) costs a row, not the bake;
- the text must be UTF-8 (a byte-order mark starting a file is passed over): a file that is
  not is refused, named with its first bad line.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from databaker.csv_records import record_pattern
from databaker.resources import DuckDBQueryEngine, SqlQuery
from databaker.resources.query_engine import QueryError
from databaker.sources import opened_input

RAW_QUERY = SqlQuery.beside(__file__, "addressbase_cleaned_raw")
MAX_LINE_BYTES = 1 << 20
"""The longest line read as a record, in bytes, its line ending left out."""
READ_BYTES = 4 << 20
LINES = pa.schema(
    [
        ("source_file", pa.dictionary(pa.int32(), pa.string())),
        ("line_no", pa.int64()),
        ("raw_line", pa.string()),
        ("too_long", pa.bool_()),
    ]
)
"""The lines as the query reads them (``drop_lines_read``): a too long line holds its start."""

_LF, _CR = b"\n"[0], b"\r"[0]
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"


class DropUnreadable(Exception):
    """A file of the drop cannot be read to its end (a truncated or corrupt gzip stream, an
    unreachable object, bytes that are not UTF-8): a wrong file, not a bad line, so the drop
    is refused whole."""


def read_line_by_line(
    reader: DuckDBQueryEngine,
    files: list[str],
    *,
    addressbase_source: str,
    output: str,
    rejects_output: str,
) -> dict[str, Any]:
    """Write the drop's kept rows as ``first_letter=<L>/`` partitions under the folder
    ``output`` and its report of rejected rows to ``rejects_output`` (URIs); return the
    query's summary (``lines``, ``rejected_rows``, ``first_rejected``).

    Raises :class:`DropUnreadable` when a file cannot be read to its end.
    """
    stopped: list[DropUnreadable] = []

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from drop_lines(files)
        except DropUnreadable as error:
            stopped.append(error)
            raise

    params = {
        "record_pattern": record_pattern(5),
        "addressbase_source": addressbase_source,
        "output": output,
        "rejects_output": rejects_output,
    }
    lines = pa.RecordBatchReader.from_batches(LINES, batches())
    try:
        summary = reader.run_sql(RAW_QUERY, params, streams={"drop_lines_read": lines})
    except QueryError:
        # DuckDB passes on an error raised while it reads a stream only as text.
        if stopped:
            raise stopped[0] from None
        raise
    return summary.to_pylist()[0]


def drop_lines(files: list[str]) -> Iterator[pa.RecordBatch]:
    """Every line of ``files``, in order, numbered from 1 in each file, as ``LINES`` batches."""
    for file in files:
        try:
            yield from _file_lines(file)
        except (OSError, EOFError) as error:
            raise DropUnreadable(f"{file}: {error}") from None


def _file_lines(file: str) -> Iterator[pa.RecordBatch]:
    """The lines of one file, a batch per read of ``READ_BYTES``.

    A read ends inside a line: that open line is held and completed by the next read, as the
    start of the next batch or, when it has grown too long to hold, as a row of its own.
    """
    lines_before = 0
    open_line = _OpenLine(file, 1, b"")
    with opened_input(file) as stream:
        for piece in _pieces(stream):
            first_end = piece.find(b"\n")
            if first_end < 0:
                open_line.extend(piece)
                continue
            cut = piece.rfind(b"\n") + 1
            if open_line.length + first_end > _held():
                open_line.extend(piece[:first_end])
                yield open_line.too_long_row()
                lines_before += 1
                data = piece[first_end + 1 : cut]
            else:
                data = open_line.held + piece[:cut]
            if data:
                batch = _lines(file, data, lines_before)
                lines_before += batch.num_rows
                yield batch
            open_line = _OpenLine(file, lines_before + 1, piece[cut:])
    if open_line.length > _held():
        yield open_line.too_long_row()
    elif open_line.length:
        yield _lines(file, open_line.held, lines_before)


def _pieces(stream: BinaryIO) -> Iterator[bytes]:
    """The stream's bytes in reads of ``READ_BYTES``, less a UTF-8 byte-order mark at its
    start: a mark of the encoding, not text of the first line."""
    start = b""
    while len(start) < len(_BYTE_ORDER_MARK) and (piece := stream.read(READ_BYTES)):
        start += piece
    yield start.removeprefix(_BYTE_ORDER_MARK)
    while piece := stream.read(READ_BYTES):
        yield piece


def _held() -> int:
    """Bytes held of a line left open by a read: the longest line and a CR."""
    return MAX_LINE_BYTES + 1


class _OpenLine:
    """A line a read ended inside: its first :func:`_held` bytes and its whole length. Its
    bytes are checked as UTF-8 as they pass, those not held included."""

    def __init__(self, file: str, number: int, start: bytes) -> None:
        self.file, self.number = file, number
        self.held, self.length = b"", 0
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.extend(start)

    def extend(self, data: bytes) -> None:
        self._check(data)
        if len(self.held) < _held():
            self.held += data[: _held() - len(self.held)]
        self.length += len(data)

    def too_long_row(self) -> pa.RecordBatch:
        """The line, ended, as a row marked too long."""
        self._check(b"", final=True)
        return _batch(self.file, self.number, pa.array([_start(self.held)]), [True])

    def _check(self, data: bytes, *, final: bool = False) -> None:
        try:
            self._decoder.decode(data, final)
        except UnicodeDecodeError:
            raise DropUnreadable(f"{self.file}:{self.number}: not UTF-8 encoded") from None


def _lines(file: str, data: bytes, lines_before: int) -> pa.RecordBatch:
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
        raise DropUnreadable(_first_bad_line(file, text, offsets, lines_before)) from None
    too_long = lengths > MAX_LINE_BYTES
    if too_long.any():
        lines = pa.array(
            [
                _start(text[offsets[i] : offsets[i + 1]].tobytes()) if cut else line
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


def _start(line: bytes) -> str:
    """A too long line's first ``MAX_LINE_BYTES`` bytes, less a character they would cut."""
    end = MAX_LINE_BYTES
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
