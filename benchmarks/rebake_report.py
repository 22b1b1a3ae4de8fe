"""The rebake benchmark's figures, read from what each bake printed and from the layer's
manifests, its checks, and its section of ``docs/benchmarks.md``: each rebake stage by stage
beside the first bake, and the target of issue 19, a rebake from a changed ballots export on an
unchanged drop in at most 25 s to the published layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from benchmarks.changed_ballots import ChangedExport
from benchmarks.inputs import Inputs
from benchmarks.layers import stage_of_step
from benchmarks.machine import describe_machine
from benchmarks.our_bake import BakeRun, parse_bake
from benchmarks.process import Measurement
from benchmarks.report import count_text, markdown_table, markers, size_text
from benchmarks.s3_store_report import BakeFigures, Check
from benchmarks.s3_store_report import parse_bake as parse_progress
from databaker.assets.addressbase import addressbase_cleaned_raw, addressbase_partitioned
from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.layers.versions import Manifest

BENCHMARK = "rebake"
TARGET_SECONDS = 25.0
"""The most a rebake may take, start to published layer, at 30 million addresses."""
STAGE_OF_STEP = stage_of_step(CURRENT_ELECTIONS)
DROP_STEPS = (
    addressbase_cleaned_raw.key.to_user_string(),
    addressbase_partitioned.key.to_user_string(),
)
"""What a rebake keeps: it runs none of these steps, nor their checks (``<step>_<check>``)."""
STAGES = ("drop", "input", "partition", "join", "checks", "version", "publish", "other")

_PICTURES = re.compile(r"pictures of the bake drawn in ([0-9.]+) s")
_COPIED = re.compile(r"\b([0-9,]+) unchanged since the published bake, left where it holds them\)")
_KEPT = re.compile(r"kept ([0-9]+) of [0-9]+ letters as they were")
_IN_PART = re.compile(
    r"joined again only the ([0-9]+) of [0-9]+ addresses in changed areas, in ([0-9]+) letters"
)
_LETTERS = re.compile(r"joined [0-9]+ addresses in ([0-9]+) letter partition")
_CHANGED = re.compile(
    r"^\s+changed:\s+(?P<n>[0-9,]+) addresses' .*, against "
    r"(?:bake (?P<baseline>\S+)|nothing published)$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Bake:
    """One measured bake: the first from the drop, or a rebake keeping it."""

    label: str
    """``first bake``, ``round <K>``."""
    export: ChangedExport | None
    """The changed export it read; None for the generated one."""
    run: BakeRun
    """Its steps, stages and summary, as the other benchmarks read a bake."""
    progress: BakeFigures
    """The bake it published and its progress lines (writing, diff, publish)."""
    pictures_seconds: float | None
    copied: int | None
    """Outcode files reused from the published bake, their rows unchanged: left where it holds
    them."""
    letters: tuple[int, int, int] | None
    """Joined letters kept as they were, joined in part, joined whole."""
    joined_again: int | None
    """Addresses joined again in the letters joined in part."""
    addresses_changed: int | None
    baseline: str | None
    """The bake its diff compared with, as its summary names it (None: nothing published)."""
    before: Manifest | None
    """The layer published before it ran."""
    after: Manifest | None
    """The layer published after it ran."""

    @property
    def measurement(self) -> Measurement:
        return self.run.measurement

    @property
    def encoded(self) -> int | None:
        """Outcode files whose SHA-256 differs from the layer published before: the files the
        bake had to encode (every file of a first bake)."""
        if self.after is None:
            return None
        before = self.before.files if self.before else {}
        return sum(before.get(name) != digest for name, digest in self.after.files.items())

    def stage_ran(self, stage: str) -> bool:
        return any(STAGE_OF_STEP.get(step) == stage for step in self.run.steps)


def parse(
    label: str,
    export: ChangedExport | None,
    measured: Measurement,
    before: Manifest | None,
    after: Manifest | None,
) -> Bake:
    out = measured.stdout
    changed = _CHANGED.search(out)
    return Bake(
        label=label,
        export=export,
        run=parse_bake(measured, Path(CURRENT_ELECTIONS.prefix), STAGE_OF_STEP),
        progress=parse_progress(measured),
        pictures_seconds=_number(_PICTURES, out, float),
        copied=_number(_COPIED, out, int),
        letters=_letters(out),
        joined_again=int(m[-1][0]) if (m := _IN_PART.findall(out)) else 0,
        addresses_changed=int(changed["n"].replace(",", "")) if changed else None,
        baseline=changed["baseline"] if changed else None,
        before=before,
        after=after,
    )


def problems(bake: Bake) -> list[str]:
    """What is wrong with a rebake that exited 0, as the benchmark checks it."""
    found = []
    published = bake.after.bake_id if bake.after else None
    if published is None or published != bake.progress.bake_id:
        found.append(f"bake {published} is published, not this rebake's ({bake.progress.bake_id})")
    read_drop = [step for step in bake.run.steps if step.startswith(DROP_STEPS)]
    if read_drop:
        found.append(f"it did not keep the drop: it ran {', '.join(read_drop)}")
    previous = bake.before.bake_id if bake.before else None
    if bake.baseline != previous:
        found.append(
            f"it compared with bake {bake.baseline}, not with {previous}, published before"
        )
    outcodes = len(bake.after.files) if bake.after else None
    if None in (bake.copied, bake.encoded) or bake.copied + bake.encoded != outcodes:
        found.append(
            f"{bake.copied} files reused + {bake.encoded} encoded is not {outcodes} outcodes"
        )
    if not bake.addresses_changed:
        found.append("it changed no address: leave out more ballots (--drop-ballots)")
    return found


def checks(bakes: list[Bake]) -> list[Check]:
    """Each rebake that exited 0: it published its own bake, kept the drop, compared with the
    bake published before it, reused every outcode file it did not encode (reused + encoded
    = outcodes, encoded counted from the manifests) and changed some addresses."""
    found = []
    for bake in bakes[1:]:
        if not bake.measurement.ok:
            continue
        wrong = problems(bake)
        if wrong:
            found.append(Check(f"{bake.label}: " + "; ".join(wrong), False))
            continue
        found.append(
            Check(
                f"{bake.label}: published bake {bake.progress.bake_id}, this rebake's; kept the "
                f"drop; compared with bake {bake.baseline}, published before it; "
                f"{bake.copied:,} files reused + {bake.encoded:,} encoded = "
                f"{len(bake.after.files):,} outcodes; {bake.addresses_changed:,} addresses "
                "changed",
                True,
            )
        )
    return found


def failed(bakes: list[Bake]) -> list[str]:
    return [bake.label for bake in bakes if not bake.measurement.ok]


@dataclass(frozen=True)
class Section:
    size: str
    command: str
    date: str
    inputs: Inputs
    exports: tuple[ChangedExport, ChangedExport]
    rounds: int
    bakes: list[Bake]


def round_table(bakes: list[Bake]) -> str:
    """A column per bake (the first bake for reference, then each round), a row per figure."""
    first, *rebakes = bakes
    header = ["", f"{first.label} (reference)", *(bake.label for bake in rebakes)]
    rows = [[name, *(cells[name] for cells in map(_cells, bakes))] for name in ROWS]
    return markdown_table(header, rows)


ROWS = (
    "ballots export", "wall s", "peak RSS", "bake's own s", *STAGES, "- writing outcode files",
    "- diff", "- pictures", "outside the steps", "letters kept, in part, whole",
    "addresses joined in part", "files encoded", "files reused", "addresses changed",
)  # fmt: skip


def _cells(bake: Bake) -> dict[str, str]:
    measured, run = bake.measurement, bake.run
    cells = dict.fromkeys(ROWS, "—")
    cells["ballots export"] = _export_name(bake.export)
    cells["peak RSS"] = size_text(measured.peak_rss_bytes)
    if not measured.ok:
        outcome = "timed out" if measured.timed_out else f"FAILED (exit {measured.returncode})"
        cells["wall s"] = f"{measured.wall_seconds:.1f} ({outcome})"
        return cells
    cells["wall s"] = f"{measured.wall_seconds:.1f}"
    cells["bake's own s"] = _seconds(run.baked_seconds)
    for stage in STAGES:
        ran = stage in ("checks", "other") or bake.stage_ran(stage)
        cells[stage] = f"{run.stage_seconds[stage]:.1f}" if ran else "not run"
    cells["- writing outcode files"] = _seconds(bake.progress.writing_seconds)
    cells["- diff"] = _seconds(bake.progress.diff_seconds)
    cells["- pictures"] = _seconds(bake.pictures_seconds)
    outside = measured.wall_seconds - sum(run.steps.values())
    cells["outside the steps"] = f"{outside:.1f}"
    if bake.letters is not None:
        cells["letters kept, in part, whole"] = ", ".join(map(str, bake.letters))
    cells["addresses joined in part"] = count_text(bake.joined_again)
    cells["files encoded"] = count_text(bake.encoded)
    cells["files reused"] = count_text(bake.copied)
    cells["addresses changed"] = count_text(bake.addresses_changed)
    return cells


def verdict(bakes: list[Bake]) -> str:
    walls = [bake.measurement.wall_seconds for bake in bakes[1:] if bake.measurement.ok]
    if not walls:
        return "**Not measured: no rebake finished (see the failed commands).**"
    best, worst = min(walls), max(walls)
    figures = f"best {best:.1f} s, worst {worst:.1f} s, against {TARGET_SECONDS:g} s"
    if len(walls) < len(bakes) - 1:
        return f"**Not met: a rebake failed.** The others: {figures}."
    if round(worst, 1) <= TARGET_SECONDS:
        return f"**Met by every rebake: {figures}.**"
    over = sum(round(wall, 1) > TARGET_SECONDS for wall in walls)
    return f"**Not met: {over} of {len(walls)} rebakes over the target; {figures}.**"


def render(section: Section) -> str:
    """The section, markers included."""
    start, end = markers(section.size, BENCHMARK)
    spec = section.inputs.spec
    machine = "\n".join(f"- {key}: {value}" for key, value in describe_machine().items())
    inputs = "\n".join(f"- {key}: {value}" for key, value in _input_lines(section).items())
    checked = "\n".join(f"- {check.text}" for check in checks(section.bakes))
    failures = "\n".join(f"- {line}" for line in _failures(section.bakes))
    if failures:
        failures = f"\n\n### Failed commands\n\n{failures}"
    return f"""{start}
## Rebake from a changed ballots export: {spec.addresses:,} addresses, \
{spec.divisions:,} divisions, {_ballots(section)} left out

Generated by `benchmarks/rebake.py`; edit that, not this section. What the figures mean:
[benchmarks/README.md](../benchmarks/README.md#rebake-benchmark).

```sh
{section.command}
```

Run on {section.date}. The first bake reads the drop and the generated ballots export into a
fresh data root; then {_rebakes(section.rounds)}, `databaker bake --keep-addressbase --ballots
<export A or B> --allow <every guard rail>`, each in a process of its own, read no drop: the
layer's rebuild job (ballots, join, checks, version, publish) on the AddressBase already baked,
each changing some addresses against the layer published before it.

The target (issue 19): a rebake from a changed ballots export on an unchanged drop takes at most
{TARGET_SECONDS:g} s to the published layer (wall: the whole command, start-up included).

{verdict(section.bakes)}

### Machine

{machine}

### Inputs

{inputs}

### Bakes

{round_table(section.bakes)}

Stages as in the layers benchmark (`stage_of_step` in `benchmarks/layers.py`): drop, input (the
ballots), partition, join, checks, version (outcode files, diff, guard rails, pictures), publish;
their seconds are the `<step> done (x s)` lines. Writing outcode files, diff and pictures are
parts of version, from its progress lines. Files encoded: outcode files whose SHA-256 differs
from the layer published before (the manifests'); files reused: those whose rows had not
changed, left where the published bake holds them; addresses changed: the bake's diff.
Letters: the joined table's letters kept as they were (no address in a changed area), joined
in part (only their addresses in changed areas, the addresses joined in part) and joined
whole.

### Checks

{checked or "- none: no rebake finished"}{failures}
{end}
"""


def _rebakes(count: int) -> str:
    return "1 rebake" if count == 1 else f"{count} rebakes"


def _export_name(export: ChangedExport | None) -> str:
    if export is None:
        return "generated"
    return export.path.stem.removeprefix("ballots-").upper()


def _ballots(section: Section) -> str:
    left_out = len(section.exports[0].left_out)
    return "one ballot" if left_out == 1 else f"{left_out:,} ballots"


def _input_lines(section: Section) -> dict[str, str]:
    inputs = section.inputs
    lines = {
        **inputs.drop_lines(),
        "ballots export (first bake)": f"{inputs.ballots.stat().st_size / 1024**2:,.1f} MiB",
    }
    for export in section.exports:
        lines[f"export {_export_name(export)}"] = f"the generated one {export.description()}"
    return lines


def _failures(bakes: list[Bake]) -> list[str]:
    lines = []
    for bake in bakes:
        if bake.measurement.ok:
            continue
        tail = bake.measurement.stderr.strip().splitlines()[-3:]
        lines.append(f"{bake.label} failed: " + " / ".join(f"`{line}`" for line in tail))
    return lines


def _seconds(value: float | None) -> str:
    return "not printed" if value is None else f"{value:.1f}"


def _letters(out: str) -> tuple[int, int, int] | None:
    """Letters kept, joined in part and joined whole, from the join's lines."""
    letters = _number(_LETTERS, out, int)
    if letters is None:
        return None
    kept = _number(_KEPT, out, int) or 0
    in_part = int(found[-1][1]) if (found := _IN_PART.findall(out)) else 0
    return kept, in_part, letters - kept - in_part


def _number(pattern: re.Pattern[str], text: str, kind: type) -> float | int | None:
    found = pattern.findall(text)
    return kind(found[-1].replace(",", "")) if found else None
