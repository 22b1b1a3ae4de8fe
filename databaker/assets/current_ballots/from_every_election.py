"""The ballots export taken from EveryElection's database, when a deployment names that
database as its ballots' location (:mod:`databaker.layers.exported`)."""

from collections.abc import Mapping

from databaker.assets.current_ballots.ballots_export import export_ballots
from databaker.layers.exported import DatabaseExport, ExportFiles, ExportRequest
from databaker.resources.every_election import Snapshot

BALLOTS_FILE = "ballots.csv"


def write_ballots_export(
    snapshot: Snapshot, files: ExportFiles, request: ExportRequest
) -> Mapping[str, int]:
    with files.open(BALLOTS_FILE) as out:
        return export_ballots(snapshot, out, today=request.as_of)


BALLOTS_FROM_EVERY_ELECTION = DatabaseExport(
    asset_name="ballots_export",
    layer="current_elections",
    option="ballots",
    label="ballots export",
    reads=BALLOTS_FILE,
    write=write_ballots_export,
    description="The ballots export taken from EveryElection's database: every current "
    "ballot with each piece of its area, in the ballots CSV's format.",
    events=("elections_set_changed",),
)
