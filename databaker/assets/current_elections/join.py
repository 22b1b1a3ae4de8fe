"""The current-elections join: every address with the IDs of the ballots whose area contains
it."""

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.assets.current_ballots import CURRENT_BALLOTS_TABLE
from databaker.layers import JoinRun
from databaker.resources import ContainsJoin, SqlQuery, Table

JOINED_TABLE = Table.beside(__file__, "current_ballots_joined_to_address_base")

JOIN_QUERY = ContainsJoin(
    sql=SqlQuery.beside(__file__, "current_ballots_joined_to_address_base"),
    points="addressbase_partitioned",
    areas="current_ballots",
    letters="letters",
    carried=("uprn",),
    area_id="election_id",
    ids_column="ballot_ids",
)


def join_current_ballots(run: JoinRun) -> None:
    """Each address's UPRN with its sorted, distinct ballot IDs: a point-in-area join of the
    partitioned AddressBase with the ballots' areas (pieces), boundaries excluded."""
    run.engine.run(
        JOIN_QUERY,
        {
            "addressbase_partitioned": run.table(ADDRESSBASE_PARTITIONED_TABLE),
            "letters": run.letters,
            "current_ballots": run.table(CURRENT_BALLOTS_TABLE),
            "output": run.output,
        },
    )
