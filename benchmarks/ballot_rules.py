"""The bake's rules for a ballot area, as one SQL table for the harness's peers.

Only ``Organisation`` and ``Division`` rows with a geometry; an invalid polygon is repaired
into its polygonal parts with ``ST_MakeValid``. Like ``drop_rules``, nothing of the bake is
imported, so the peers stay independent of it.
"""

BALLOT_AREAS_SQL = r"""
CREATE OR REPLACE TEMP TABLE ballots AS
WITH rows AS (
    SELECT
        election_id,
        ST_GeomFromText(regexp_replace(geometry, '^\s*SRID=[0-9]+;', '')) AS shape
    FROM read_csv(
        $ballots, header = true, auto_detect = false, quote = '"', escape = '"',
        columns = {'election_id': 'VARCHAR', 'division_id': 'VARCHAR',
                   'geometry': 'VARCHAR', 'source_table': 'VARCHAR'},
        max_line_size = 268435456
    )
    WHERE source_table IN ('Organisation', 'Division') AND trim(coalesce(geometry, '')) <> ''
)
SELECT
    election_id,
    CASE WHEN ST_IsValid(shape) THEN shape
        ELSE ST_CollectionExtract(ST_MakeValid(shape), 3) END AS geom
FROM rows
"""


def define_ballot_areas(conn, ballots: str) -> None:
    """Create the temporary table ``ballots(election_id, geom)`` from the export ``ballots`` on
    ``conn`` (a DuckDB connection with the spatial extension loaded)."""
    conn.execute(BALLOT_AREAS_SQL, {"ballots": ballots})
