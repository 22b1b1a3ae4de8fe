"""Progress of long work, reported at a modest rate: the one place that decides how often.

Long work (reading a drop, a join, writing outcode files, a diff, a publish, generating data)
counts what it has done, per file, per block or per letter, never per row, into a
:class:`Meter` made by a :data:`Progress`. Two kinds of meter:

- :class:`Lines`, plain lines, for logs and for output that is not a terminal: a line when the
  work crosses another tenth of its total (at most one a second), when five seconds have
  passed since the last line, and once at the end, so a step of any length says a few lines,
  never thousands. Inside a Dagster step the lines go through Dagster's logger
  (:func:`logged`, the default of the steps' shared code), so they show in the run's event
  log in the UI and in ``databaker bake``'s output alike.
- :class:`Bar`, a tqdm bar redrawn in place, for a command whose output is a terminal
  (:func:`on_stream`).
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

import dagster as dg
from tqdm import tqdm

EVERY_SHARE = 0.1
"""A line each time the work crosses another tenth of its total..."""
AT_MOST_EVERY_SECONDS = 1.0
"""...unless a line was said less than a second ago (the end is always said)..."""
EVERY_SECONDS = 5.0
"""...and a line after five seconds without one, so long stretches of work show they move."""


class Meter(ABC):
    """Counts work done. As a context manager, a clean exit closes it (reporting the end) and
    an error leaves it as it is, for the error to speak."""

    @abstractmethod
    def advance(self, count: int = 1) -> None:
        """Count ``count`` more units done (safe from any thread)."""

    @abstractmethod
    def close(self) -> None:
        """The work is over: report where it ended."""

    @abstractmethod
    def abandon(self) -> None:
        """The work stopped early: report nothing more."""

    def __enter__(self) -> Meter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abandon()


Progress = Callable[[str, int | None, str], Meter]
"""Makes the meter of one piece of work: ``progress("writing outcode files", 26, "letters")``;
the total is None when it is not known in advance."""


class Lines(Meter):
    """Progress as plain lines through ``say``, at the rate of the module doc.

    A line reads ``writing outcode files: 13 of 26 letters (50%, 2.1 s)``, or without a total
    ``reading the drop: 1,200,000 rows (5.0 s)``. Each :meth:`advance` costs a lock and a clock
    reading: count per file, per block or per letter, not per row.
    """

    def __init__(
        self,
        what: str,
        total: int | None,
        unit: str,
        say: Callable[[str], None],
        *,
        every_share: float = EVERY_SHARE,
        at_most_every_seconds: float = AT_MOST_EVERY_SECONDS,
        every_seconds: float = EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.done = 0
        self._say = say
        self._step = total * every_share if total else math.inf
        self._gap, self._every = at_most_every_seconds, every_seconds
        self._clock = clock
        self._started = self._last_time = clock()
        self._next = self._step
        self._said: int | None = None
        self._lock = threading.Lock()

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self.done += count
            now = self._clock()
            since = now - self._last_time
            finished = self.total is not None and self.done >= self.total
            crossed = self.done >= self._next and since >= self._gap
            if finished or crossed or since >= self._every:
                self._report(now)

    def close(self) -> None:
        with self._lock:
            if self._said != self.done:
                self._report(self._clock())

    def abandon(self) -> None:
        """Nothing to tidy: the last line said stands."""

    def _report(self, now: float) -> None:
        if self._step != math.inf:
            self._next = (math.floor(self.done / self._step) + 1) * self._step
        self._last_time = now
        self._said = self.done
        self._say(self.line(now - self._started))

    def line(self, seconds: float) -> str:
        """What the work has done, ``seconds`` after it began."""
        if self.total is None:
            return f"{self.what}: {self.done:,} {self.unit} ({seconds:.1f} s)"
        share = self.done / self.total if self.total else 1.0
        return (
            f"{self.what}: {self.done:,} of {self.total:,} {self.unit} "
            f"({math.floor(share * 100):d}%, {seconds:.1f} s)"
        )


class Bar(Meter):
    """Progress as a tqdm bar on a terminal, redrawn in place (tqdm limits the redraws)."""

    def __init__(self, what: str, total: int | None, unit: str, stream: TextIO) -> None:
        self._bar = tqdm(
            total=total,
            desc=what,
            unit=f" {unit}",
            unit_scale=True,
            file=stream,
            dynamic_ncols=True,
            leave=True,
        )
        self._lock = threading.Lock()

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self._bar.update(count)

    def close(self) -> None:
        self._bar.close()

    def abandon(self) -> None:
        self._bar.close()


def logged(what: str, total: int | None, unit: str) -> Meter:
    """Lines through Dagster's logger: inside a step they join the run's event log (and
    ``databaker bake``'s output), from any thread of the step; elsewhere they go to the
    ``dagster`` Python logger."""
    return Lines(what, total, unit, dg.get_dagster_logger().info)


def silent(what: str, total: int | None, unit: str) -> Meter:
    """Counts and says nothing: for callers that want no progress."""
    return Lines(what, total, unit, lambda _line: None)


def on_stream(stream: TextIO) -> Progress:
    """For a command: bars when ``stream`` is a terminal, plain lines on it otherwise."""
    if stream.isatty():
        return lambda what, total, unit: Bar(what, total, unit, stream)

    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    return lambda what, total, unit: Lines(what, total, unit, say)
