"""The organisations layer's guard rails: the shared ones, named for organisations, and two of
its own: every current organisation in the export reaches an address, and few addresses lose
their council or their constituency."""

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
    beyond,
    coverage_steady,
    ids_keep_their_addresses,
    overrides,
    share,
    verdict,
)
from databaker.markdown import markdown_table

KINDS = ("council", "constituency")
"""What an address must not lose in numbers (:func:`element_kinds` says which element is
which)."""


class GuardRails(LayerConfig, CoverageConfig):
    max_organisation_loss: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Largest share of its addresses an organisation still current in the "
        "export may lose.",
    )
    allow_organisation_loss: bool = Field(
        default=False, description="Publish despite organisation losses."
    )
    max_council_or_constituency_loss: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Largest share of the published addresses that may be left with no "
        "council, or with no Westminster constituency, by one bake.",
    )
    allow_council_or_constituency_loss: bool = Field(
        default=False, description="Publish although addresses lose their council or constituency."
    )
    allow_organisations_without_addresses: bool = Field(
        default=False,
        description="Publish although a current organisation in the export reaches no address.",
    )
    types_outside_addressbase: list[str] = Field(
        default=["nia"],
        description="Organisation types whose areas lie outside AddressBase's coverage (Great "
        "Britain): their organisations are not expected to reach an address.",
    )


def _organisations_reach_addresses(
    rail: Rail, inputs: RailInputs, config: Any
) -> dg.AssetCheckResult:
    """An organisation current in the export whose area holds no address has broken or
    misplaced geometry (or its every row was rejected): publishing would silently leave it
    out of every address's list."""
    reached = {o for o, count in inputs.addresses_per_id.items() if count > 0}
    outside = tuple(f"{kind}/" for kind in config.types_outside_addressbase)
    unreached = sorted(o for o in inputs.ids_named - reached if not o.startswith(outside))
    return verdict(
        rail,
        config,
        failed=bool(unreached),
        problem=f"{len(unreached):,} current organisation(s) in the export reach no address: "
        f"{', '.join(unreached[:SAMPLE])}{', ...' if len(unreached) > SAMPLE else ''}",
        metadata={
            "organisations_in_export": len(inputs.ids_named),
            "organisations_without_addresses": markdown_table(
                ["organisation reaching no address"], ([o] for o in unreached[:SAMPLE])
            ),
        },
    )


def _councils_and_constituencies_kept(
    rail: Rail, inputs: RailInputs, config: Any
) -> dg.AssetCheckResult:
    """An address that had a council (or a Westminster constituency) and has none now sits in a
    hole of the new areas: broken geometry, or a council abolished with no successor in the
    export. A boundary moving addresses from one council to another loses none."""
    diff, limit = inputs.diff, config.max_council_or_constituency_loss
    losses = {kind: diff.addresses_losing_kind.get(kind, 0) for kind in KINDS}
    shares = {kind: share(lost, diff.addresses_before) for kind, lost in losses.items()}
    over = [kind for kind in KINDS if beyond(shares[kind], limit)]
    return verdict(
        rail,
        config,
        failed=bool(over),
        problem="; ".join(
            f"{losses[kind]:,} addresses ({shares[kind]:.2%}) lost their {kind}, more than "
            f"max_council_or_constituency_loss {limit:.2%}"
            for kind in over
        ),
        metadata={
            **{f"addresses_losing_their_{kind}": losses[kind] for kind in KINDS},
            "largest_share": dg.MetadataValue.float(max(shares.values())),
        },
    )


ADDRESSES_KEPT = addresses_kept()
ORGANISATIONS_KEEP_ADDRESSES = ids_keep_their_addresses(
    name="organisations_keep_their_addresses",
    threshold="max_organisation_loss",
    override="allow_organisation_loss",
    label="organisation",
)
COVERAGE_STEADY = coverage_steady(label="organisation")
ORGANISATIONS_REACH_ADDRESSES = Rail(
    "organisations_reach_addresses",
    "allow_organisations_without_addresses",
    "Every organisation current in the export reaches at least one address (but those of "
    "types_outside_addressbase), from the first bake on.",
    _organisations_reach_addresses,
    compares=False,
)
COUNCILS_AND_CONSTITUENCIES_KEPT = Rail(
    "councils_and_constituencies_kept",
    "allow_council_or_constituency_loss",
    "No more than max_council_or_constituency_loss of the published addresses are left "
    "without a council, or without a Westminster constituency.",
    _councils_and_constituencies_kept,
    threshold="max_council_or_constituency_loss",
)
RAILS = (
    ADDRESSES_KEPT,
    ORGANISATIONS_KEEP_ADDRESSES,
    COVERAGE_STEADY,
    ORGANISATIONS_REACH_ADDRESSES,
    COUNCILS_AND_CONSTITUENCIES_KEPT,
)
OVERRIDES = overrides(RAILS)
