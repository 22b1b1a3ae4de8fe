-- The ballots export, line by line, cut into its four fields: what the geometry query
-- (current_ballots_parsed) and the verdicts (current_ballots) read, and, for the election IDs
-- to be checked while the geometries are parsed, returned rather than written.
--   export_lines_read the export's lines, cut by databaker/line_reading.py: line_no, raw_line
--                     (without its LF or CRLF), too_long (raw_line holds its start); line 1 is
--                     the header
--   $record_pattern  RFC 4180 pattern for 4 fields (databaker.csv_records.record_pattern)
-- Returns each line that is not blank: line_no, text (its first 1,000 characters, all that the
-- report shows), line_fault, well_formed, and the fields election_id, division_id,
-- geometry_text and source_table.

-- csv_field, line_fault and quoted_lines, shared with the other exports of areas.
-- include area_rules

-- A line holding a carriage return or a NUL byte is rejected whole, with its number and text.
-- A line too long to read as a record (its start is kept) still names its ballot by its first
-- field: to the guard rails, the export names that ballot.
--
-- Matching the record pattern costs as much as the rest of the reading (its groups are found by
-- RE2's slowest engine, over the whole geometry). A line as exports write it,
-- `id,division,"geometry",source_table` with no quote or comma in the bare fields and no quote in
-- the geometry, is therefore cut at its quotes and commas instead, into the fields the pattern
-- gives it; any other line is matched against the pattern.
WITH split AS (
    SELECT
        *,
        coalesce(
            len(parts) = 3
            AND regexp_full_match(parts[1], '[^,]*,[^,]*,')
            AND regexp_full_match(parts[3], ',[^,]*'),
            false
        ) AS plain,
        CASE WHEN NOT too_long AND NOT plain THEN regexp_extract(
            raw_line, $record_pattern,
            ['election_id_q', 'election_id', 'matched', 'division_id_q', 'division_id',
             'geometry_q', 'geometry', 'source_table_q', 'source_table']
        ) END AS f,
        CASE WHEN too_long THEN regexp_extract(
            raw_line, '^(?:"((?:[^"]|"")*)"|([^,"][^,]*)),', ['election_id_q', 'election_id']
        ) END AS first_field
    FROM quoted_lines(export_lines_read)
)
SELECT
    line_no,
    raw_line[:1000] AS text,
    line_fault,
    line_fault IS NULL AND (plain OR f.matched = ',') AS well_formed,
    CASE
        WHEN plain THEN split_part(parts[1], ',', 1)
        WHEN too_long THEN csv_field(first_field.election_id_q, first_field.election_id)
        ELSE csv_field(f.election_id_q, f.election_id)
    END AS election_id,
    CASE WHEN plain THEN split_part(parts[1], ',', 2)
        ELSE csv_field(f.division_id_q, f.division_id) END AS division_id,
    CASE WHEN plain THEN parts[2] ELSE csv_field(f.geometry_q, f.geometry) END AS geometry_text,
    CASE WHEN plain THEN parts[3][2:]
        ELSE csv_field(f.source_table_q, f.source_table) END AS source_table
FROM split;
