"""The current-organisations layer: who runs things here? Every address with each current
organisation whose area contains it (council, county council, Parliament, Senedd, police
area...) and its ward, division or constituency there, as of a date, from the organisations
export."""

from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databaker.assets.current_organisations.guard_rails import RAILS, GuardRails
from databaker.assets.current_organisations.join import JOINED_TABLE, join_organisations
from databaker.assets.current_organisations.organisation_lists import (
    DIVISION,
    IDS_COLUMN,
    ORGANISATION,
    ORGANISATION_FIELDS,
)
from databaker.assets.organisations import (
    ORGANISATION_AREAS,
    ORGANISATION_AREAS_TABLE,
    organisation_areas,
    organisation_areas_asset,
)
from databaker.assets.organisations.from_every_election import ORGANISATIONS_FROM_EVERY_ELECTION
from databaker.layers import Layer, LayerInput
from databaker.layers.areas import Areas
from databaker.layers.element_fields import FIELD_SEPARATOR
from databaker.resources import LayerStore
from databaker.resources.input_locations import InputLocations


def organisation_ids(elements: pa.Array) -> pa.Array:
    """The organisation each element is about: ``<organisation_type>/<official_identifier>``
    (``local-authority/BIR``)."""
    fields = pc.split_pattern(elements, FIELD_SEPARATOR, max_splits=2)
    return pc.binary_join_element_wise(pc.list_element(fields, 0), pc.list_element(fields, 1), "/")


def organisation_kinds(elements: pa.Array) -> pa.Array:
    """What an address must keep: its ``council`` (a local authority) and its ``constituency``
    (a division of the House of Commons); null for other elements."""
    fields = pc.split_pattern(elements, FIELD_SEPARATOR)
    kind = pc.list_element(fields, 0)
    slug = pc.list_element(fields, len(ORGANISATION) + DIVISION.index("division_slug"))
    constituency = pc.and_(pc.equal(kind, "parl"), pc.not_equal(slug, ""))
    return pc.case_when(
        pc.make_struct(pc.equal(kind, "local-authority"), constituency),
        pa.scalar("council"),
        pa.scalar("constituency"),
    )


def _organisation_id(table: pa.Table) -> pa.ChunkedArray:
    """Each row's organisation, as :func:`organisation_ids` names it."""
    return pc.binary_join_element_wise(
        table["organisation_type"], table["official_identifier"], "/"
    )


def organisations_named(store: LayerStore, metadata: Mapping[str, Any]) -> set[str]:
    """Every organisation current in the export (by ID, as :func:`organisation_ids` gives it),
    and those of its rejected rows: a broken organisation must not pass for one that ended."""
    with store.open_input(ORGANISATION_AREAS) as source:
        table = pq.read_table(source, columns=["organisation_type", "official_identifier"])
    named = set(pc.unique(_organisation_id(table)).to_pylist())
    return named | set(metadata.get("organisations_in_export", []))


def organisation_areas_map(store: LayerStore) -> Areas:
    """The pieces of every current organisation's own area (not its divisions'), by ID."""
    with store.open_input(ORGANISATION_AREAS) as source:
        table = pq.read_table(
            source,
            columns=["organisation_type", "official_identifier", "division_slug", "geometry"],
        )
    own = table.filter(pc.equal(table["division_slug"], ""))
    return Areas.of(_organisation_id(own), own["geometry"])


def export_summary(metadata: Mapping[str, Any]) -> str:
    return (
        f"organisations:      {metadata['organisations']:,} with {metadata['divisions']:,} "
        f"divisions in {metadata['rows']:,} pieces, current on {metadata['organisations_on']} "
        f"({metadata['repaired_geometries']} repaired, {metadata['skipped_rows']:,} not "
        f"current skipped)"
    )


def element_text(element: Mapping[str, Any]) -> str:
    """An element for a table: ``local-authority BIR Birmingham City Council: DIW ladywood``."""
    text = f"{element['organisation_type']} {element['official_identifier']} "
    text += element["organisation_name"] or ""
    if element["division_slug"]:
        text += f": {element['division_type']} {element['division_slug']}"
    return text


ORGANISATIONS_EXPORT = LayerInput(
    asset=organisation_areas,
    table=ORGANISATION_AREAS_TABLE,
    label="organisations export",
    option="organisations",
    version_key="organisations_version",
    version_of=InputLocations.organisations_version,
    ids_named=organisations_named,
    sensor_name="organisations_export_changes",
    rebuild_job_name="current_organisations_from_export",
    summary=export_summary,
    as_of_key="organisations_on",
    areas=organisation_areas_map,
    ids_from=("organisation_key", "area_key", *ORGANISATION, *DIVISION, "geometry"),
    contained_by="geometry",
    export=ORGANISATIONS_FROM_EVERY_ELECTION,
    asset_after=organisation_areas_asset,
)

CURRENT_ORGANISATIONS = Layer(
    name="current_organisations",
    description="a record per current organisation whose area contains the address, with "
    "its division there.",
    ids_column=IDS_COLUMN,
    id_label="organisation",
    joined=JOINED_TABLE,
    join=join_organisations,
    config=GuardRails,
    rails=RAILS,
    input=ORGANISATIONS_EXPORT,
    element_ids=organisation_ids,
    element_fields=ORGANISATION_FIELDS,
    element_kinds=organisation_kinds,
    element_text=element_text,
    nothing_here="no organisations here",
    ids_column_description="One struct per organisation current on the bake's date whose "
    "area contains the address (`ST_Contains`: a point on a boundary is in neither area): "
    "`organisation_type`, `official_identifier`, `organisation_name`, `gss`, and its division "
    "containing the address, `division_type`, `division_slug`, `division_name`, "
    "`division_official_identifier` (null where none of its current divisions does; any "
    "field the export leaves empty is null). Ordered by type (parl, sp, senedd, nia, gla, "
    "combined-authority, police-area, local-authority), then official identifier; `[]` for "
    "an address in none, never null.",
)
