"""Progress of long work: a few plain lines at a modest rate whatever the work's length, bars
on a terminal, and the lines of a bake's long steps in its output and its run's event log."""

from __future__ import annotations

import csv
import gzip
import io
import re
import threading
from pathlib import Path

import dagster as dg
import pytest

from databaker.bake import bake
from databaker.cli import main
from databaker.definitions import Settings
from databaker.layers.versions import content_hash, publish
from databaker.progress import Bar, Lines, on_stream, silent
from databaker.resources import LocalLayerStore
from databaker.sources import SAMPLE_ADDRESSBASE
from databaker_tests.test_layer_versions import LAYER, bake_version

LINE = re.compile(r"^(?P<what>.+): (?P<done>[\d,]+) of (?P<total>[\d,]+) (?P<unit>.+) \(\d+%, ")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def counted(lines: list[str]) -> list[tuple[int, int]]:
    """``(done, total)`` of each progress line."""
    found = [LINE.match(line) for line in lines]
    assert all(found), lines
    return [(int(m["done"].replace(",", "")), int(m["total"].replace(",", ""))) for m in found]


def test_steady_work_says_a_line_per_tenth_ending_at_the_total():
    clock, said = Clock(), []
    meter = Lines("writing outcode files", 102_400, "files", said.append, clock=clock)
    with meter:
        for _ in range(102_400):
            clock.now += 2**-13  # exactly 1.25 s a tenth
            meter.advance()

    assert counted(said) == [(tenth * 10_240, 102_400) for tenth in range(1, 11)]
    assert said[-1] == "writing outcode files: 102,400 of 102,400 files (100%, 12.5 s)"


def test_quick_work_says_one_line_at_its_end():
    clock, said = Clock(), []
    with Lines("copying", 1_000, "files", said.append, clock=clock) as meter:
        for _ in range(1_000):
            clock.now += 0.0002
            meter.advance()

    assert said == ["copying: 1,000 of 1,000 files (100%, 0.2 s)"]


def test_slow_work_says_a_line_every_five_seconds_and_no_more():
    clock, said = Clock(), []
    with Lines("copying", 10, "files", said.append, clock=clock) as meter:
        for _ in range(10):
            clock.now += 12.0  # each file a tenth, after more than five seconds
            meter.advance()
    assert counted(said) == [(n, 10) for n in range(1, 11)]

    clock, said = Clock(), []
    with Lines("copying", 600, "files", said.append, clock=clock) as meter:
        for _ in range(600):
            clock.now += 1.0  # ten minutes: lines every five seconds, tenths among them
            meter.advance()
    assert counted(said) == [(n, 600) for n in range(5, 601, 5)]


def test_work_of_unknown_size_says_a_line_every_five_seconds_and_its_total_at_the_end():
    clock, said = Clock(), []
    with Lines("reading the drop", None, "rows", said.append, clock=clock) as meter:
        for _ in range(23):
            clock.now += 1.0
            meter.advance(1_000)

    assert said == [
        "reading the drop: 5,000 rows (5.0 s)",
        "reading the drop: 10,000 rows (10.0 s)",
        "reading the drop: 15,000 rows (15.0 s)",
        "reading the drop: 20,000 rows (20.0 s)",
        "reading the drop: 23,000 rows (23.0 s)",
    ]


def test_work_counted_from_many_threads_reaches_its_total_once():
    said: list[str] = []
    with Lines("joining", 8 * 5_000, "blocks", said.append) as meter:
        threads = [
            threading.Thread(target=lambda: [meter.advance() for _ in range(5_000)])
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    done = counted(said)
    assert done == sorted(done)
    assert [count for count, _ in done].count(40_000) == 1
    assert done[-1] == (40_000, 40_000)
    assert len(said) <= 11


def test_work_that_fails_says_no_end():
    said: list[str] = []
    with pytest.raises(OSError), Lines("copying", 10, "files", said.append) as meter:
        meter.advance(3)
        raise OSError("disk full")

    assert said == []


def test_a_terminal_gets_a_bar_and_anything_else_plain_lines():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, log = Terminal(), io.StringIO()
    with on_stream(terminal)("copying", 4, "files") as bar:
        bar.advance(4)
    with on_stream(log)("copying", 4, "files") as lines:
        lines.advance(4)

    assert isinstance(bar, Bar) and isinstance(lines, Lines)
    assert "\r" in terminal.getvalue() and "100%" in terminal.getvalue()
    assert log.getvalue() == "copying: 4 of 4 files (100%, 0.0 s)\n"


def test_generate_prints_its_progress_as_lines_when_its_output_is_no_terminal(tmp_path, capsys):
    code = main(
        ["generate", "--addresses", "50000", "--divisions", "12", "--out", str(tmp_path),
         "--files", "3"]
    )  # fmt: skip

    printed = capsys.readouterr()
    assert code == 0
    progress = printed.err.splitlines()
    assert 1 <= len(progress) <= 11
    assert {m["what"] for m in map(LINE.match, progress)} == {"writing 3 part files"}
    assert counted(progress)[-1] == (50_000, 50_000)
    assert printed.out.startswith("50,000 addresses in ")


def test_a_bake_prints_and_logs_progress_from_inside_its_long_steps(tmp_path):
    letters = set()
    for part in SAMPLE_ADDRESSBASE.rglob("*.csv.gz"):
        with gzip.open(part, "rt", newline="") as rows:
            letters |= {row[2][0] for row in csv.reader(rows)}
    printed: list[str] = []

    with dg.DagsterInstance.ephemeral() as instance:
        bake(settings=Settings(data_root=str(tmp_path)), instance=instance, echo=printed.append)
        [run] = instance.get_runs()
        logged = [
            f"  {entry.step_key}: {entry.user_message}"
            for entry in instance.all_logs(run.run_id)
            if not entry.is_dagster_event
        ]

    step = "current_elections_version"
    writing = [line for line in printed if line.startswith(f"  {step}: writing outcode files: ")]
    assert counted([line.split(": ", 1)[1] for line in writing])[-1] == (
        len(letters),
        len(letters),
    )
    assert (
        printed.index(f"{step} ...")
        < printed.index(writing[-1])
        < printed.index(next(line for line in printed if line.startswith(f"{step} done")))
    )
    assert writing[-1] in logged
    assert any(
        line.startswith("  current_ballots_joined_to_address_base: joining ") for line in printed
    )
    assert any(line.startswith("  current_elections_parquet: publishing bake ") for line in printed)


def test_a_rollback_reports_the_files_it_copies(tmp_path, capsys):
    store = LocalLayerStore(root=str(tmp_path))
    old = {f"LS{n}.parquet": f"old {n}".encode() for n in range(1, 8)}
    new = {**old, **{f"LS{n}.parquet": f"new {n}".encode() for n in (2, 3, 5)}}
    bake_version(store, "20261101T000000Z-aaaaaaaa", old)
    bake_version(store, "20261201T000000Z-bbbbbbbb", new)
    publish(store, LAYER, "20261201T000000Z-bbbbbbbb", progress=silent)
    differing = [name for name in old if content_hash(old[name]) != content_hash(new[name])]

    code = main(["rollback", "--to", "20261101T000000Z-aaaaaaaa", "--data-root", str(tmp_path)])

    printed = capsys.readouterr()
    assert code == 0, printed.err
    progress = [line for line in printed.err.splitlines() if LINE.match(line)]
    assert counted(progress)[-1] == (len(differing), len(differing)) == (3, 3)
    assert progress[-1].startswith("publishing bake 20261101T000000Z-aaaaaaaa: 3 of 3 files copied")
    assert "3 files changed, 4 unchanged" in printed.out
    assert Path(tmp_path, LAYER, "LS2.parquet").read_bytes() == b"old 2"
