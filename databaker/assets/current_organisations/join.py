"""The organisations join: every address with the current organisations whose area contains
it, each with its division there.

One query, whose SQL is the definition (Athena runs it): a point-in-area join of the
partitioned AddressBase with the pieces of every current organisation's area and of its
current divisions' areas, then, per address and organisation, whether the organisation's own
area contains the address and which of its divisions does. The embedded engine runs
:func:`write_organisation_lists` instead, the same rows computed on integer columns. The
organisations table holds only what is current on the date the bake is as of, so the join
itself knows no dates.
"""

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.assets.current_organisations.organisation_lists import write_organisation_lists
from databaker.assets.organisations import ORGANISATION_AREAS_TABLE
from databaker.layers import JoinRun
from databaker.resources import NativeQuery, SqlQuery, Table

JOINED_TABLE = Table.beside(__file__, "current_organisations_joined_to_address_base")

ORGANISATIONS_QUERY = NativeQuery(
    sql=SqlQuery.beside(__file__, "current_organisations_joined_to_address_base"),
    native=write_organisation_lists,
)


def join_organisations(run: JoinRun) -> None:
    """Write ``run.output``: each address of ``run.letters`` once with its ``organisations``,
    an element per current organisation containing it, in list order."""
    run.engine.run(
        ORGANISATIONS_QUERY,
        {
            "addressbase_partitioned": run.table(ADDRESSBASE_PARTITIONED_TABLE),
            "letters": run.letters,
            "organisation_areas": run.table(ORGANISATION_AREAS_TABLE),
            "output": run.output,
        },
    )
