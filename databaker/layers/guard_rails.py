"""Guard rails: blocking checks that refuse to publish a bake that changes a layer too much.

A truncated AddressBase drop or a broken input export still parses; what gives it away is the
difference from the published layer. Each rail compares a bake's diff with a threshold in the
layer's config; an operator who has looked at the diff and accepts it sets the rail's
``allow_...`` override, which turns the failure into a warning, kept in the check's history.

The rails every layer can use are made here (:func:`addresses_kept`,
:func:`ids_keep_their_addresses`, :func:`coverage_steady`); a layer adds rails of its own with
:class:`Rail` and :func:`verdict`, and declares the thresholds and overrides of all its rails
as fields of its :class:`LayerConfig`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg
from pydantic import Field

from databaker.layers.diff import LayerDiff
from databaker.layers.versions import KEPT_VERSIONS

SAMPLE = 10


class LayerConfig(dg.Config):
    """The configuration of a layer's version: how many bakes to keep, and the thresholds and
    overrides of its guard rails (a layer's subclass adds its own)."""

    kept_versions: int = Field(
        default=KEPT_VERSIONS,
        ge=1,
        description="Bakes kept under versions/ for rollback (the published one is kept too).",
    )
    max_address_drop: float = Field(
        default=0.02, ge=0, le=1, description="Largest share of addresses a bake may lose."
    )
    allow_address_drop: bool = Field(default=False, description="Publish despite the drop.")


class CoverageConfig(dg.Config):
    """The threshold and override of :func:`coverage_steady`, for a layer that uses it."""

    max_coverage_change: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Largest change in the share of addresses with any ID (0.01: one "
        "percentage point) while the layer's input is unchanged.",
    )
    allow_coverage_change: bool = Field(
        default=False, description="Publish despite the coverage change."
    )


@dataclass(frozen=True)
class RailInputs:
    """What every rail judges a bake by."""

    diff: LayerDiff
    ids_named: set[str]
    """Every ID the layer's input names (rejected rows included)."""
    input_changed: bool
    """Whether the input's content differs from the published bake's."""
    today: date
    addresses_per_id: dict[str, int] = field(default_factory=dict)
    """How many addresses each ID reaches in this bake (its manifest's)."""


Judge = Callable[["Rail", RailInputs, Any], dg.AssetCheckResult]


@dataclass(frozen=True)
class Rail:
    """A guard rail: a blocking check on the layer's version, judged by ``judge``."""

    name: str
    override: str
    """The config field that publishes despite a failure (``allow_address_drop``)."""
    description: str
    judge: Judge
    compares: bool = True
    """Whether the rail compares the bake with the published layer (and so passes the first
    bake, when nothing is published), or judges the bake on its own."""

    @property
    def short_override(self) -> str:
        """The override as the command line takes it (``bake --allow address_drop``)."""
        return self.override.removeprefix("allow_")

    def spec(self, asset: str) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(
            self.name, asset=asset, blocking=True, description=self.description
        )

    def key(self, asset: str) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(dg.AssetKey(asset), self.name)


def rail_results(
    rails: Sequence[Rail], inputs: RailInputs, config: LayerConfig
) -> list[dg.AssetCheckResult]:
    """Each rail's verdict on the bake. Nothing published yet: the rails that compare with the
    published layer have nothing to compare, and pass."""
    first = inputs.diff.baseline is None
    return [
        dg.AssetCheckResult(
            check_name=rail.name, passed=True, description="first bake: nothing to compare"
        )
        if first and rail.compares
        else rail.judge(rail, inputs, config)
        for rail in rails
    ]


def overrides(rails: Iterable[Rail]) -> dict[str, str]:
    """Each rail's override by its short name (``address_drop``), as the command line takes it."""
    return {rail.short_override: rail.override for rail in rails}


def verdict(
    rail: Rail, config: LayerConfig, *, failed: bool, problem: str, metadata: dict
) -> dg.AssetCheckResult:
    """Passed; or failed, blocking publication unless the rail's override is set, in which
    case the failure is a warning."""
    overridden = failed and getattr(config, rail.override)
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


def beyond(share: float, limit: float) -> bool:
    """``share > limit``, a share that equals the limit but for rounding being within it."""
    return share > limit + 1e-9


def share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def addresses_kept() -> Rail:
    """The bake keeps the published layer's addresses, but for ``max_address_drop``: a
    truncated drop loses addresses."""

    def judge(rail: Rail, inputs: RailInputs, config: Any) -> dg.AssetCheckResult:
        diff = inputs.diff
        drop = share(diff.addresses_before - diff.addresses_after, diff.addresses_before)
        return verdict(
            rail,
            config,
            failed=beyond(drop, config.max_address_drop),
            problem=f"addresses fell by {drop:.2%} ({diff.addresses_before:,} to "
            f"{diff.addresses_after:,}), more than max_address_drop "
            f"{config.max_address_drop:.2%}",
            metadata={
                "addresses_before": diff.addresses_before,
                "addresses_after": diff.addresses_after,
                "drop": dg.MetadataValue.float(drop),
            },
        )

    return Rail(
        "addresses_kept",
        "allow_address_drop",
        "The bake has no fewer addresses than the published layer, beyond max_address_drop.",
        judge,
    )


def ids_keep_their_addresses(*, name: str, threshold: str, override: str, label: str) -> Rail:
    """No ID still named by the input loses more than ``threshold`` of its addresses: a broken
    area, or a broken drop, loses some of an ID's addresses while the input still names it."""

    def judge(rail: Rail, inputs: RailInputs, config: Any) -> dg.AssetCheckResult:
        diff, limit = inputs.diff, getattr(config, threshold)
        losing = {
            i: share(change.lost, change.before)
            for i, change in diff.ids.items()
            if i in inputs.ids_named and change.before > 0
        }
        worst = sorted(((s, i) for i, s in losing.items() if beyond(s, limit)), reverse=True)
        named = ", ".join(
            f"{i} lost {diff.ids[i].lost:,} of {diff.ids[i].before:,} ({s:.1%})"
            for s, i in worst[:SAMPLE]
        )
        return verdict(
            rail,
            config,
            failed=bool(worst),
            problem=f"{len(worst):,} {label}(s) still in the export lost more than {threshold} "
            f"{limit:.0%} of their addresses: {named}",
            metadata={
                f"{label.replace(' ', '_')}s_over_limit": len(worst),
                "largest_loss": dg.MetadataValue.float(max(losing.values(), default=0.0)),
                "worst": dg.MetadataValue.json({i: round(s, 4) for s, i in worst[:SAMPLE]}),
            },
        )

    return Rail(
        name,
        override,
        f"No {label} still in the export loses more than {threshold} of its addresses.",
        judge,
    )


def coverage_steady(
    *, label: str, threshold: str = "max_coverage_change", override: str = "allow_coverage_change"
) -> Rail:
    """With the input unchanged, the share of addresses with any ID holds steady: a drift then
    comes from the drop (addresses moved, coordinates broken), not from the input. The layer's
    config takes its fields from :class:`CoverageConfig`."""

    def judge(rail: Rail, inputs: RailInputs, config: Any) -> dg.AssetCheckResult:
        diff, limit = inputs.diff, getattr(config, threshold)
        before = share(diff.with_ids_before, diff.addresses_before)
        after = share(diff.with_ids_after, diff.addresses_after)
        key = label.replace(" ", "_")
        metadata = {
            "export_changed": inputs.input_changed,
            f"share_with_{key}_before": dg.MetadataValue.float(before),
            f"share_with_{key}_after": dg.MetadataValue.float(after),
        }
        if inputs.input_changed:
            return dg.AssetCheckResult(
                check_name=rail.name,
                passed=True,
                description="the export changed: a change of coverage is expected",
                metadata=metadata,
            )
        return verdict(
            rail,
            config,
            failed=beyond(abs(after - before), limit),
            problem=f"with the export unchanged, the share of addresses with a {label} moved "
            f"from {before:.2%} to {after:.2%}, more than {threshold} {limit:.2%}",
            metadata=metadata,
        )

    return Rail(
        "coverage_steady",
        override,
        f"With the export unchanged, the share of addresses with a {label} moves by no more "
        f"than {threshold}.",
        judge,
    )
