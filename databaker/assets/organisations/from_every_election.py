"""The organisations export taken from EveryElection's database (EE), when a deployment names
that database as its organisations' location (:mod:`databaker.layers.exported`).

How EE's tables map to the CSV (``organisations_export.postgres.sql`` has the detail):

- an organisation is EE's ``organisations_organisation``, named as EE names it (its official
  name, else its common name, else its identifier), with its own start and end dates on every
  one of its rows: the reader keys an organisation by type, identifier and start date, and
  attaches its divisions by those;
- its area, and its ``gss``, are those of its geography current on the export's date (on its
  start date, for one that starts later); EE keeps an organisation's earlier and later
  geographies beside it, and only one can be the area of an organisation that is keyed once;
- its divisions are those of each of its divisionsets not ended before the export's date,
  with the divisionset's dates: the current set, and any that starts later (a council's new
  wards, published before the day they take effect), which the reader keeps from that day;
  sets ended earlier can never be current again and are left out (EE keeps every past set);
- every area comes as EE subdivided it, a row per piece, or whole (one MULTIPOLYGON row)
  where EE holds no pieces of it, as WKT in lon/lat.

EE sends no event when an organisation or its geography is edited; its boundary events
(``boundary_change_set_changed``: a boundary review saved, new divisionsets' map tiles made)
are those that concern divisionsets. The nightly rebuild exports again and picks up the rest.
"""

from collections.abc import Mapping

from databaker.assets.organisations.organisations_export import export_organisations
from databaker.layers.exported import DatabaseExport, ExportFiles, ExportRequest
from databaker.resources.every_election import Snapshot

ORGANISATIONS_FILE = "organisations.csv"


def write_organisations_export(
    snapshot: Snapshot, files: ExportFiles, request: ExportRequest
) -> Mapping[str, int]:
    with files.open(ORGANISATIONS_FILE) as out:
        return export_organisations(snapshot, out, as_of=request.as_of)


ORGANISATIONS_FROM_EVERY_ELECTION = DatabaseExport(
    asset_name="organisations_export",
    layer="current_organisations",
    option="organisations",
    label="organisations export",
    reads=ORGANISATIONS_FILE,
    write=write_organisations_export,
    description="The organisations export taken from EveryElection's database: every "
    "organisation not ended before the export's date, its area and its divisions' (of its "
    "divisionsets not ended then), a row per subdivided piece, in the organisations CSV's "
    "format.",
    events=("boundary_change_set_changed",),
)
