-- The ballots export, line by line: header, and each data line with its geometry parsed,
-- repaired when invalid, and a verdict (ok, skipped or rejected with a reason).
--   $file            the export (CSV with a header line)
--   $record_pattern  RFC 4180 pattern for 4 fields (databaker.csv_records.record_pattern)
--   $polygonal_wkt   one POLYGON or MULTIPOLYGON in WKT (current_ballots.wkt.POLYGONAL_WKT)
--   $output          parquet receiving every data line with its verdict
-- Returns the header's fields and the distinct election IDs of usable lines.

-- RFC 4180: a quoted field's content has its quotes doubled; a bare field is taken as it is.
CREATE TEMP MACRO csv_field(quoted, bare) AS
    CASE WHEN quoted <> '' THEN replace(quoted, '""', '"') ELSE bare END;

-- What follows the geometry (matched by `pattern`, $polygonal_wkt) that a field starts with,
-- which DuckDB's WKT reader would silently drop.
CREATE TEMP MACRO after_geometry(wkt, pattern) AS
    trim(wkt[length(regexp_extract(wkt, '^' || pattern, 0, 'i')) + 1:]);

-- A line may hold a large geometry: up to 64 MiB, read through a 128 MiB buffer (DuckDB's
-- default buffer for so long a line would be 16 times the line, beyond the memory limit).
-- A longer line is not read but listed in reject_errors with its number (and its first
-- 10,000 characters), to be rejected like any other bad line.
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
    max_line_size = 67108864, buffer_size = 134217728, parallel = false,
    ignore_errors = true, store_rejects = true
);

CREATE TEMP TABLE unread_lines AS
SELECT CAST(line AS BIGINT) AS line_no, error_type, error_message, csv_line FROM reject_errors;

-- Any other line the reader could not read (one that is not UTF-8) stops the bake.
SELECT CASE WHEN count(*) > 0 THEN error(printf(
    '%s:%d: %s', $file, min(line_no),
    arg_min(CASE error_type WHEN 'INVALID ENCODING' THEN 'not UTF-8 encoded'
                ELSE error_message END, line_no)
)) END
FROM unread_lines
WHERE error_type <> 'LINE SIZE OVER MAXIMUM';

-- Read by one thread, in order: rowid n is the (n + 1)th line read, line n + 1 but for the
-- lines left unread before it. The k-th unread line, line L, comes after L - k lines read: a
-- line read is k lines further down, k the rank of the last unread line with L - k <= rowid.
CREATE TEMP TABLE export_fields AS
WITH skips AS (
    SELECT read_before, max(skipped) AS skipped
    FROM (
        SELECT
            line_no - row_number() OVER (ORDER BY line_no) AS read_before,
            row_number() OVER (ORDER BY line_no) AS skipped
        FROM unread_lines
    )
    GROUP BY read_before
),
numbered AS (SELECT rowid AS read_no, * FROM export_lines)
SELECT
    n.read_no + 1 + coalesce(s.skipped, 0) AS line_no,
    n.raw_line,
    n.f.matched = ',' AS well_formed,
    csv_field(n.f.election_id_q, n.f.election_id) AS election_id,
    csv_field(n.f.division_id_q, n.f.division_id) AS division_id,
    csv_field(n.f.geometry_q, n.f.geometry) AS geometry_text,
    csv_field(n.f.source_table_q, n.f.source_table) AS source_table,
    false AS too_long
FROM numbered AS n
ASOF LEFT JOIN skips AS s ON n.read_no >= s.read_before
UNION ALL
-- A line too long to read: its election ID still says that the export names the ballot.
SELECT
    line_no,
    csv_line AS raw_line,
    false AS well_formed,
    csv_field(
        regexp_extract(csv_line, '^(?:"((?:[^"]|"")*)"|([^,"][^,]*)),', 1),
        regexp_extract(csv_line, '^(?:"((?:[^"]|"")*)"|([^,"][^,]*)),', 2)
    ) AS election_id,
    NULL AS division_id,
    NULL AS geometry_text,
    NULL AS source_table,
    true AS too_long
FROM unread_lines
WHERE error_type = 'LINE SIZE OVER MAXIMUM';

COPY (
    WITH texts AS (
        SELECT
            *,
            -- EWKT's SRID prefix, in any case; an unreadable one is left to fail the grammar.
            regexp_extract(geometry_text, '^\s*SRID=([0-9]+);', 1, 'i') AS srid,
            regexp_replace(geometry_text, '^\s*SRID=[0-9]+;', '', 'i') AS wkt
        FROM export_fields
        WHERE line_no > 1 AND well_formed AND source_table IN ('Organisation', 'Division')
    ),
    parsed AS (SELECT *, TRY(ST_GeomFromText(wkt)) AS shape FROM texts),
    -- Each ring of the geometry's non-empty polygons. GEOS raises, rather than answer, on a
    -- ring that does not close or has fewer than 4 points, so these are checked first.
    rings AS (
        SELECT
            *,
            flatten(list_transform(
                list_filter(ST_Dump(shape), part -> NOT ST_IsEmpty(part.geom)),
                part -> list_prepend(
                    ST_ExteriorRing(part.geom),
                    list_transform(
                        range(1, ST_NumInteriorRings(part.geom) + 1),
                        i -> ST_InteriorRingN(part.geom, i::INTEGER)
                    )
                )
            )) AS ring_list
        FROM parsed
    ),
    faults AS (
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
                WHEN NOT regexp_full_match(wkt, $polygonal_wkt || '\s*', 'i') THEN
                    CASE WHEN regexp_matches(wkt, '^' || $polygonal_wkt, 'i')
                        THEN printf(
                            'geometry goes on after its %s ends: "%s..."',
                            ST_GeometryType(shape), after_geometry(wkt, $polygonal_wkt)[:40]
                        )
                        ELSE printf('geometry is not valid WKT: "%s..."', geometry_text[:40])
                    END
                WHEN ST_IsEmpty(shape) THEN
                    printf('geometry is an empty %s', ST_GeometryType(shape))
                WHEN list_bool_or(list_transform(
                        ring_list, ring -> ST_NPoints(ring) > 0 AND NOT ST_IsClosed(ring)
                    )) THEN
                    'geometry has a ring that does not close (its last point is not its first)'
                WHEN list_min(list_transform(ring_list, ring -> ST_NPoints(ring))) < 4 THEN
                    'geometry has a ring of fewer than 4 points'
                WHEN NOT (isfinite(ST_XMin(shape)) AND isfinite(ST_XMax(shape))
                          AND isfinite(ST_YMin(shape)) AND isfinite(ST_YMax(shape))) THEN
                    'geometry has a coordinate that is not a finite number'
                WHEN NOT (ST_XMin(shape) >= -10 AND ST_XMax(shape) <= 3
                          AND ST_YMin(shape) >= 49 AND ST_YMax(shape) <= 62) THEN
                    'geometry is outside Great Britain: are the coordinates lon/lat?'
            END AS fault
        FROM rings
    ),
    -- Only a geometry without a fault reaches GEOS; TRY turns whatever GEOS may still raise on
    -- into a geometry that could not be repaired, a rejected row like the others.
    validity AS (
        SELECT *, CASE WHEN fault IS NULL THEN TRY(ST_IsValid(shape)) END AS shape_is_valid
        FROM faults
    ),
    repaired AS (
        SELECT
            *,
            fault IS NULL AND shape_is_valid IS NOT TRUE AS repaired,
            CASE WHEN fault IS NULL THEN
                CASE WHEN shape_is_valid THEN shape
                    ELSE TRY(ST_CollectionExtract(ST_MakeValid(shape), 3)) END
            END AS geometry
        FROM validity
    ),
    judged AS (
        SELECT
            *,
            coalesce(
                fault,
                CASE WHEN geometry IS NULL OR ST_IsEmpty(geometry) THEN
                    'geometry is invalid and could not be repaired into a polygon'
                END
            ) AS reason
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
            WHEN too_long THEN 'line is longer than 64 MiB, the most a line may hold'
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
