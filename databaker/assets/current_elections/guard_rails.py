"""Guard rails: blocking checks that refuse to publish a bake that changes the layer too much.

A truncated AddressBase drop or a broken ballots export still parses; what gives it away is
the difference from the published layer. Each rail compares a bake's diff with a threshold;
an operator who has looked at the diff and accepts it sets the rail's ``allow_...`` override,
which turns the failure into a warning, kept in the check's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg
from pydantic import Field

from databaker.layer_diff import LayerDiff

ASSET = "current_elections_version"
SAMPLE = 10


class GuardRails(dg.Config):
    max_address_drop: float = Field(
        default=0.02, ge=0, le=1, description="Largest share of addresses a bake may lose."
    )
    max_ballot_loss: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Largest share of its addresses a ballot still in the export may lose.",
    )
    max_coverage_change: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Largest change in the share of addresses with a ballot (0.01: one "
        "percentage point) while the ballots export is unchanged.",
    )
    max_upcoming_ballots_gone: int = Field(
        default=0,
        ge=0,
        description="How many ballots whose polling day is still ahead may leave the export "
        "(and so the layer) in one bake.",
    )
    allow_address_drop: bool = Field(default=False, description="Publish despite the drop.")
    allow_ballot_loss: bool = Field(default=False, description="Publish despite ballot losses.")
    allow_coverage_change: bool = Field(
        default=False, description="Publish despite the coverage change."
    )
    allow_upcoming_ballots_gone: bool = Field(
        default=False, description="Publish despite upcoming ballots leaving the export."
    )


@dataclass(frozen=True)
class Rail:
    name: str
    override: str
    description: str

    @property
    def spec(self) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(
            self.name, asset=ASSET, blocking=True, description=self.description
        )

    @property
    def key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(dg.AssetKey(ASSET), self.name)


ADDRESSES_KEPT = Rail(
    "addresses_kept",
    "allow_address_drop",
    "The bake has no fewer addresses than the published layer, beyond max_address_drop.",
)
BALLOTS_KEEP_ADDRESSES = Rail(
    "ballots_keep_their_addresses",
    "allow_ballot_loss",
    "No ballot still in the ballots export loses more than max_ballot_loss of its addresses.",
)
COVERAGE_STEADY = Rail(
    "coverage_steady",
    "allow_coverage_change",
    "With the ballots export unchanged, the share of addresses with a ballot moves by no more "
    "than max_coverage_change.",
)
UPCOMING_BALLOTS_KEPT = Rail(
    "upcoming_ballots_kept",
    "allow_upcoming_ballots_gone",
    "No more than max_upcoming_ballots_gone ballots whose polling day is still ahead leave the "
    "export: a truncated export loses whole ballots, which the other rails take for withdrawn.",
)
RAILS = (ADDRESSES_KEPT, BALLOTS_KEEP_ADDRESSES, COVERAGE_STEADY, UPCOMING_BALLOTS_KEPT)
OVERRIDES = {rail.override.removeprefix("allow_"): rail.override for rail in RAILS}
"""Each rail's override by its short name (``address_drop``), as the command line takes it."""


def guard_rail_results(
    diff: LayerDiff,
    rails: GuardRails,
    *,
    ballots_in_export: set[str],
    ballots_changed: bool,
    today: date,
) -> list[dg.AssetCheckResult]:
    """Each rail's verdict on ``diff``. Nothing published yet: nothing to compare, all pass."""
    if diff.baseline is None:
        return [
            dg.AssetCheckResult(
                check_name=rail.name, passed=True, description="first bake: nothing to compare"
            )
            for rail in RAILS
        ]
    return [
        _address_drop(diff, rails),
        _ballot_loss(diff, rails, ballots_in_export),
        _coverage_change(diff, rails, ballots_changed),
        _upcoming_ballots_gone(diff, rails, ballots_in_export, today),
    ]


def _address_drop(diff: LayerDiff, rails: GuardRails) -> dg.AssetCheckResult:
    drop = _share(diff.addresses_before - diff.addresses_after, diff.addresses_before)
    return _verdict(
        ADDRESSES_KEPT,
        rails,
        failed=_beyond(drop, rails.max_address_drop),
        problem=f"addresses fell by {drop:.2%} ({diff.addresses_before:,} to "
        f"{diff.addresses_after:,}), more than max_address_drop {rails.max_address_drop:.2%}",
        metadata={
            "addresses_before": diff.addresses_before,
            "addresses_after": diff.addresses_after,
            "drop": dg.MetadataValue.float(drop),
        },
    )


def _ballot_loss(
    diff: LayerDiff, rails: GuardRails, ballots_in_export: set[str]
) -> dg.AssetCheckResult:
    losing = {
        ballot: _share(change.lost, change.before)
        for ballot, change in diff.ids.items()
        if ballot in ballots_in_export and change.before > 0
    }
    worst = sorted(
        (
            (share, ballot)
            for ballot, share in losing.items()
            if _beyond(share, rails.max_ballot_loss)
        ),
        reverse=True,
    )
    named = ", ".join(
        f"{ballot} lost {diff.ids[ballot].lost:,} of {diff.ids[ballot].before:,} ({share:.1%})"
        for share, ballot in worst[:SAMPLE]
    )
    return _verdict(
        BALLOTS_KEEP_ADDRESSES,
        rails,
        failed=bool(worst),
        problem=f"{len(worst):,} ballot(s) still in the export lost more than max_ballot_loss "
        f"{rails.max_ballot_loss:.0%} of their addresses: {named}",
        metadata={
            "ballots_over_limit": len(worst),
            "largest_loss": dg.MetadataValue.float(max(losing.values(), default=0.0)),
            "worst": dg.MetadataValue.json(
                {ballot: round(share, 4) for share, ballot in worst[:SAMPLE]}
            ),
        },
    )


def _coverage_change(
    diff: LayerDiff, rails: GuardRails, ballots_changed: bool
) -> dg.AssetCheckResult:
    before = _share(diff.with_ids_before, diff.addresses_before)
    after = _share(diff.with_ids_after, diff.addresses_after)
    metadata = {
        "ballots_export_changed": ballots_changed,
        "share_with_ballot_before": dg.MetadataValue.float(before),
        "share_with_ballot_after": dg.MetadataValue.float(after),
    }
    if ballots_changed:
        return dg.AssetCheckResult(
            check_name=COVERAGE_STEADY.name,
            passed=True,
            description="the ballots export changed: a change of coverage is expected",
            metadata=metadata,
        )
    return _verdict(
        COVERAGE_STEADY,
        rails,
        failed=_beyond(abs(after - before), rails.max_coverage_change),
        problem=f"with the ballots export unchanged, the share of addresses with a ballot "
        f"moved from {before:.2%} to {after:.2%}, more than max_coverage_change "
        f"{rails.max_coverage_change:.2%}",
        metadata=metadata,
    )


def _upcoming_ballots_gone(
    diff: LayerDiff, rails: GuardRails, ballots_in_export: set[str], today: date
) -> dg.AssetCheckResult:
    gone = [
        ballot
        for ballot in diff.ids_disappearing
        if ballot not in ballots_in_export and _polling_day(ballot) >= today
    ]
    return _verdict(
        UPCOMING_BALLOTS_KEPT,
        rails,
        failed=len(gone) > rails.max_upcoming_ballots_gone,
        problem=f"{len(gone):,} ballot(s) whose polling day is still ahead left the export, more "
        f"than max_upcoming_ballots_gone {rails.max_upcoming_ballots_gone}: "
        f"{', '.join(gone[:SAMPLE])}{', ...' if len(gone) > SAMPLE else ''}",
        metadata={"upcoming_ballots_gone": len(gone), "gone": dg.MetadataValue.json(gone[:SAMPLE])},
    )


def _polling_day(ballot: str) -> date:
    """A ballot ID ends with its polling day (``local.leeds.adel.2027-05-06``); one that does
    not is taken to be ahead."""
    try:
        return date.fromisoformat(ballot.rsplit(".", 1)[-1])
    except ValueError:
        return date.max


def _verdict(
    rail: Rail, rails: GuardRails, *, failed: bool, problem: str, metadata: dict
) -> dg.AssetCheckResult:
    """Passed; or failed, blocking publication unless the rail's override is set, in which
    case the failure is a warning."""
    overridden = failed and getattr(rails, rail.override)
    description = None
    if overridden:
        description = f"{problem}; published anyway: {rail.override} is set"
    elif failed:
        description = (
            f"{problem}. Look at the bake's diff; to publish it anyway, set {rail.override}"
        )
    return dg.AssetCheckResult(
        check_name=rail.name,
        passed=not failed,
        severity=dg.AssetCheckSeverity.WARN if overridden else dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={**metadata, "overridden": overridden},
    )


def _beyond(share: float, limit: float) -> bool:
    """``share > limit``, a share that equals the limit but for rounding being within it."""
    return share > limit + 1e-9


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
