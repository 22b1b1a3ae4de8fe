-- The ballots export's data lines, each with its geometry parsed, repaired when invalid, and a
-- verdict (ok, skipped or rejected with a reason).
--   export_fields    the lines as current_ballots_fields returns them (line 1, the header,
--                    among them), in batches that the threads share
--   $polygonal_wkt   one POLYGON or MULTIPOLYGON in WKT (current_ballots.wkt.POLYGONAL_WKT)
-- Returns every data line: line_no, text, election_id, division_id, source_table, wkb (the
-- area kept, as WKB), repaired, reason and status.

-- The area rules shared with the other exports of areas: area_verdicts judges a line's area
-- after its fields.
-- include area_rules

-- The stream is read once: a line without an area (no record, source_table None or another)
-- gets its reason where a line with one gets its geometry's.
WITH fields AS (
    SELECT
        *,
        CASE
            WHEN line_fault IS NOT NULL THEN line_fault
            WHEN NOT well_formed THEN
                'not a CSV record of 4 fields (election_id,division_id,geometry,source_table)'
            WHEN source_table = 'None' THEN 'no geography (source_table None)'
            WHEN source_table NOT IN ('Organisation', 'Division') THEN printf(
                'source_table "%s" is not Organisation, Division or None', source_table[:40]
            )
            WHEN trim(election_id) = '' THEN 'election_id is empty'
        END AS field_fault
    FROM export_fields
    WHERE line_no > 1
)
SELECT
    line_no, text, election_id, division_id, source_table, ST_AsWKB(geometry) AS wkb, repaired,
    fault AS reason,
    CASE
        WHEN fault IS NULL THEN 'ok'
        WHEN well_formed AND source_table = 'None' THEN 'skipped'
        ELSE 'rejected'
    END AS status
FROM area_verdicts(fields, $polygonal_wkt);
