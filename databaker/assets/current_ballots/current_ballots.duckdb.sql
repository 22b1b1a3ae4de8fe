-- The ballots table: usable lines of the export whose election ID is a valid ballot ID.
--   parsed            the lines as current_ballots_parsed returns them
--   $invalid_ids      election IDs refused by uk-election-ids ...
--   $invalid_reasons  ... and why, in the same order
--   $output           parquet for the ballots table
--   $rejects_output   CSV report of rejected and skipped lines
--   $file             the export, named in the report
-- Returns the counts of the lines read, kept, skipped and rejected, the first rejected lines,
-- the election IDs refused, and the ballots named on no usable line.

-- unkept_lines and first_rejected, shared with the other exports of areas.
-- include area_rules

-- The stream is read once, into the table the statements below read.
CREATE TEMP TABLE judged AS
WITH refused AS (
    SELECT unnest(CAST($invalid_ids AS VARCHAR[])) AS election_id,
           unnest(CAST($invalid_reasons AS VARCHAR[])) AS why
)
SELECT
    p.* EXCLUDE (wkb, reason, status),
    ST_GeomFromWKB(p.wkb) AS geometry,
    CASE WHEN p.status = 'ok' AND r.why IS NOT NULL
        THEN printf('election_id "%s" is not a valid ballot ID: %s', p.election_id, r.why)
        ELSE p.reason END AS reason,
    CASE WHEN p.status = 'ok' AND r.why IS NOT NULL THEN 'rejected' ELSE p.status END AS status,
    p.status = 'ok' AND r.why IS NOT NULL AS refused
FROM parsed AS p
LEFT JOIN refused AS r USING (election_id);

COPY (
    SELECT election_id, division_id, source_table, geometry, repaired, line_no AS source_line
    FROM judged
    WHERE status = 'ok'
    ORDER BY election_id, source_line
) TO $output (FORMAT parquet, COMPRESSION zstd);

COPY (FROM unkept_lines(judged, $file)) TO $rejects_output (FORMAT csv, HEADER true);

SELECT
    count(*) AS rows_read,
    count(*) FILTER (WHERE status = 'ok') AS rows,
    count(DISTINCT election_id) FILTER (WHERE status = 'ok') AS ballots,
    count(*) FILTER (WHERE status = 'ok' AND source_table = 'Division') AS division_rows,
    count(*) FILTER (WHERE status = 'ok' AND source_table = 'Organisation') AS organisation_rows,
    count(*) FILTER (WHERE status = 'ok' AND repaired) AS repaired,
    count(*) FILTER (WHERE status = 'skipped') AS skipped_without_geography,
    count(*) FILTER (WHERE status = 'rejected') AS rejected_rows,
    first_rejected($file, line_no, reason, status = 'rejected') AS first_rejected,
    -- The election IDs of the checked ballots that uk-election-ids refused.
    coalesce(list(DISTINCT election_id ORDER BY election_id) FILTER (WHERE refused), [])
        AS refused_ids,
    -- Ballots the export names on no usable line: to the layer they look withdrawn.
    (SELECT coalesce(list(election_id ORDER BY election_id), []) FROM (
        SELECT election_id FROM judged
        WHERE trim(coalesce(election_id, '')) <> ''
        GROUP BY election_id
        HAVING NOT bool_or(status = 'ok')
    )) AS ballots_without_area
FROM judged;
