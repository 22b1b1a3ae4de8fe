-- The ballots export's data lines, each with its geometry parsed, repaired when invalid, and a
-- verdict (ok, skipped or rejected with a reason).
--   export_fields    the lines as current_ballots_fields returns them (line 1, the header,
--                    among them), in batches that the threads share
--   $polygonal_wkt   one POLYGON or MULTIPOLYGON in WKT (current_ballots.wkt.POLYGONAL_WKT)
-- Returns every data line: line_no, text, election_id, division_id, source_table, wkb (the
-- area kept, as WKB), repaired, reason and status.

-- The area rules shared with the other export of areas: area_srid, area_wkt, area_rings,
-- area_fault, area_kept, area_unrepaired.
-- include area_rules

-- The stream is read once: a line without an area (no record, source_table None or another)
-- gets its reason where a line with one gets its geometry's.
WITH texts AS (
    SELECT
        *,
        well_formed AND source_table IN ('Organisation', 'Division') AS has_area,
        area_srid(geometry_text) AS srid,
        area_wkt(geometry_text) AS wkt
    FROM export_fields
    WHERE line_no > 1
),
parsed AS (
    SELECT *, CASE WHEN has_area THEN TRY(ST_GeomFromText(wkt)) END AS shape FROM texts
),
rings AS (SELECT *, area_rings(shape) AS ring_list FROM parsed),
faults AS (
    SELECT
        *,
        CASE
            WHEN line_fault IS NOT NULL THEN line_fault
            WHEN NOT well_formed THEN
                'not a CSV record of 4 fields (election_id,division_id,geometry,source_table)'
            WHEN source_table = 'None' THEN 'no geography (source_table None)'
            WHEN NOT has_area THEN printf(
                'source_table "%s" is not Organisation, Division or None', source_table[:40]
            )
            WHEN trim(election_id) = '' THEN 'election_id is empty'
            ELSE area_fault(geometry_text, srid, wkt, shape, ring_list, $polygonal_wkt)
        END AS fault
    FROM rings
),
validity AS (
    SELECT *, CASE WHEN fault IS NULL THEN TRY(ST_IsValid(shape)) END AS shape_is_valid
    FROM faults
),
repaired AS (
    SELECT
        *,
        fault IS NULL AND shape_is_valid IS NOT TRUE AS repaired,
        CASE WHEN fault IS NULL THEN area_kept(shape, shape_is_valid) END AS geometry
    FROM validity
),
judged AS (SELECT *, coalesce(fault, area_unrepaired(geometry)) AS reason FROM repaired)
SELECT
    line_no, text, election_id, division_id, source_table, ST_AsWKB(geometry) AS wkb, repaired,
    reason,
    CASE
        WHEN reason IS NULL THEN 'ok'
        WHEN well_formed AND source_table = 'None' THEN 'skipped'
        ELSE 'rejected'
    END AS status
FROM judged;
