"""The current-elections layer's guard rails: the shared ones, named for ballots, and one of its
own: upcoming ballots must not leave the export."""

from datetime import date
from typing import Any

import dagster as dg
from pydantic import Field

from databaker.layers.guard_rails import (
    SAMPLE,
    CoverageConfig,
    LayerConfig,
    Rail,
    RailInputs,
    addresses_kept,
    coverage_steady,
    ids_keep_their_addresses,
    overrides,
    verdict,
)
from databaker.markdown import markdown_table


class GuardRails(LayerConfig, CoverageConfig):
    max_ballot_loss: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Largest share of its addresses a ballot still in the export may lose.",
    )
    max_upcoming_ballots_gone: int = Field(
        default=0,
        ge=0,
        description="How many ballots whose polling day is still ahead may leave the export "
        "(and so the layer) in one bake.",
    )
    allow_ballot_loss: bool = Field(default=False, description="Publish despite ballot losses.")
    allow_upcoming_ballots_gone: bool = Field(
        default=False, description="Publish despite upcoming ballots leaving the export."
    )


def _upcoming_ballots_gone(rail: Rail, inputs: RailInputs, config: Any) -> dg.AssetCheckResult:
    gone = [
        ballot
        for ballot in inputs.diff.ids_disappearing
        if ballot not in inputs.ids_named and _polling_day(ballot) >= inputs.today
    ]
    return verdict(
        rail,
        config,
        failed=len(gone) > config.max_upcoming_ballots_gone,
        problem=f"{len(gone):,} ballot(s) whose polling day is still ahead left the export, more "
        f"than max_upcoming_ballots_gone {config.max_upcoming_ballots_gone}: "
        f"{', '.join(gone[:SAMPLE])}{', ...' if len(gone) > SAMPLE else ''}",
        metadata={
            "upcoming_ballots_gone": len(gone),
            "gone": markdown_table(
                ["ballot", "polling day"], ([b, _polling_day_text(b)] for b in gone[:SAMPLE])
            ),
        },
    )


def _polling_day(ballot: str) -> date:
    """A ballot ID ends with its polling day (``local.leeds.adel.2027-05-06``); one that does
    not is taken to be ahead."""
    try:
        return date.fromisoformat(ballot.rsplit(".", 1)[-1])
    except ValueError:
        return date.max


def _polling_day_text(ballot: str) -> str:
    day = _polling_day(ballot)
    return "unknown, taken to be ahead" if day == date.max else day.isoformat()


ADDRESSES_KEPT = addresses_kept()
BALLOTS_KEEP_ADDRESSES = ids_keep_their_addresses(
    name="ballots_keep_their_addresses",
    threshold="max_ballot_loss",
    override="allow_ballot_loss",
    label="ballot",
)
COVERAGE_STEADY = coverage_steady(label="ballot")
UPCOMING_BALLOTS_KEPT = Rail(
    "upcoming_ballots_kept",
    "allow_upcoming_ballots_gone",
    "No more than max_upcoming_ballots_gone ballots whose polling day is still ahead leave the "
    "export: a truncated export loses whole ballots, which the other rails take for withdrawn.",
    _upcoming_ballots_gone,
    threshold="max_upcoming_ballots_gone",
)
RAILS = (ADDRESSES_KEPT, BALLOTS_KEEP_ADDRESSES, COVERAGE_STEADY, UPCOMING_BALLOTS_KEPT)
OVERRIDES = overrides(RAILS)
