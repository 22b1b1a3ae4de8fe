"""The boundary-reviews join: every address with the boundary reviews redrawing its divisions.

Two steps. A point-in-area join gives each address (its UPRN) the keys of the review divisions
(pieces) containing it, into a scratch table; a query then pairs each address's old and new
divisions of one review and type, tells how the pair changed, and writes each address (its
UPRN, as every layer's joined table) with its list of reviews as JSON objects (the contract is
in ``current_boundary_reviews_joined_to_address_base.duckdb.sql``).

Whether a division's boundary changed depends on every address it holds, whatever its postcode
letter, so the first step always covers every letter; the second writes only the letters of
the run. Rebuilding one letter therefore costs a country-wide point-in-area join (cheap against
the few review divisions); a full bake, the usual run, costs nothing more.
"""

from string import ascii_uppercase

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.assets.boundary_reviews import BOUNDARY_REVIEW_DIVISIONS_TABLE
from databaker.assets.current_boundary_reviews.review_lists import write_review_lists
from databaker.layers import JoinRun
from databaker.resources import ContainsJoin, NativeQuery, SqlQuery, Table

ADDRESSES_IN_DIVISIONS = Table.beside(__file__, "addresses_in_review_divisions")
"""Scratch: every UPRN of every letter with the sorted keys of the divisions containing it."""
JOINED_TABLE = Table.beside(__file__, "current_boundary_reviews_joined_to_address_base")

DIVISIONS_JOIN = ContainsJoin(
    sql=SqlQuery.beside(__file__, "addresses_in_review_divisions"),
    points="addressbase_partitioned",
    areas="boundary_review_divisions",
    letters="letters",
    carried=("uprn",),
    area_id="division_key",
    ids_column="division_keys",
)
REVIEWS_QUERY = NativeQuery(
    sql=SqlQuery.beside(__file__, "current_boundary_reviews_joined_to_address_base"),
    native=write_review_lists,
)
"""Each address's reviews: the SQL is the definition (Athena runs it); the embedded engine runs
:func:`write_review_lists`, the same rows in bounded memory."""


def join_boundary_reviews(run: JoinRun) -> None:
    """Write ``run.output``: each address of ``run.letters`` once (its UPRN) with its
    ``boundary_reviews``, a JSON object per review whose old and new divisions both contain
    it, ordered by review."""
    divisions = run.table(BOUNDARY_REVIEW_DIVISIONS_TABLE)
    run.engine.run(
        DIVISIONS_JOIN,
        {
            "addressbase_partitioned": run.table(ADDRESSBASE_PARTITIONED_TABLE),
            "letters": list(ascii_uppercase),
            "boundary_review_divisions": divisions,
            "output": run.scratch_output(ADDRESSES_IN_DIVISIONS),
        },
    )
    run.engine.run(
        REVIEWS_QUERY,
        {
            "addresses_in_review_divisions": run.scratch_table(ADDRESSES_IN_DIVISIONS),
            "boundary_review_divisions": divisions,
            "letters": run.letters,
            "output": run.output,
        },
    )
