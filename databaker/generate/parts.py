"""Split a stream of CSV lines over N part files, written under temporary names.

Part ``p`` receives rows ``[p*total//files, (p+1)*total//files)`` so the concatenation of
the parts does not depend on how many parts there are. Files become visible under their
final names only in ``commit()``; gzip output carries no timestamp or name, so it is
byte-identical between runs. Compression and disk writes run on a background thread
(zlib releases the GIL) so they overlap with building the next chunk.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import queue
import threading
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

PART_PREFIX = "addressbase_cleaned_"
_DONE = None


def tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


class Output:
    """Binary sink on ``path``; gzip without mtime or file name when ``compress``."""

    def __init__(self, path: Path, compress: bool) -> None:
        self.raw: BinaryIO = open(path, "wb")  # noqa: SIM115 (closed in close())
        self.sink: BinaryIO = self.raw
        if compress:
            self.sink = gzip.GzipFile(
                filename="", mode="wb", fileobj=self.raw, compresslevel=6, mtime=0
            )

    def write(self, data: memoryview | bytes) -> None:
        self.sink.write(data)

    def close(self) -> None:
        if self.sink is not self.raw:
            self.sink.close()
        self.raw.close()


class PartWriter:
    """Writes line arrays to ``files`` part files in ``folder``, rows split evenly."""

    def __init__(self, folder: Path, total: int, files: int, compress: bool) -> None:
        width = max(3, len(str(files - 1)))
        suffix = ".csv.gz" if compress else ".csv"
        self.paths = [folder / f"{PART_PREFIX}{p:0{width}d}{suffix}" for p in range(files)]
        self.bounds = [p * total // files for p in range(files + 1)]
        self.folder, self.compress = folder, compress
        self.part, self.row = 0, 0
        folder.mkdir(parents=True, exist_ok=True)
        self.queue: queue.Queue = queue.Queue(maxsize=3)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def write(self, lines: pa.Array) -> None:
        """Queue whole lines (each already ending in a newline) for the right parts."""
        start = 0
        while start < len(lines):
            while self.row == self.bounds[self.part + 1]:
                self.part += 1
            take = min(len(lines) - start, self.bounds[self.part + 1] - self.row)
            self._put((self.part, _line_bytes(lines, start, start + take), lines))
            start += take
            self.row += take

    def _put(self, item: tuple | None) -> None:
        while self.thread.is_alive():
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        raise RuntimeError("address writer thread stopped") from self.error

    def _drain(self) -> None:
        part, handle = 0, None
        try:
            handle = Output(tmp_path(self.paths[0]), self.compress)
            while (item := self.queue.get()) is not _DONE:
                while item[0] > part:
                    handle.close()
                    part += 1
                    handle = Output(tmp_path(self.paths[part]), self.compress)
                handle.write(item[1])
            while part < len(self.paths) - 1:
                handle.close()
                part += 1
                handle = Output(tmp_path(self.paths[part]), self.compress)
        except BaseException as exc:
            self.error = exc
        finally:
            if handle is not None:
                handle.close()

    def _finish(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._put(_DONE)
        self.thread.join()
        if self.error is not None:
            raise RuntimeError("writing address parts failed") from self.error

    def commit(self) -> list[Path]:
        """Finish every part, rename them into place and drop stale parts of earlier runs."""
        self._finish()
        for path in self.paths:
            os.replace(tmp_path(path), path)
        keep = {p.name for p in self.paths}
        for old in self.folder.glob(f"{PART_PREFIX}*.csv*"):
            if old.name not in keep and old.name[len(PART_PREFIX) :].split(".")[0].isdigit():
                old.unlink()
        return self.paths

    def abort(self) -> None:
        """Stop writing and delete the temporary files; final names are left untouched."""
        with contextlib.suppress(RuntimeError):
            self._finish()
        for path in self.paths:
            tmp_path(path).unlink(missing_ok=True)


def _line_bytes(lines: pa.Array, start: int, end: int) -> memoryview:
    """Zero-copy view of the concatenated UTF-8 text of ``lines[start:end]``."""
    _, offsets, data = lines.buffers()
    dtype = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    offs = np.frombuffer(offsets, dtype=dtype, count=len(lines) + 1 + lines.offset)[lines.offset :]
    return memoryview(data)[int(offs[start]) : int(offs[end])]
