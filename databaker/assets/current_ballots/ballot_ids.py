"""Ballot IDs are checked with Democracy Club's own ``uk-election-ids`` rules."""

from __future__ import annotations

from collections.abc import Iterable

from uk_election_ids.election_ids import IdBuilder


def invalid_ballot_ids(election_ids: Iterable[str]) -> dict[str, str]:
    """The IDs that are not ballot IDs (group IDs included), each with the package's reason."""
    invalid = {}
    for election_id in election_ids:
        try:
            rebuilt = IdBuilder.from_id(election_id).ballot_id
        except (ValueError, TypeError) as error:
            invalid[election_id] = str(error)
            continue
        if rebuilt != election_id:
            invalid[election_id] = f"the ballot ID for it would be {rebuilt}"
    return invalid
