-- The boundary-reviews export read line by line: each line becomes a piece of a division's
-- area or a rejected row with its file, line number and reason. Blank lines hold no row.
--   review_lines_read  the export's lines, cut by databaker/line_reading.py: source_file,
--                      line_no, raw_line (without its LF or CRLF), too_long (raw_line holds
--                      its start); the files are headerless
--   $part_files        every part file of the export ...
--   $review_ids        ... the boundary_review_id its folders name ...
--   $generations       ... its divisionset_generation (old or new) ...
--   $division_types    ... and its division_type, in the same order
--   $record_pattern    RFC 4180 pattern for 20 fields (databaker.csv_records.record_pattern)
--   $polygonal_wkt     one POLYGON or MULTIPOLYGON in WKT (current_ballots.wkt.POLYGONAL_WKT)
--   $output            parquet for the boundary_review_divisions table
--   $rejects_output    CSV report of rejected rows
-- Returns the counts of the rows read, kept and rejected, and the first rejected rows.
--
-- The line and geometry rules are the ballots export's, with the same reasons: both exports
-- hold the same kind of areas, drawn by the same hands. They are shared: csv_field,
-- line_fault, area_verdicts, first_rejected.
-- include area_rules

CREATE TEMP TABLE parts AS
SELECT
    unnest(CAST($part_files AS VARCHAR[])) AS source_file,
    unnest(CAST($review_ids AS BIGINT[])) AS folder_review_id,
    unnest(CAST($generations AS VARCHAR[])) AS folder_generation,
    unnest(CAST($division_types AS VARCHAR[])) AS folder_division_type;

-- The stream is read once, into a table that the statements below read again. A line holding
-- a carriage return or a NUL byte is rejected whole, with its number and text.
CREATE TEMP TABLE export_fields AS
WITH split AS (
    SELECT
        source_file::VARCHAR AS source_file,
        line_no,
        raw_line,
        line_fault(raw_line, too_long) AS line_fault,
        CASE WHEN NOT too_long THEN regexp_extract(
            raw_line, $record_pattern,
            ['slug_q', 'slug', 'matched', 'status_q', 'status', 'latest_event_q', 'latest_event',
             'consultation_url_q', 'consultation_url', 'legislation_title_q', 'legislation_title',
             'effective_date_q', 'effective_date', 'review_created_q', 'review_created',
             'review_modified_q', 'review_modified', 'organisation_name_q', 'organisation_name',
             'organisation_official_name_q', 'organisation_official_name',
             'organisation_gss_q', 'organisation_gss', 'divisionset_id_q', 'divisionset_id',
             'divisionset_pmtiles_url_q', 'divisionset_pmtiles_url',
             'division_slug_q', 'division_slug', 'division_name_q', 'division_name',
             'division_official_identifier_q', 'division_official_identifier',
             'division_boundary_wkt_q', 'division_boundary_wkt',
             'boundary_review_id_q', 'boundary_review_id',
             'divisionset_generation_q', 'divisionset_generation',
             'division_type_q', 'division_type']
        ) END AS f
    FROM review_lines_read
    -- Blank lines hold no row.
    WHERE raw_line <> ''
)
SELECT
    source_file,
    line_no,
    raw_line,
    line_fault,
    line_fault IS NULL AND f.matched = ',' AS well_formed,
    csv_field(f.slug_q, f.slug) AS slug,
    csv_field(f.status_q, f.status) AS status,
    csv_field(f.latest_event_q, f.latest_event) AS latest_event,
    csv_field(f.consultation_url_q, f.consultation_url) AS consultation_url,
    csv_field(f.legislation_title_q, f.legislation_title) AS legislation_title,
    csv_field(f.effective_date_q, f.effective_date) AS effective_date,
    csv_field(f.review_created_q, f.review_created) AS review_created,
    csv_field(f.review_modified_q, f.review_modified) AS review_modified,
    csv_field(f.organisation_name_q, f.organisation_name) AS organisation_name,
    csv_field(f.organisation_official_name_q, f.organisation_official_name)
        AS organisation_official_name,
    csv_field(f.organisation_gss_q, f.organisation_gss) AS organisation_gss,
    csv_field(f.divisionset_id_q, f.divisionset_id) AS divisionset_id,
    csv_field(f.divisionset_pmtiles_url_q, f.divisionset_pmtiles_url) AS divisionset_pmtiles_url,
    csv_field(f.division_slug_q, f.division_slug) AS division_slug,
    csv_field(f.division_name_q, f.division_name) AS division_name,
    csv_field(f.division_official_identifier_q, f.division_official_identifier)
        AS division_official_identifier,
    csv_field(f.division_boundary_wkt_q, f.division_boundary_wkt) AS geometry_text,
    csv_field(f.boundary_review_id_q, f.boundary_review_id) AS row_review_id,
    csv_field(f.divisionset_generation_q, f.divisionset_generation) AS row_generation,
    csv_field(f.division_type_q, f.division_type) AS row_division_type
FROM split;

CREATE TEMP TABLE judged AS
WITH fields AS (
    SELECT
        e.*,
        p.folder_review_id,
        p.folder_generation,
        p.folder_division_type,
        CASE
            WHEN line_fault IS NOT NULL THEN line_fault
            WHEN NOT well_formed THEN
                'not a CSV record of 20 fields (slug,status,...,division_boundary_wkt,'
                || 'boundary_review_id,divisionset_generation,division_type)'
            WHEN row_review_id <> '' AND row_review_id <> folder_review_id::VARCHAR THEN
                printf('boundary_review_id "%s" is not its folder''s, boundary_review_id=%d',
                       row_review_id[:40], folder_review_id)
            WHEN row_generation <> '' AND row_generation <> folder_generation THEN
                printf('divisionset_generation "%s" is not its folder''s, divisionset_generation=%s',
                       row_generation[:40], folder_generation)
            WHEN row_division_type <> '' AND row_division_type <> folder_division_type THEN
                printf('division_type "%s" is not its folder''s, division_type=%s',
                       row_division_type[:40], folder_division_type)
            WHEN trim(division_slug) = '' THEN 'division_slug is empty'
        END AS field_fault
    FROM export_fields AS e
    JOIN parts AS p USING (source_file)
)
SELECT
    * EXCLUDE (field_fault, fault),
    folder_review_id::VARCHAR || '/' || folder_generation || '/' || folder_division_type || '/'
        || division_slug AS division_key,
    fault AS reason
FROM area_verdicts(fields, $polygonal_wkt);

COPY (
    SELECT
        folder_review_id AS boundary_review_id,
        slug, status, latest_event, consultation_url, legislation_title, effective_date,
        review_created, review_modified, organisation_name, organisation_official_name,
        organisation_gss, divisionset_id, divisionset_pmtiles_url,
        division_slug, division_name, division_official_identifier,
        folder_generation AS divisionset_generation,
        folder_division_type AS division_type,
        division_key,
        geometry,
        repaired,
        source_file,
        line_no AS source_line
    FROM judged
    WHERE reason IS NULL
    ORDER BY boundary_review_id, divisionset_generation, division_type, division_slug,
        source_file, source_line
) TO $output (FORMAT parquet, COMPRESSION zstd);

COPY (
    SELECT source_file AS file, line_no AS line, reason, raw_line[:1000] AS text
    FROM judged
    WHERE reason IS NOT NULL
    ORDER BY file, line
) TO $rejects_output (FORMAT csv, HEADER true);

SELECT
    count(*) AS rows_read,
    count(*) FILTER (WHERE reason IS NULL) AS rows,
    count(DISTINCT folder_review_id) FILTER (WHERE reason IS NULL) AS boundary_reviews,
    count(DISTINCT division_key) FILTER (WHERE reason IS NULL) AS divisions,
    count(*) FILTER (WHERE reason IS NULL AND repaired) AS repaired,
    count(*) FILTER (WHERE reason IS NOT NULL) AS rejected_rows,
    first_rejected(source_file, line_no, reason, reason IS NOT NULL) AS first_rejected
FROM judged;
