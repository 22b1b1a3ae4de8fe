"""Addresses per ID, for a reader: the IDs with fewest and most addresses, and those with none.

An ID that the input names but that reaches no address is often the sign of a bad polygon
(drawn in the wrong place, or empty after repair). ``Manifest.addresses_per_id`` counts only
IDs that some address has, so the IDs reaching none are those the input names beyond it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from databaker.markdown import table_lines

SHOWN = 10
"""IDs in each of the tables of fewest and most addresses."""
NONE_SHOWN = 50
"""IDs listed of those reaching no address; the rest are counted."""


@dataclass(frozen=True)
class AddressesPerId:
    """The counts of a bake, ordered for its tables."""

    counts: list[tuple[str, int]]
    """Every ID that reaches an address, fewest addresses first (then by ID)."""
    reaching_none: list[str]
    """Every ID named that reaches no address, sorted."""

    @classmethod
    def of(cls, addresses_per_id: Mapping[str, int], ids_named: Iterable[str]) -> AddressesPerId:
        counts = sorted(
            ((i, n) for i, n in addresses_per_id.items() if n > 0), key=lambda c: (c[1], c[0])
        )
        reached = {i for i, _ in counts}
        return cls(counts, sorted(set(ids_named) - reached))

    @property
    def fewest(self) -> list[tuple[str, int]]:
        return self.counts[:SHOWN]

    @property
    def most(self) -> list[tuple[str, int]]:
        return sorted(self.counts, key=lambda c: (-c[1], c[0]))[:SHOWN]

    def markdown(self, id_label: str) -> str:
        """A summary line, then the tables: every ID when there are few, else the fewest and
        the most; then the IDs reaching no address."""
        total = len(self.counts) + len(self.reaching_none)
        lines = [
            f"{total:,} {id_label}s: {len(self.counts):,} reach addresses, "
            f"{len(self.reaching_none):,} reach none."
        ]
        if len(self.counts) <= 2 * SHOWN:
            lines += _table(f"Addresses per {id_label}", id_label, self.counts)
        else:
            lines += _table(f"The {SHOWN} {id_label}s with fewest addresses", id_label, self.fewest)
            lines += _table(f"The {SHOWN} {id_label}s with most addresses", id_label, self.most)
        if self.reaching_none:
            lines += [
                "",
                f"**{id_label.capitalize()}s reaching no address** (often a bad polygon)",
                "",
                *table_lines([id_label], ([f"`{i}`"] for i in self.reaching_none[:NONE_SHOWN])),
            ]
            if len(self.reaching_none) > NONE_SHOWN:
                lines.append(f"\n({len(self.reaching_none) - NONE_SHOWN:,} more)")
        return "\n".join(lines)


def _table(title: str, id_label: str, rows: list[tuple[str, int]]) -> list[str]:
    if not rows:
        return []
    return [
        "",
        f"**{title}**",
        "",
        *table_lines([id_label, "addresses"], ([f"`{i}`", n] for i, n in rows)),
    ]
