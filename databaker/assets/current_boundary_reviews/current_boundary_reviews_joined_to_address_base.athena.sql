-- Every address of the letters asked for once, with one compact JSON object per boundary review
-- that redraws its division, ordered by review ID; [] for an address in no review.
--   $addresses_in_review_divisions  the join's scratch table: each UPRN of every letter with the
--                                   keys of the review divisions containing it
--   $boundary_review_divisions      the boundary_review_divisions table
--   $letters                        the first letters to write
--   $output                         empty folder receiving first_letter=<L>/ partitions
--
-- The meaning is the DuckDB twin's (see its comments): per review and division type, an address
-- in an old and a new division takes part; the boundary is the same when n(O) = n(N) = n(O, N),
-- counted over every letter.
--
-- Each element is json_format(CAST(row AS JSON)): Trino writes a row with named fields as a JSON
-- object, its fields in order, compact, strings escaped by Jackson as DuckDB's to_json escapes
-- them (non-ASCII text as it is). The rows are built with ROW(...) and named by one CAST to the
-- element's whole type. The work is in a subquery (its WITH inside), so UNLOAD gets a plain
-- SELECT.

UNLOAD (
    SELECT uprn, boundary_reviews, first_letter
    FROM (
        WITH
        -- A division's fields, from its first row by (source_file, source_line): its pieces'
        -- rows repeat them, and should they not, the first row decides.
        divisions AS (
            SELECT
                division_key,
                boundary_review_id,
                divisionset_generation AS generation,
                division_type,
                division_slug AS slug,
                division_name AS name,
                division_official_identifier AS official_identifier,
                divisionset_pmtiles_url AS pmtiles_url
            FROM (
                SELECT
                    *,
                    row_number() OVER (
                        PARTITION BY division_key ORDER BY source_file, source_line
                    ) AS nth
                FROM $boundary_review_divisions
            )
            WHERE nth = 1
        ),
        -- A review's details, from its first row by (source_file, source_line), likewise.
        reviews AS (
            SELECT
                boundary_review_id,
                consultation_url,
                legislation_title,
                effective_date,
                organisation_name,
                organisation_official_name,
                organisation_gss
            FROM (
                SELECT
                    *,
                    row_number() OVER (
                        PARTITION BY boundary_review_id ORDER BY source_file, source_line
                    ) AS nth
                FROM $boundary_review_divisions
            )
            WHERE nth = 1
        ),
        placed AS (
            SELECT a.uprn, d.*
            FROM $addresses_in_review_divisions AS a
            CROSS JOIN UNNEST(a.division_keys) AS k (division_key)
            JOIN divisions AS d ON d.division_key = k.division_key
        ),
        pairs AS (
            SELECT
                o.uprn,
                o.boundary_review_id,
                o.division_type,
                o.division_key AS old_key,
                o.slug AS old_division_slug,
                o.name AS old_division_name,
                o.official_identifier AS old_division_official_identifier,
                o.pmtiles_url AS old_divisionset_pmtiles_url,
                n.division_key AS new_key,
                n.slug AS new_division_slug,
                n.name AS new_division_name,
                n.official_identifier AS new_division_official_identifier,
                n.pmtiles_url AS new_divisionset_pmtiles_url
            FROM placed AS o
            JOIN placed AS n
                ON n.uprn = o.uprn
                AND n.boundary_review_id = o.boundary_review_id
                AND n.division_type = o.division_type
            WHERE o.generation = 'old' AND n.generation = 'new'
        ),
        old_sizes AS (
            SELECT old_key, count(DISTINCT uprn) AS in_old FROM pairs GROUP BY old_key
        ),
        new_sizes AS (
            SELECT new_key, count(DISTINCT uprn) AS in_new FROM pairs GROUP BY new_key
        ),
        pair_sizes AS (
            SELECT old_key, new_key, count(DISTINCT uprn) AS in_both
            FROM pairs
            GROUP BY old_key, new_key
        ),
        compared AS (
            SELECT
                p.*,
                p.old_division_slug = p.new_division_slug AS same_name,
                o.in_old = n.in_new AND n.in_new = b.in_both AS same_boundary
            FROM pairs AS p
            JOIN old_sizes AS o ON o.old_key = p.old_key
            JOIN new_sizes AS n ON n.new_key = p.new_key
            JOIN pair_sizes AS b ON b.old_key = p.old_key AND b.new_key = p.new_key
        ),
        classified AS (
            SELECT
                *,
                CASE
                    WHEN same_name AND same_boundary THEN 'NO_CHANGE'
                    WHEN same_boundary THEN 'NAME_CHANGED'
                    WHEN same_name THEN 'BOUNDARY_CHANGED'
                    ELSE 'BOTH_CHANGED'
                END AS change_scenario
            FROM compared
        ),
        -- Trino's CAST names a row's fields by position. The columns carry the same names too,
        -- for the DuckDB transpilation of this query in the tests, which casts by name.
        review_changes AS (
            SELECT
                uprn,
                boundary_review_id,
                array_agg(
                    ROW(
                        division_type,
                        old_division_slug,
                        old_division_name,
                        old_division_official_identifier,
                        old_divisionset_pmtiles_url,
                        new_division_slug,
                        new_division_name,
                        new_division_official_identifier,
                        new_divisionset_pmtiles_url,
                        change_scenario
                    )
                    ORDER BY division_type, old_division_slug, new_division_slug
                ) AS changes
            FROM classified
            GROUP BY uprn, boundary_review_id
        ),
        address_reviews AS (
            SELECT
                c.uprn,
                array_agg(
                    json_format(CAST(CAST(
                        ROW(
                            c.boundary_review_id,
                            ROW(
                                r.consultation_url,
                                r.legislation_title,
                                r.effective_date,
                                r.organisation_name,
                                r.organisation_official_name,
                                r.organisation_gss
                            ),
                            c.changes
                        ) AS ROW(
                            boundary_review_id BIGINT,
                            boundary_review_details ROW(
                                consultation_url VARCHAR,
                                legislation_title VARCHAR,
                                effective_date VARCHAR,
                                organisation_name VARCHAR,
                                organisation_official_name VARCHAR,
                                organisation_gss VARCHAR
                            ),
                            changes ARRAY(ROW(
                                division_type VARCHAR,
                                old_division_slug VARCHAR,
                                old_division_name VARCHAR,
                                old_division_official_identifier VARCHAR,
                                old_divisionset_pmtiles_url VARCHAR,
                                new_division_slug VARCHAR,
                                new_division_name VARCHAR,
                                new_division_official_identifier VARCHAR,
                                new_divisionset_pmtiles_url VARCHAR,
                                change_scenario VARCHAR
                            ))
                        )
                    ) AS JSON))
                    ORDER BY c.boundary_review_id
                ) AS boundary_reviews
            FROM review_changes AS c
            JOIN reviews AS r ON r.boundary_review_id = c.boundary_review_id
            GROUP BY c.uprn
        )
        -- Every address of the letters asked for (the scratch table holds every UPRN); most
        -- are in no review division and find none.
        SELECT
            b.uprn,
            coalesce(r.boundary_reviews, CAST(ARRAY[] AS ARRAY(VARCHAR))) AS boundary_reviews,
            b.first_letter
        FROM $addresses_in_review_divisions AS b
        LEFT JOIN address_reviews AS r ON r.uprn = b.uprn
        WHERE contains($letters, b.first_letter)
    )
)
TO $output
WITH (format = 'PARQUET', compression = 'ZSTD', partitioned_by = ARRAY['first_letter']);
