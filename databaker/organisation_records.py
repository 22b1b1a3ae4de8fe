"""The organisations export's format, shared by the reader, the export from EveryElection and
the generator: its header, exactly, and EveryElection's organisation types in the order an
address's organisations are listed."""

HEADER = (
    "organisation_type",
    "official_identifier",
    "organisation_name",
    "gss",
    "start_date",
    "end_date",
    "divisionset_start_date",
    "divisionset_end_date",
    "division_type",
    "division_slug",
    "division_name",
    "division_official_identifier",
    "geometry",
)
ORGANISATION_TYPES = (
    "parl",
    "sp",
    "senedd",
    "nia",
    "gla",
    "combined-authority",
    "police-area",
    "local-authority",
)
