-- The ballots export, read from EveryElection's database (EE) in the ballots CSV's format:
-- one row per subdivided piece of each current ballot's area, as EWKT in lon/lat (SRID 4326).
--   since   the earliest poll date still current: the export's day less 30 days
-- A ballot is current when it is Approved, not a group (group_type NULL), not marked
-- not-current (current false), and either polls on or after since or is marked current. Its
-- area is its division geography's pieces when it has a division geography, otherwise its
-- organisation geography's; a ballot with neither (or whose geography has no pieces) is one
-- row with source_table None and empty division_id and geometry. division_id is the
-- geography's id. Rows are ordered by ballot (bytewise) and piece id, so an unchanged
-- database exports the same bytes.
-- It reads only elections_election(election_id, current_status, poll_open_date, current,
-- group_type, division_geography_id, organisation_geography_id) and the two subdivided tables'
-- (id, <geography>_id, geography), the columns the original baker's export reads.
SELECT
    ballot.election_id,
    piece.geography_id AS division_id,
    ST_AsEWKT(piece.geography) AS geometry,
    coalesce(piece.source_table, 'None') AS source_table
FROM elections_election AS ballot
LEFT JOIN LATERAL (
    SELECT
        division_geography_id AS geography_id,
        id AS piece_id,
        geography,
        'Division' AS source_table
    FROM organisations_divisiongeographysubdivided
    WHERE division_geography_id = ballot.division_geography_id
    UNION ALL
    SELECT
        organisation_geography_id AS geography_id,
        id AS piece_id,
        geography,
        'Organisation' AS source_table
    FROM organisations_organisationgeographysubdivided
    WHERE organisation_geography_id = ballot.organisation_geography_id
        AND ballot.division_geography_id IS NULL
) AS piece ON true
WHERE ballot.current_status = 'Approved'
    AND (ballot.poll_open_date >= {since} OR ballot.current)
    AND ballot.current IS NOT false
    AND ballot.group_type IS NULL
ORDER BY ballot.election_id COLLATE "C", piece.piece_id
