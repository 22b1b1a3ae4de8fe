-- The ballots export, line by line: header, and each data line with its geometry parsed,
-- repaired when invalid, and a verdict (ok, skipped or rejected with a reason).
--   $file            the export (CSV with a header line)
--   $record_pattern  RFC 4180 pattern for 4 fields (databaker.csv_records.record_pattern)
--   $output          parquet receiving every data line with its verdict
-- Returns the header's fields and the distinct election IDs of usable lines.

-- RFC 4180: a quoted field's content has its quotes doubled; a bare field is taken as it is.
CREATE TEMP MACRO csv_field(quoted, bare) AS
    CASE WHEN quoted <> '' THEN replace(quoted, '""', '"') ELSE bare END;

-- A line may hold a large geometry: up to 64 MiB, read through a 128 MiB buffer (DuckDB's
-- default buffer for so long a line would be 16 times the line, beyond the memory limit).
CREATE TEMP TABLE export_lines AS
SELECT
    line AS raw_line,
    regexp_extract(
        line, $record_pattern,
        ['election_id_q', 'election_id', 'matched', 'division_id_q', 'division_id',
         'geometry_q', 'geometry', 'source_table_q', 'source_table']
    ) AS f
FROM read_csv(
    [$file], columns = {'line': 'VARCHAR'}, header = false, auto_detect = false,
    delim = chr(0), quote = '', escape = '', new_line = '\r\n', strict_mode = false,
    max_line_size = 67108864, buffer_size = 134217728, parallel = false
);

-- Read by one thread, in order: rowid 0 is line 1.
CREATE TEMP TABLE export_fields AS
SELECT
    rowid + 1 AS line_no,
    raw_line,
    f.matched = ',' AS well_formed,
    csv_field(f.election_id_q, f.election_id) AS election_id,
    csv_field(f.division_id_q, f.division_id) AS division_id,
    csv_field(f.geometry_q, f.geometry) AS geometry_text,
    csv_field(f.source_table_q, f.source_table) AS source_table
FROM export_lines;

COPY (
    WITH parsed AS (
        SELECT
            *,
            regexp_extract(geometry_text, '^\s*SRID=([0-9]+);', 1) AS srid,
            TRY(ST_GeomFromText(regexp_replace(geometry_text, '^\s*SRID=[0-9]+;', ''))) AS shape
        FROM export_fields
        WHERE line_no > 1 AND well_formed AND source_table IN ('Organisation', 'Division')
    ),
    validity AS (
        SELECT *, ST_IsValid(shape) AS shape_is_valid FROM parsed
    ),
    repaired AS (
        SELECT
            *,
            shape IS NOT NULL AND NOT shape_is_valid AS repaired,
            CASE WHEN shape_is_valid THEN shape
                ELSE ST_CollectionExtract(ST_MakeValid(shape), 3) END AS geometry
        FROM validity
    ),
    judged AS (
        SELECT
            *,
            CASE
                WHEN trim(election_id) = '' THEN 'election_id is empty'
                WHEN trim(geometry_text) = '' THEN 'geometry is empty'
                WHEN srid NOT IN ('', '4326') THEN
                    printf('geometry is in SRID %s, not 4326 (lon/lat)', srid)
                WHEN shape IS NULL THEN
                    printf('geometry is not valid WKT: "%s..."', geometry_text[:40])
                WHEN ST_GeometryType(shape) NOT IN ('POLYGON', 'MULTIPOLYGON') THEN
                    printf('geometry is a %s, not a POLYGON or MULTIPOLYGON', ST_GeometryType(shape))
                WHEN geometry IS NULL OR ST_IsEmpty(geometry) THEN
                    'geometry is invalid and could not be repaired into a polygon'
                WHEN NOT (ST_XMin(geometry) >= -10 AND ST_XMax(geometry) <= 3
                          AND ST_YMin(geometry) >= 49 AND ST_YMax(geometry) <= 62) THEN
                    'geometry is outside Great Britain: are the coordinates lon/lat?'
            END AS reason
        FROM repaired
    )
    SELECT
        line_no, raw_line, election_id, division_id, source_table, geometry, repaired, reason,
        CASE WHEN reason IS NULL THEN 'ok' ELSE 'rejected' END AS status
    FROM judged
    UNION ALL BY NAME
    SELECT
        line_no, raw_line, election_id, division_id, source_table,
        NULL::GEOMETRY AS geometry, false AS repaired,
        CASE
            WHEN coalesce(raw_line, '') = '' THEN 'blank line'
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
    (SELECT coalesce(list(DISTINCT election_id ORDER BY election_id), [])
     FROM read_parquet($output) WHERE status = 'ok') AS election_ids;
