-- The organisations table: each data line of the export judged, as of a date. A line is a
-- piece of an organisation's own area (its division_slug empty) or of one of its divisions;
-- a usable line is kept when current on that date, reported as skipped when not, and any other
-- line is reported as rejected with its reason.
--   export_fields          the lines as organisation_areas_fields returns them (line 1, the
--                          header, among them), in batches that the threads share
--   $organisation_types    the organisation types a line may name, in the layer's order
--   $on_date               the date the table is taken as of (YYYY-MM-DD)
--   $polygonal_wkt         one POLYGON or MULTIPOLYGON in WKT (current_ballots.wkt.POLYGONAL_WKT)
--   $file                  the export, named in the table and the report
--   $output                parquet for the organisation_areas table
--   $rejects_output        CSV report of rejected and skipped lines
-- Returns the counts of the lines read, kept, skipped and rejected, the first rejected lines,
-- and every organisation (`<type>/<official_identifier>`) the export names.
--
-- The geometry rules are the ballots export's, with the same reasons: area_verdicts judges a
-- line's area after its fields; unkept_lines and first_rejected report the lines not kept.
-- include area_rules

-- A date as the export writes it, YYYY-MM-DD with a year from 1000, or NULL when the text is
-- none (DuckDB alone would also read `2026-1-5`, and year 0 as 1 BC).
CREATE TEMP MACRO iso_date(text) AS
    CASE WHEN regexp_full_match(text, '[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}')
        THEN TRY_CAST(text AS DATE) END;

-- Why the date field `name`, holding `text` read as `day`, is no date.
CREATE TEMP MACRO date_fault(name, text, day) AS
    CASE
        WHEN text = '' THEN name || ' is empty'
        WHEN day IS NULL THEN printf('%s "%s" is not a date (YYYY-MM-DD)', name, text[:40])
    END;

-- Why the period from the field `start_name` (holding `start_text`, read as `start_day`) to the
-- field `end_name` (`end_text`, `end_day`; empty: open-ended) is none; NULL when it is one.
CREATE TEMP MACRO period_fault(start_name, start_text, start_day, end_name, end_text, end_day) AS
    CASE
        WHEN start_day IS NULL THEN date_fault(start_name, start_text, start_day)
        WHEN end_text <> '' AND end_day IS NULL THEN date_fault(end_name, end_text, end_day)
        WHEN end_day < start_day
            THEN printf('%s %s is before %s %s', end_name, end_text, start_name, start_text)
    END;

-- Why a usable line is not current on `on_day`: the period from `start_day` to `end_day`
-- (NULL: open-ended) is `what`'s (the organisation's, or its divisionset's); NULL when current.
CREATE TEMP MACRO not_current(what, start_day, end_day, on_day) AS
    CASE
        WHEN on_day < start_day
            THEN printf('not current on %s: %s starts %s', on_day, what, start_day)
        WHEN end_day < on_day
            THEN printf('not current on %s: %s ended %s', on_day, what, end_day)
    END;

-- The stream is read once, into the table that the statements below read again.
CREATE TEMP TABLE judged AS
WITH texts AS (
    SELECT
        *,
        trim(division_slug) <> '' AS is_division,
        -- Fields a piece of the organisation's own area must leave empty, as a list to name.
        concat_ws(', ',
            CASE WHEN trim(divisionset_start_date) <> '' THEN 'divisionset_start_date' END,
            CASE WHEN trim(divisionset_end_date) <> '' THEN 'divisionset_end_date' END,
            CASE WHEN trim(division_type) <> '' THEN 'division_type' END,
            CASE WHEN trim(division_name) <> '' THEN 'division_name' END,
            CASE WHEN trim(division_official_identifier) <> ''
                THEN 'division_official_identifier' END
        ) AS division_fields_given,
        iso_date(start_date) AS start_day,
        iso_date(end_date) AS end_day,
        iso_date(divisionset_start_date) AS divisionset_start_day,
        iso_date(divisionset_end_date) AS divisionset_end_day
    FROM export_fields
    WHERE line_no > 1
),
periods AS (
    SELECT
        *,
        period_fault('start_date', start_date, start_day, 'end_date', end_date, end_day)
            AS organisation_period_fault,
        period_fault(
            'divisionset_start_date', divisionset_start_date, divisionset_start_day,
            'divisionset_end_date', divisionset_end_date, divisionset_end_day
        ) AS divisionset_period_fault
    FROM texts
),
fields AS (
    SELECT
        *,
        CASE
            WHEN line_fault IS NOT NULL THEN line_fault
            WHEN NOT well_formed THEN
                'not a CSV record of 13 fields (organisation_type,official_identifier,'
                || 'organisation_name,...,division_official_identifier,geometry)'
            WHEN NOT list_contains($organisation_types, organisation_type) THEN printf(
                'organisation_type "%s" is not one of %s',
                organisation_type[:40], array_to_string($organisation_types, ', ')
            )
            WHEN regexp_matches(
                organisation_type || official_identifier || organisation_name || gss
                    || division_type || division_slug || division_name
                    || division_official_identifier,
                '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]'
            ) THEN 'a field holds a control character (only tab is allowed)'
            WHEN trim(official_identifier) = '' THEN 'official_identifier is empty'
            WHEN trim(organisation_name) = '' THEN 'organisation_name is empty'
            WHEN organisation_period_fault IS NOT NULL THEN organisation_period_fault
            WHEN NOT is_division AND division_fields_given <> '' THEN printf(
                '%s must be empty on a piece of the organisation''s own area '
                || '(its division_slug is empty)',
                division_fields_given
            )
            WHEN is_division AND divisionset_period_fault IS NOT NULL
                THEN divisionset_period_fault
            WHEN is_division AND trim(division_type) = '' THEN 'division_type is empty'
        END AS field_fault
    FROM periods
),
verdicts AS (
    SELECT
        *,
        coalesce(
            not_current('the organisation', start_day, end_day, CAST($on_date AS DATE)),
            CASE WHEN is_division THEN not_current(
                'the divisionset', divisionset_start_day, divisionset_end_day,
                CAST($on_date AS DATE)
            ) END
        ) AS skipped_for,
        organisation_type || '/' || official_identifier || '/' || start_date AS organisation_key
    FROM area_verdicts(fields, $polygonal_wkt)
)
SELECT
    * EXCLUDE (
        field_fault, fault, skipped_for, organisation_period_fault, divisionset_period_fault
    ),
    CASE WHEN is_division
        THEN organisation_key || '/' || divisionset_start_date || '/' || division_type || '/'
            || division_slug
        ELSE organisation_key
    END AS area_key,
    coalesce(fault, skipped_for) AS reason,
    CASE
        WHEN fault IS NOT NULL THEN 'rejected'
        WHEN skipped_for IS NOT NULL THEN 'skipped'
        ELSE 'ok'
    END AS status
FROM verdicts;

COPY (
    SELECT
        organisation_type,
        official_identifier,
        organisation_name,
        gss,
        start_day AS start_date,
        end_day AS end_date,
        CASE WHEN is_division THEN divisionset_start_day END AS divisionset_start_date,
        CASE WHEN is_division THEN divisionset_end_day END AS divisionset_end_date,
        CASE WHEN is_division THEN division_type ELSE '' END AS division_type,
        CASE WHEN is_division THEN division_slug ELSE '' END AS division_slug,
        CASE WHEN is_division THEN division_name ELSE '' END AS division_name,
        CASE WHEN is_division THEN division_official_identifier ELSE '' END
            AS division_official_identifier,
        organisation_key,
        area_key,
        geometry,
        repaired,
        $file AS source_file,
        line_no AS source_line
    FROM judged
    WHERE status = 'ok'
    ORDER BY organisation_type, official_identifier, start_date,
        divisionset_start_date NULLS FIRST, division_type, division_slug, source_line
) TO $output (FORMAT parquet, COMPRESSION zstd);

COPY (FROM unkept_lines(judged, $file)) TO $rejects_output (FORMAT csv, HEADER true);

SELECT
    count(*) AS rows_read,
    count(*) FILTER (WHERE status = 'ok') AS rows,
    count(DISTINCT organisation_key) FILTER (WHERE status = 'ok') AS organisations,
    count(DISTINCT area_key) FILTER (WHERE status = 'ok' AND is_division) AS divisions,
    count(*) FILTER (WHERE status = 'ok' AND repaired) AS repaired,
    count(*) FILTER (WHERE status = 'skipped') AS skipped_rows,
    count(*) FILTER (WHERE status = 'rejected') AS rejected_rows,
    first_rejected($file, line_no, reason, status = 'rejected') AS first_rejected,
    -- Every organisation a current line names, and every one a rejected line names by a known
    -- type and an identifier: a broken line must not pass for a withdrawn organisation.
    coalesce(
        list(DISTINCT organisation_type || '/' || official_identifier
             ORDER BY organisation_type || '/' || official_identifier)
            FILTER (WHERE status = 'ok' OR (
                status = 'rejected'
                AND list_contains($organisation_types, organisation_type)
                AND trim(official_identifier) <> ''
            )),
        []
    ) AS organisations_in_export
FROM judged;
