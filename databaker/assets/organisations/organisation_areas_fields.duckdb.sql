-- The organisations export, line by line, cut into its 13 fields: what the verdicts
-- (organisation_areas) read, returned rather than written so that line 1, the header, is
-- checked before any geometry is parsed.
--   organisation_lines_read  the export's lines, cut by databaker/line_reading.py: line_no,
--                            raw_line (without its LF or CRLF), too_long (raw_line holds its
--                            start); line 1 is the header
--   $record_pattern          RFC 4180 pattern for 13 fields (databaker.csv_records.record_pattern)
-- Returns each line that is not blank: line_no, text (its first 1,000 characters, all that the
-- report shows), line_fault, well_formed, and the fields, the last one as geometry_text.

-- csv_field, line_fault and quoted_lines, shared with the other exports of areas.
-- include area_rules

-- A line holding a carriage return or a NUL byte is rejected whole, with its number and text.
-- A line that is no record of 13 fields (too long to read as one among them) still names its
-- organisation by its first two fields, when they can be read: to the guard rails, the export
-- names that organisation.
--
-- As in the ballots export, matching the record pattern over a whole geometry costs as much as
-- the rest of the reading. A line as exports write it, twelve fields without a quote or comma
-- and the geometry quoted last, is therefore cut at its quotes and commas instead; any other
-- line (a name with a comma or a quote in it, say) is matched against the pattern.
WITH split AS (
    SELECT
        *,
        coalesce(
            len(parts) = 3 AND parts[3] = '' AND regexp_full_match(parts[1], '(?:[^,]*,){12}'),
            false
        ) AS plain,
        CASE WHEN plain THEN string_split(parts[1], ',') END AS bare,
        CASE WHEN NOT too_long AND NOT plain THEN regexp_extract(
            raw_line, $record_pattern,
            ['organisation_type_q', 'organisation_type', 'matched',
             'official_identifier_q', 'official_identifier',
             'organisation_name_q', 'organisation_name', 'gss_q', 'gss',
             'start_date_q', 'start_date', 'end_date_q', 'end_date',
             'divisionset_start_date_q', 'divisionset_start_date',
             'divisionset_end_date_q', 'divisionset_end_date',
             'division_type_q', 'division_type', 'division_slug_q', 'division_slug',
             'division_name_q', 'division_name',
             'division_official_identifier_q', 'division_official_identifier',
             'geometry_q', 'geometry']
        ) END AS f
    FROM quoted_lines(organisation_lines_read)
),
read AS (
    SELECT
        *,
        line_fault IS NULL AND (plain OR f.matched = ',') AS well_formed,
        CASE WHEN NOT plain AND f.matched IS DISTINCT FROM ',' THEN regexp_extract(
            raw_line, '^(?:"((?:[^"]|"")*)"|([^,"][^,]*)?),(?:"((?:[^"]|"")*)"|([^,"][^,]*)?)',
            ['organisation_type_q', 'organisation_type',
             'official_identifier_q', 'official_identifier']
        ) END AS first_fields
    FROM split
)
SELECT
    line_no,
    raw_line[:1000] AS text,
    line_fault,
    well_formed,
    CASE
        WHEN plain THEN bare[1]
        WHEN first_fields IS NOT NULL
            THEN csv_field(first_fields.organisation_type_q, first_fields.organisation_type)
        ELSE csv_field(f.organisation_type_q, f.organisation_type)
    END AS organisation_type,
    CASE
        WHEN plain THEN bare[2]
        WHEN first_fields IS NOT NULL
            THEN csv_field(first_fields.official_identifier_q, first_fields.official_identifier)
        ELSE csv_field(f.official_identifier_q, f.official_identifier)
    END AS official_identifier,
    CASE WHEN plain THEN bare[3]
        ELSE csv_field(f.organisation_name_q, f.organisation_name) END AS organisation_name,
    CASE WHEN plain THEN bare[4] ELSE csv_field(f.gss_q, f.gss) END AS gss,
    CASE WHEN plain THEN bare[5] ELSE csv_field(f.start_date_q, f.start_date) END AS start_date,
    CASE WHEN plain THEN bare[6] ELSE csv_field(f.end_date_q, f.end_date) END AS end_date,
    CASE WHEN plain THEN bare[7]
        ELSE csv_field(f.divisionset_start_date_q, f.divisionset_start_date)
    END AS divisionset_start_date,
    CASE WHEN plain THEN bare[8]
        ELSE csv_field(f.divisionset_end_date_q, f.divisionset_end_date)
    END AS divisionset_end_date,
    CASE WHEN plain THEN bare[9]
        ELSE csv_field(f.division_type_q, f.division_type) END AS division_type,
    CASE WHEN plain THEN bare[10]
        ELSE csv_field(f.division_slug_q, f.division_slug) END AS division_slug,
    CASE WHEN plain THEN bare[11]
        ELSE csv_field(f.division_name_q, f.division_name) END AS division_name,
    CASE WHEN plain THEN bare[12]
        ELSE csv_field(f.division_official_identifier_q, f.division_official_identifier)
    END AS division_official_identifier,
    CASE WHEN plain THEN parts[2] ELSE csv_field(f.geometry_q, f.geometry) END AS geometry_text
FROM read;
