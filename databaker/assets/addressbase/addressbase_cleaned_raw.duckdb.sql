-- The AddressBase drop, line by line: every physical line becomes either a valid address row
-- or a rejected row with its file, line number and reason.
--   $files             the drop's CSV files (.csv or .csv.gz), in order
--   $record_pattern    RFC 4180 pattern for 5 fields (databaker.csv_records.record_pattern)
--   $addressbase_source the drop's location, stored on every row
--   $output            parquet file for the valid rows
--   $rejects_output    CSV report of rejected rows

-- RFC 4180: a quoted field's content has its quotes doubled; a bare field is taken as it is.
CREATE TEMP MACRO csv_field(quoted, bare) AS
    CASE WHEN quoted <> '' THEN replace(quoted, '""', '"') ELSE bare END;

-- One thread reads the files in order, so a row's position in the table is its position in
-- the drop; the parsing below runs in parallel over that table.
CREATE TEMP TABLE drop_lines AS
SELECT filename AS source_file, line AS raw_line
FROM read_csv(
    $files, columns = {'line': 'VARCHAR'}, header = false, auto_detect = false,
    delim = chr(0), quote = '', escape = '', new_line = '\r\n', strict_mode = false,
    max_line_size = 1048576, filename = true, parallel = false
);

-- Positions are fixed now; what follows needs no order, which lets DuckDB write in parallel.
SET preserve_insertion_order = false;

CREATE TEMP TABLE drop_rows AS
WITH numbered AS (
    SELECT
        d.source_file,
        d.rowid - first_row.rowid0 + 1 AS line_no,
        d.raw_line,
        string_split(d.raw_line, ',') AS parts
    FROM drop_lines AS d
    JOIN (SELECT source_file, min(rowid) AS rowid0 FROM drop_lines GROUP BY source_file) AS first_row
        USING (source_file)
),
-- Most lines have four bare fields and an address that is bare or quoted: they split at their
-- first comma and their last three with plain string functions. Only the other lines go
-- through the general pattern, whose eleven capture groups make it several times slower.
cut AS (
    SELECT
        *,
        raw_line[
            length(parts[1]) + 2 : -(length(parts[-3]) + length(parts[-2]) + length(parts[-1]) + 4)
        ] AS address_text
    FROM numbered
),
shaped AS (
    SELECT
        *,
        coalesce(
            len(parts) >= 5
            AND NOT contains(parts[1] || parts[-3] || parts[-2] || parts[-1], '"')
            AND (
                (len(parts) = 5 AND NOT contains(address_text, '"'))
                OR (
                    length(address_text) >= 2
                    AND starts_with(address_text, '"')
                    AND ends_with(address_text, '"')
                    AND NOT contains(replace(address_text[2:-2], '""', ''), '"')
                )
            ),
            false
        ) AS common_shape
    FROM cut
),
split AS (
    SELECT
        source_file,
        line_no,
        raw_line,
        CASE WHEN common_shape THEN {
            'well_formed': true,
            'uprn': parts[1],
            'address': CASE WHEN starts_with(address_text, '"')
                THEN replace(address_text[2:-2], '""', '"') ELSE address_text END,
            'postcode': parts[-3],
            'location': parts[-2],
            'address_type': parts[-1]
        } ELSE {
            'well_formed': general.matched = ',',
            'uprn': csv_field(general.uprn_q, general.uprn),
            'address': csv_field(general.address_q, general.address),
            'postcode': csv_field(general.postcode_q, general.postcode),
            'location': csv_field(general.location_q, general.location),
            'address_type': csv_field(general.address_type_q, general.address_type)
        } END AS f
    FROM (
        SELECT
            *,
            CASE WHEN NOT common_shape THEN regexp_extract(
                raw_line, $record_pattern,
                ['uprn_q', 'uprn', 'matched', 'address_q', 'address', 'postcode_q', 'postcode',
                 'location_q', 'location', 'address_type_q', 'address_type']
            ) END AS general
        FROM shaped
    )
),
fields AS (
    SELECT
        source_file,
        line_no,
        raw_line,
        coalesce(f.well_formed, false) AS well_formed,
        f.uprn,
        f.address,
        f.postcode AS postcode_text,
        f.location,
        f.address_type
    FROM split
),
parsed AS (
    SELECT
        *,
        translate(upper(postcode_text), ' ' || chr(9) || chr(10) || chr(12) || chr(13), '') AS postcode_compact,
        regexp_extract(
            location,
            '^(?:SRID=4326;)?POINT\s*\(\s*(-?[0-9]+(?:\.[0-9]+)?)\s+(-?[0-9]+(?:\.[0-9]+)?)\s*\)$',
            ['lon', 'lat']
        ) AS point
    FROM fields
),
typed AS (
    SELECT
        * EXCLUDE (point),
        CASE WHEN length(postcode_compact) BETWEEN 5 AND 7
            THEN left(postcode_compact, -3) || ' ' || right(postcode_compact, 3) END AS postcode,
        TRY_CAST(nullif(point.lon, '') AS DOUBLE) AS longitude,
        TRY_CAST(nullif(point.lat, '') AS DOUBLE) AS latitude
    FROM parsed
),
judged AS (
    SELECT
        *,
        split_part(postcode, ' ', 1) AS outcode,
        postcode[1] AS first_letter,
        CASE
            WHEN coalesce(raw_line, '') = '' THEN 'blank line'
            WHEN NOT well_formed THEN
                'not a CSV record of 5 fields (uprn,address,postcode,location,address_type)'
            WHEN NOT regexp_full_match(uprn, '[0-9]{1,12}') THEN
                printf('uprn "%s" is not a number of 1 to 12 digits', uprn[:40])
            WHEN trim(address) = '' THEN 'address is empty'
            WHEN NOT coalesce(regexp_full_match(postcode, '[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}'), false)
                THEN printf('postcode "%s" is not a valid UK postcode', postcode_text[:40])
            WHEN regexp_matches(location, '^SRID=[0-9]+;') AND NOT starts_with(location, 'SRID=4326;')
                THEN printf('location "%s" is not in SRID 4326 (lon/lat)', location[:60])
            WHEN longitude IS NULL OR latitude IS NULL THEN
                printf('location "%s" is not SRID=4326;POINT(<lon> <lat>)', location[:60])
            WHEN NOT (longitude BETWEEN -10 AND 3 AND latitude BETWEEN 49 AND 62) THEN
                printf('location "%s" is outside Great Britain', location[:60])
        END AS reason
    FROM typed
)
-- The raw text is kept only where it is needed: in the report of rejected lines.
SELECT
    uprn, address, postcode, outcode, first_letter, longitude, latitude, location, address_type,
    source_file, line_no, reason, CASE WHEN reason IS NOT NULL THEN raw_line END AS rejected_text
FROM judged;

DROP TABLE drop_lines;

COPY (
    SELECT
        uprn, address, postcode, outcode, first_letter, longitude, latitude, location,
        address_type, $addressbase_source AS addressbase_source, source_file, line_no
    FROM drop_rows
    WHERE reason IS NULL
) TO $output (FORMAT parquet, COMPRESSION zstd);

COPY (
    SELECT source_file AS file, line_no AS line, reason, rejected_text AS text
    FROM drop_rows
    WHERE reason IS NOT NULL
    ORDER BY file, line
) TO $rejects_output (FORMAT csv, HEADER true);

SELECT
    count(*) AS lines,
    count(*) FILTER (WHERE reason IS NULL) AS valid_rows,
    count(*) FILTER (WHERE reason IS NOT NULL) AS rejected_rows,
    coalesce(
        list({'file': source_file, 'line': line_no, 'reason': reason} ORDER BY source_file, line_no)
            FILTER (WHERE reason IS NOT NULL)[:20],
        []
    ) AS first_rejected
FROM drop_rows;
