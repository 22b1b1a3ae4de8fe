"""Guard rails: blocking checks that refuse to publish a bake that changes a layer too much.

A truncated AddressBase drop or a broken input export still parses; what gives it away is the
difference from the published layer. Each rail compares a bake's diff with a threshold in the
layer's config; an operator who has looked at the diff and accepts it sets the rail's
``allow_...`` override, which turns the failure into a warning, kept in the check's history.

The rails every layer can use are made here (:func:`addresses_kept`,
:func:`ids_keep_their_addresses`, :func:`coverage_steady`); a layer adds rails of its own with
:class:`Rail` and :func:`verdict`, and declares the thresholds and overrides of all its rails
as fields of its :class:`LayerConfig`. Every verdict shows the rail's threshold beside what it
measured, and how to override it from the command line and from the Dagster launchpad.
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
from databaker.markdown import markdown_table, with_article

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
    threshold: str | None = None
    """The config field of its threshold (``max_address_drop``); ``None`` for a rail that
    refuses at the first case found."""

    @property
    def short_override(self) -> str:
        """The override as the command line takes it (``bake --allow address_drop``)."""
        return self.override.removeprefix("allow_")

    def how_to_override(self, asset: str) -> str:
        """Both ways to publish despite the rail, in markdown."""
        return (
            f"`databaker bake --allow {self.short_override}`, or in the Dagster launchpad "
            f"the run config `ops: {asset}: config: {self.override}: true`"
        )

    def spec(self, asset: str, config: type[LayerConfig]) -> dg.AssetCheckSpec:
        """The rail as a blocking check of the layer's version ``asset``, its description
        saying what it refuses, its threshold's default, and how to override it."""
        if self.threshold is None:
            threshold = "Threshold: none, one case refuses."
        else:
            default = config.model_fields[self.threshold].default
            threshold = f"Threshold: `{self.threshold}`, {default} unless configured."
        return dg.AssetCheckSpec(
            self.name,
            asset=asset,
            blocking=True,
            description=f"{self.description}\n\n{threshold} "
            f"To publish despite it: {self.how_to_override(asset)}.",
        )

    def key(self, asset: str) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(dg.AssetKey(asset), self.name)


def rail_results(
    rails: Sequence[Rail], inputs: RailInputs, config: LayerConfig, *, asset: str
) -> list[dg.AssetCheckResult]:
    """Each rail's verdict on the bake (a check of the layer's version ``asset``), with its
    threshold and how to override it. Nothing published yet: the rails that compare with the
    published layer have nothing to compare, and pass."""
    first = inputs.diff.baseline is None
    return [
        _explained(
            rail,
            dg.AssetCheckResult(
                check_name=rail.name, passed=True, description="first bake: nothing to compare"
            )
            if first and rail.compares
            else rail.judge(rail, inputs, config),
            config,
            asset,
        )
        for rail in rails
    ]


def _explained(
    rail: Rail, result: dg.AssetCheckResult, config: LayerConfig, asset: str
) -> dg.AssetCheckResult:
    """The verdict with the rail's threshold in its metadata, beside what the rail measured,
    and how to override it; a refusal says so in its description too."""
    if rail.threshold is None:
        threshold: dict[str, Any] = {"threshold": "none: one case refuses"}
    else:
        threshold = {rail.threshold: getattr(config, rail.threshold)}
    how = rail.how_to_override(asset)
    refused = not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    return dg.AssetCheckResult(
        check_name=result.check_name,
        passed=result.passed,
        severity=result.severity,
        description=f"{result.description} ({how})" if refused else result.description,
        metadata={
            **threshold,
            **result.metadata,
            "how_to_override": dg.MetadataValue.md(how),
        },
    )


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
        threshold="max_address_drop",
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
        key = label.replace(" ", "_")
        return verdict(
            rail,
            config,
            failed=bool(worst),
            problem=f"{len(worst):,} {label}(s) still in the export lost more than {threshold} "
            f"{limit:.0%} of their addresses: {named}",
            metadata={
                f"{key}s_over_limit": len(worst),
                "largest_loss": dg.MetadataValue.float(max(losing.values(), default=0.0)),
                "worst": markdown_table(
                    [label, "addresses before", "lost", "share lost"],
                    (
                        [i, diff.ids[i].before, diff.ids[i].lost, f"{s:.1%}"]
                        for s, i in worst[:SAMPLE]
                    ),
                ),
            },
        )

    return Rail(
        name,
        override,
        f"No {label} still in the export loses more than {threshold} of its addresses.",
        judge,
        threshold=threshold,
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
            "change": dg.MetadataValue.float(abs(after - before)),
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
            problem=f"with the export unchanged, the share of addresses with {with_article(label)} "
            f"moved "
            f"from {before:.2%} to {after:.2%}, more than {threshold} {limit:.2%}",
            metadata=metadata,
        )

    return Rail(
        "coverage_steady",
        override,
        f"With the export unchanged, the share of addresses with {with_article(label)} moves by "
        f"no more "
        f"than {threshold}.",
        judge,
        threshold=threshold,
    )
