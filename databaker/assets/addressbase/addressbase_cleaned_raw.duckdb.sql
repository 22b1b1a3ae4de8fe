-- The AddressBase drop read line by line: every line becomes either a valid address row or a
-- rejected row with its file, line number and reason. Blank lines hold no row and are passed over.
--   drop_lines_read     the drop's lines, cut by line_by_line.py: source_file, line_no,
--                       raw_line (without its LF or CRLF), too_long (raw_line holds its start)
--   $record_pattern     RFC 4180 pattern for 5 fields (databaker.csv_records.record_pattern)
--   $addressbase_source the drop's location, stored on every row
--   $output             folder receiving the valid rows as first_letter=<L>/ partitions
--   $rejects_output     CSV report of rejected rows
--
-- A clean drop is read by the fast reading (fast_reading.py), which keeps the same rows with
-- the same values, or declines the drop; this reading then runs, because only it knows which
-- line each row came from.

-- Views take no parameters: they read this variable instead.
SET VARIABLE record_pattern = $record_pattern;

-- RFC 4180: a quoted field's content has its quotes doubled; a bare field is taken as it is.
CREATE TEMP MACRO csv_field(quoted, bare) AS
    CASE WHEN quoted <> '' THEN replace(quoted, '""', '"') ELSE bare END;

-- The stream is read once; the rules below read the lines twice.
CREATE TEMP TABLE drop_lines AS
SELECT source_file, line_no, raw_line, too_long FROM drop_lines_read;

-- Lines carry their numbers: nothing below needs rows in order, so DuckDB may write in parallel.
SET SESSION preserve_insertion_order = false;

CREATE TEMP VIEW line_fields AS
WITH split AS (
    SELECT
        *,
        regexp_extract(
            raw_line, getvariable('record_pattern'),
            ['uprn_q', 'uprn', 'matched', 'address_q', 'address', 'postcode_q', 'postcode',
             'location_q', 'location', 'address_type_q', 'address_type']
        ) AS f
    FROM drop_lines
)
SELECT
    source_file,
    line_no,
    raw_line,
    too_long,
    raw_line = '' AS blank,
    coalesce(f.matched = ',', false) AS well_formed,
    csv_field(f.uprn_q, f.uprn) AS uprn_text,
    csv_field(f.address_q, f.address) AS address,
    csv_field(f.postcode_q, f.postcode) AS postcode_text,
    csv_field(f.location_q, f.location) AS location,
    csv_field(f.address_type_q, f.address_type) AS address_type
FROM split;

CREATE TEMP VIEW judged AS
-- Most postcodes and locations are already in canonical form: a pattern without captures
-- recognises them cheaply, and only the others go through the general parsing.
WITH canonical AS (
    SELECT
        *,
        regexp_full_match(postcode_text, '[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}') AS postcode_ok,
        regexp_full_match(
            location, 'SRID=4326;POINT\(-?[0-9]+(?:\.[0-9]+)? -?[0-9]+(?:\.[0-9]+)?\)'
        ) AS location_ok
    FROM line_fields
),
inner_point AS (
    SELECT *, CASE WHEN location_ok THEN location[17:-2] END AS point_text FROM canonical
),
parsed AS (
    SELECT
        *,
        -- Upper-cased only if ASCII: upper() turns a dotless i into I, a long s into S.
        CASE WHEN NOT postcode_ok AND strlen(postcode_text) = length(postcode_text)
            THEN regexp_replace(upper(postcode_text), '\s', '', 'g') END AS postcode_compact,
        CASE WHEN location_ok
            THEN {'lon': split_part(point_text, ' ', 1), 'lat': split_part(point_text, ' ', 2)}
            ELSE regexp_extract(
                location,
                '^(?:SRID=4326;)?POINT\s*\(\s*(-?[0-9]+(?:\.[0-9]+)?)\s+(-?[0-9]+(?:\.[0-9]+)?)\s*\)$',
                ['lon', 'lat']
            )
        END AS point
    FROM inner_point
),
typed AS (
    SELECT
        * EXCLUDE (point, point_text, postcode_compact),
        -- A UPRN is a number: one text form, without leading zeros.
        ltrim(uprn_text, '0') AS uprn,
        CASE
            WHEN postcode_ok THEN postcode_text
            WHEN length(postcode_compact) BETWEEN 5 AND 7
                THEN left(postcode_compact, -3) || ' ' || right(postcode_compact, 3)
        END AS postcode,
        TRY_CAST(nullif(point.lon, '') AS DOUBLE) AS longitude,
        TRY_CAST(nullif(point.lat, '') AS DOUBLE) AS latitude
    FROM parsed
)
SELECT
    *,
    split_part(postcode, ' ', 1) AS outcode,
    postcode[1] AS first_letter,
    CASE
        WHEN too_long THEN 'line is longer than 1 MiB (1048576 bytes)'
        WHEN contains(raw_line, chr(13)) THEN 'line holds a carriage return that does not end it'
        WHEN contains(raw_line, chr(0)) THEN 'line holds a NUL byte'
        WHEN NOT well_formed
            THEN 'not a CSV record of 5 fields (uprn,address,postcode,location,address_type)'
        WHEN NOT regexp_full_match(uprn_text, '[0-9]{1,12}') THEN
            printf('uprn "%s" is not a number of 1 to 12 digits', uprn_text[:40])
        WHEN uprn = '' THEN printf('uprn "%s" is zero (UPRNs start at 1)', uprn_text)
        -- Whitespace as Python's str.isspace and Arrow's utf8_is_space know it.
        WHEN regexp_full_match(
            address,
            '[\t-\r\x1c-\x20\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]*'
        ) THEN 'address is empty'
        WHEN NOT postcode_ok
            AND NOT coalesce(regexp_full_match(postcode, '[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}'), false)
            THEN printf('postcode "%s" is not a valid UK postcode', postcode_text[:40])
        WHEN NOT location_ok
            AND regexp_matches(location, '^SRID=[0-9]+;') AND NOT starts_with(location, 'SRID=4326;')
            THEN printf('location "%s" is not in SRID 4326 (lon/lat)', location[:60])
        WHEN longitude IS NULL OR latitude IS NULL THEN
            printf('location "%s" is not SRID=4326;POINT(<lon> <lat>)', location[:60])
        WHEN NOT (longitude BETWEEN -10 AND 3 AND latitude BETWEEN 49 AND 62) THEN
            printf('location "%s" is outside Great Britain', location[:60])
    END AS reason
FROM typed
WHERE NOT blank;

-- The rules are evaluated twice (here and for the kept rows below), which spares a materialised
-- copy of every row.
CREATE TEMP TABLE rejected AS
SELECT source_file, line_no, reason, raw_line
FROM judged
WHERE reason IS NOT NULL;

COPY (
    SELECT
        uprn, address, postcode, outcode, first_letter, longitude, latitude, address_type,
        $addressbase_source AS addressbase_source, source_file
    FROM judged
    WHERE reason IS NULL
) TO $output (FORMAT parquet, PARTITION_BY (first_letter), COMPRESSION snappy);

COPY (
    SELECT source_file AS file, line_no AS line, reason, raw_line AS text
    FROM rejected
    ORDER BY file, line
) TO $rejects_output (FORMAT csv, HEADER true);

-- Valid rows are counted from the files' footers by the caller.
SELECT
    (SELECT count(*) FROM drop_lines) AS lines,
    count(*) AS rejected_rows,
    coalesce(
        list({'file': source_file, 'line': line_no, 'reason': reason}
             ORDER BY source_file, line_no)[:20],
        []
    ) AS first_rejected
FROM rejected;
