-- The ballots export, line by line: header, and each data line with its geometry parsed,
-- repaired when invalid, and a verdict (ok, skipped or rejected with a reason).
--   export_lines_read the export's lines, cut by databaker/line_reading.py: line_no, raw_line
--                     (without its LF or CRLF), too_long (raw_line holds its start); line 1 is
--                     the header
--   $record_pattern  RFC 4180 pattern for 4 fields (databaker.csv_records.record_pattern)
--   $polygonal_wkt   one POLYGON or MULTIPOLYGON in WKT (current_ballots.wkt.POLYGONAL_WKT)
--   $output          parquet receiving every data line with its verdict
-- Returns the header's fields (or its first line, when that is no record of 4 fields) and the
-- distinct election IDs of usable lines.

-- The area rules shared with the other export of areas: csv_field, area_srid, area_wkt,
-- area_rings, area_fault, area_kept, area_unrepaired.
-- include area_rules

-- The stream is read once, into a table that the statements below read again. A line holding
-- a carriage return or a NUL byte is rejected whole, with its number and text. A line too long
-- to read as a record (its start is kept) still names its ballot by its first field: to the
-- guard rails, the export names that ballot.
CREATE TEMP TABLE export_fields AS
WITH split AS (
    SELECT
        line_no,
        raw_line,
        too_long,
        CASE
            WHEN too_long THEN 'line is longer than 64 MiB, the most a line may hold'
            WHEN contains(raw_line, chr(13)) THEN 'line holds a carriage return that does not end it'
            WHEN contains(raw_line, chr(0)) THEN 'line holds a NUL byte'
        END AS line_fault,
        CASE WHEN NOT too_long THEN regexp_extract(
            raw_line, $record_pattern,
            ['election_id_q', 'election_id', 'matched', 'division_id_q', 'division_id',
             'geometry_q', 'geometry', 'source_table_q', 'source_table']
        ) END AS f,
        CASE WHEN too_long THEN regexp_extract(
            raw_line, '^(?:"((?:[^"]|"")*)"|([^,"][^,]*)),', ['election_id_q', 'election_id']
        ) END AS first_field
    FROM export_lines_read
    -- Blank lines hold no row.
    WHERE raw_line <> ''
)
SELECT
    line_no,
    raw_line,
    line_fault,
    line_fault IS NULL AND f.matched = ',' AS well_formed,
    CASE WHEN too_long
        THEN csv_field(first_field.election_id_q, first_field.election_id)
        ELSE csv_field(f.election_id_q, f.election_id)
    END AS election_id,
    csv_field(f.division_id_q, f.division_id) AS division_id,
    csv_field(f.geometry_q, f.geometry) AS geometry_text,
    csv_field(f.source_table_q, f.source_table) AS source_table
FROM split;

COPY (
    WITH texts AS (
        SELECT *, area_srid(geometry_text) AS srid, area_wkt(geometry_text) AS wkt
        FROM export_fields
        WHERE line_no > 1 AND well_formed AND source_table IN ('Organisation', 'Division')
    ),
    parsed AS (SELECT *, TRY(ST_GeomFromText(wkt)) AS shape FROM texts),
    rings AS (SELECT *, area_rings(shape) AS ring_list FROM parsed),
    faults AS (
        SELECT
            *,
            CASE WHEN trim(election_id) = '' THEN 'election_id is empty'
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
        line_no, raw_line, election_id, division_id, source_table, geometry, repaired, reason,
        CASE WHEN reason IS NULL THEN 'ok' ELSE 'rejected' END AS status
    FROM judged
    UNION ALL BY NAME
    SELECT
        line_no, raw_line, election_id, division_id, source_table,
        NULL::GEOMETRY AS geometry, false AS repaired,
        CASE
            WHEN line_fault IS NOT NULL THEN line_fault
            WHEN NOT well_formed THEN
                'not a CSV record of 4 fields (election_id,division_id,geometry,source_table)'
            WHEN source_table = 'None' THEN 'no geography (source_table None)'
            ELSE printf('source_table "%s" is not Organisation, Division or None', source_table[:40])
        END AS reason,
        CASE WHEN well_formed AND source_table = 'None' THEN 'skipped' ELSE 'rejected' END AS status
    FROM export_fields
    WHERE line_no > 1 AND NOT (well_formed AND source_table IN ('Organisation', 'Division'))
) TO $output (FORMAT parquet, COMPRESSION zstd);

SELECT
    (SELECT [election_id, division_id, geometry_text, source_table]
     FROM export_fields WHERE line_no = 1 AND well_formed) AS header,
    (SELECT {'text': raw_line[:200], 'fault': line_fault}
     FROM export_fields WHERE line_no = 1) AS first_line,
    (SELECT coalesce(list(DISTINCT election_id ORDER BY election_id), [])
     FROM read_parquet($output) WHERE status = 'ok') AS election_ids;
