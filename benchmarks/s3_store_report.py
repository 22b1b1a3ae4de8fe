"""The S3 layer-store benchmark's figures, read from what each command printed, and its section
of ``docs/benchmarks.md``: each step on local disk beside the same step on S3, and the target
of issue 19, each S3 step at most twice its local figure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from benchmarks.changed_ballots import ChangedExport
from benchmarks.inputs import Inputs
from benchmarks.machine import describe_machine
from benchmarks.process import Measurement
from benchmarks.report import markdown_table, markers

BENCHMARK = "s3-store"
LOCAL, S3 = "local", "S3"
TARGET = 2.0
"""The most an S3 step may take, as a multiple of the same step on local disk."""
HEADER = ("step", LOCAL, S3, "S3/local")
STEPS = (
    "first bake: wall",
    "first bake: writing outcode files",
    "first bake: publish",
    "rebake: wall",
    "rebake: diff",
    "rebake: publish",
    "rollback: wall",
)

_WRITING = re.compile(r"writing outcode files: [0-9,]+ of [0-9,]+ \S+ \(100%, ([0-9.]+) s\)")
_DIFF = re.compile(
    r"comparing with the published layer: [0-9,]+ of [0-9,]+ \S+ \(100%, ([0-9.]+) s\)"
)
_COPYING = re.compile(
    r"publishing bake \S+: (?P<files>[0-9,]+) of [0-9,]+ files copied "
    r"\(100%, (?P<seconds>[0-9.]+) s\)"
)
_PUBLISHED = re.compile(r"^\s+published:\s+bake (?P<bake>\S+), ", re.MULTILINE)
_GENERATED_BALLOTS = re.compile(r"^(?P<text>[0-9,]+ ballots \(.*\) in [0-9,]+ rows) of ")


@dataclass(frozen=True)
class Copying:
    """The files a publish copied into the layer's stable path, and how long that took (to the
    0.1 s the progress line gives)."""

    files: int
    seconds: float

    def text(self, verb: str = "") -> str:
        rate = f", {self.files / self.seconds:,.0f} files/s" if self.seconds else ""
        files = f"{self.files:,} file{'' if self.files == 1 else 's'}"
        return f"{files}{verb} in {self.seconds:.1f} s{rate}"


@dataclass(frozen=True)
class BakeFigures:
    measurement: Measurement
    bake_id: str | None
    """The bake published, from the summary's ``published:`` line."""
    writing_seconds: float | None
    diff_seconds: float | None
    """None on a first bake: there is nothing published to compare with."""
    publish: Copying | None


@dataclass(frozen=True)
class RollbackFigures:
    measurement: Measurement
    copying: Copying | None
    """The files copied back: those the rebake had changed."""


@dataclass(frozen=True)
class StoreRun:
    """The three commands of one round on one store, and what the benchmark found after them.
    ``rebake`` and ``rollback`` are None when an earlier command failed."""

    round: int
    store: str
    root: str
    first: BakeFigures
    rebake: BakeFigures | None = None
    rollback: RollbackFigures | None = None
    first_files: dict[str, str] | None = None
    """The first bake's published files and their SHA-256, from its manifest."""
    restored: str | None = None
    """``yes`` when the rollback left the first bake's files published, byte for byte; else
    what is wrong, starting ``no:`` (None when a command failed before it could be checked)."""

    @property
    def commands(self) -> list[Measurement]:
        done = [self.first, self.rebake, self.rollback]
        return [figures.measurement for figures in done if figures is not None]

    @property
    def failed(self) -> bool:
        return any(not m.ok for m in self.commands) or len(self.commands) < 3


@dataclass(frozen=True)
class Section:
    size: str
    command: str
    date: str
    seaweedfs: str
    inputs: Inputs
    changed: ChangedExport
    runs: list[StoreRun]
    delay_ms: float = 0
    """The wait the latency proxy gave every answer of the S3 server (0: no proxy)."""


def parse_bake(measured: Measurement) -> BakeFigures:
    out = measured.stdout
    copying = _last(_COPYING, out)
    published = _PUBLISHED.search(out)
    return BakeFigures(
        measurement=measured,
        bake_id=published["bake"] if published else None,
        writing_seconds=_seconds(_last(_WRITING, out)),
        diff_seconds=_seconds(_last(_DIFF, out)),
        publish=_copying(copying),
    )


def parse_rollback(measured: Measurement) -> RollbackFigures:
    """A rollback prints its progress on standard error."""
    return RollbackFigures(measured, _copying(_last(_COPYING, measured.stderr)))


@dataclass(frozen=True)
class Figure:
    """One cell: its text, and the seconds compared with the other store's (None: nothing to
    compare)."""

    text: str
    seconds: float | None


def figures(run: StoreRun | None) -> dict[str, Figure]:
    """Each of ``STEPS`` for one store in one round."""
    if run is None:
        return dict.fromkeys(STEPS, Figure("—", None))
    first, rebake, rollback = run.first, run.rebake, run.rollback
    return {
        "first bake: wall": _wall(first.measurement),
        "first bake: writing outcode files": _step(first, first.writing_seconds),
        "first bake: publish": _publish(first),
        "rebake: wall": _wall(rebake.measurement if rebake else None),
        "rebake: diff": _step(rebake, rebake.diff_seconds if rebake else None),
        "rebake: publish": _publish(rebake),
        "rollback: wall": _rollback(rollback),
    }


def ratio(local: Figure, s3: Figure) -> float | None:
    """S3's seconds over local disk's; None when either is missing or local disk's rounds to
    0.0 s (too short to divide by)."""
    if local.seconds is None or s3.seconds is None or local.seconds <= 0:
        return None
    return s3.seconds / local.seconds


def round_table(local: StoreRun | None, s3: StoreRun | None) -> str:
    by_store = {LOCAL: figures(local), S3: figures(s3)}
    rows = []
    for step in STEPS:
        cells = [by_store[LOCAL][step], by_store[S3][step]]
        found = ratio(*cells)
        if found is not None:
            shown = f"{found:.2f}"
        elif cells[0].seconds == 0 and cells[1].seconds is not None:
            shown = "— (local under 0.1 s)"
        else:
            shown = "—"
        rows.append([step, cells[0].text, cells[1].text, shown])
    return markdown_table(HEADER, rows)


def over_target(runs: list[StoreRun]) -> list[str]:
    """A line for each step of each round whose S3 figure is more than ``TARGET`` times its
    local figure, to the two decimals the table shows."""
    lines = []
    for number, pair in _rounds(runs).items():
        local, s3 = figures(pair.get(LOCAL)), figures(pair.get(S3))
        for step in STEPS:
            found = ratio(local[step], s3[step])
            if found is not None and round(found, 2) > TARGET:
                lines.append(
                    f"round {number}, {step}: {found:.2f}x (S3 {s3[step].seconds:.1f} s, "
                    f"local {local[step].seconds:.1f} s), over the {TARGET:g}x target"
                )
    return lines


@dataclass(frozen=True)
class Check:
    text: str
    ok: bool


def checks(runs: list[StoreRun]) -> list[Check]:
    """What the benchmark verified after the commands, round by round: the rollback restored
    the first bake on each store, and both stores' first bakes published the same files."""
    found = []
    for number, pair in _rounds(runs).items():
        for store, run in pair.items():
            if run.restored is not None:
                found.append(
                    Check(
                        f"round {number}, {store}: the rollback restored the first bake's "
                        f"published files: {run.restored}",
                        run.restored == "yes",
                    )
                )
            rebake = run.rebake
            if rebake and rebake.measurement.ok and rebake.publish and not rebake.publish.files:
                found.append(
                    Check(
                        f"round {number}, {store}: the rebake changed no file, so the rollback "
                        "had nothing to restore: leave out more ballots (--drop-ballots)",
                        False,
                    )
                )
        files = [run.first_files for run in pair.values() if run.first_files is not None]
        if len(files) == 2:
            same = files[0] == files[1]
            found.append(
                Check(
                    f"round {number}: the first bakes published the same {len(files[0]):,} "
                    f"files (names and SHA-256) on both stores: {'yes' if same else 'NO'}",
                    same,
                )
            )
    return found


def _ballots_left_out(changed: ChangedExport) -> str:
    count = len(changed.left_out)
    return "one ballot" if count == 1 else f"{count:,} ballots"


def render(section: Section) -> str:
    """The section, markers included."""
    start, end = markers(section.size, BENCHMARK)
    spec = section.inputs.spec
    machine = {**describe_machine(), "SeaweedFS": section.seaweedfs}
    machine_lines = "\n".join(f"- {key}: {value}" for key, value in machine.items())
    inputs = "\n".join(f"- {key}: {value}" for key, value in _input_lines(section).items())
    tables = []
    for number, pair in _rounds(section.runs).items():
        first = next(run.store for run in section.runs if run.round == number)
        tables.append(
            f"### Round {number} ({first} first)\n\n{round_table(pair.get(LOCAL), pair.get(S3))}"
        )
    over = over_target(section.runs)
    verdict = (
        f"**Over the {TARGET:g}x target:**\n\n" + "\n".join(f"- {line}" for line in over)
        if over
        else f"**Every S3 step compared is within {TARGET:g}x of its local figure.**"
    )
    checked = "\n".join(f"- {check.text}" for check in checks(section.runs))
    failures = "\n".join(f"- {line}" for line in _failures(section.runs))
    if failures:
        failures = f"\n\n### Failed commands\n\n{failures}"
    return f"""{start}
## S3 layer store: {spec.addresses:,} addresses, {spec.divisions:,} divisions, \
rebake without {_ballots_left_out(section.changed)}{_delay_title(section.delay_ms)}

Generated by `benchmarks/s3_store.py`; edit that, not this section. What the figures mean:
[benchmarks/README.md](../benchmarks/README.md).

```sh
{section.command}
```

Run on {section.date}. {_rounds_text(section.runs)}{_delay_text(section.delay_ms)}

The target (issue 19): each step on S3 takes at most {TARGET:g}x its time on local disk
(S3/local: S3's seconds over local disk's).

{verdict}

### Machine

{machine_lines}

### Inputs

{inputs}

{chr(10).join(tables)}

Wall: the whole command, start-up included. Writing outcode files, diff (comparing with the
published layer) and publish (copying the changed files into the layer's stable path): the
progress lines the bake prints, to 0.1 s. Rollback: `databaker rollback --to <first bake>`.

### Checks

{checked or "- none: no store got as far as its rollback"}{failures}
{end}
"""


def _rounds(runs: list[StoreRun]) -> dict[int, dict[str, StoreRun]]:
    rounds: dict[int, dict[str, StoreRun]] = {}
    for run in runs:
        rounds.setdefault(run.round, {})[run.store] = run
    return rounds


def _rounds_text(runs: list[StoreRun]) -> str:
    count = max((run.round for run in runs), default=0)
    plural = "s" if count != 1 else ""
    order = "; which store goes first alternates from round to round" if count > 1 else ""
    return (
        f"{count} round{plural}, each baking, rebaking with a changed ballots export and rolling "
        f"back `current_elections` on local disk and on SeaweedFS's S3 on 127.0.0.1, each "
        f"command in a process of its own, into a fresh data root{order}. The inputs stay on "
        f"local disk; only the data root moves."
    )


def _input_lines(section: Section) -> dict[str, str]:
    inputs = section.inputs
    generated = next((m for line in inputs.report if (m := _GENERATED_BALLOTS.match(line))), None)
    ballots = generated["text"] if generated else "(generate's report not kept)"
    return {
        **inputs.drop_lines(),
        "ballots export (first bake)": f"{ballots}, "
        f"{inputs.ballots.stat().st_size / 1024**2:,.1f} MiB",
        "changed ballots export (rebake)": f"the same {section.changed.description()}",
    }


def _failures(runs: list[StoreRun]) -> list[str]:
    lines = []
    for run in runs:
        for name, figures_ in (
            ("first bake", run.first), ("rebake", run.rebake), ("rollback", run.rollback)
        ):  # fmt: skip
            if figures_ is None or figures_.measurement.ok:
                continue
            measured = figures_.measurement
            tail = measured.stderr.strip().splitlines()[-3:]
            lines.append(
                f"round {run.round}, {run.store}: the {name} failed: "
                + " / ".join(f"`{line}`" for line in tail)
            )
    return lines


def _wall(measured: Measurement | None) -> Figure:
    if measured is None:
        return Figure("not run", None)
    if measured.timed_out:
        return Figure(f"timed out after {measured.wall_seconds:.1f} s", None)
    if not measured.ok:
        return Figure(f"FAILED (exit {measured.returncode})", None)
    return Figure(f"{measured.wall_seconds:.1f} s", measured.wall_seconds)


def _step(bake: BakeFigures | None, seconds: float | None) -> Figure:
    if bake is None or not bake.measurement.ok:
        return Figure("—", None)
    return Figure("not printed", None) if seconds is None else Figure(f"{seconds:.1f} s", seconds)


def _publish(bake: BakeFigures | None) -> Figure:
    if bake is None or not bake.measurement.ok:
        return Figure("—", None)
    if bake.publish is None:
        return Figure("not printed", None)
    return Figure(bake.publish.text(), bake.publish.seconds)


def _rollback(rollback: RollbackFigures | None) -> Figure:
    wall = _wall(rollback.measurement if rollback else None)
    if rollback is None or wall.seconds is None:
        return wall
    copied = rollback.copying.text(" copied back") if rollback.copying else "copies not printed"
    return Figure(f"{wall.text}; {copied}", wall.seconds)


def _copying(match: re.Match[str] | None) -> Copying | None:
    if match is None:
        return None
    return Copying(int(match["files"].replace(",", "")), float(match["seconds"]))


def _seconds(match: re.Match[str] | None) -> float | None:
    return float(match[1]) if match else None


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    found = list(pattern.finditer(text))
    return found[-1] if found else None


def _delay_title(delay_ms: float) -> str:
    return f", {delay_ms:g} ms a request" if delay_ms else ""


def _delay_text(delay_ms: float) -> str:
    if not delay_ms:
        return ""
    return (
        f" Every answer of SeaweedFS to the S3 commands reached them {delay_ms:g} ms late, "
        "through `benchmarks/latency_proxy.py`, as a request to S3 itself waits tens of "
        "milliseconds: the figures show what requests made one after another cost."
    )
