-- Every address of the letters asked for once (its UPRN: the other address columns stay in the
-- partitioned AddressBase, where the version takes them), with one compact JSON object per
-- boundary review that redraws its division, ordered by review ID; [] for an address in no
-- review.
--   $addresses_in_review_divisions  folder of the join's scratch table: each UPRN of every
--                                   letter with the keys of the review divisions containing it
--   $boundary_review_divisions      folder of the boundary_review_divisions table
--   $letters                        the first letters to write
--   $output                         folder receiving first_letter=<L>/ partitions
--
-- Per review and division type, an address takes part when an old and a new division of that
-- type both contain it. For its old division O and new division N: the name is the same when
-- the slugs are; the boundary is the same when O and N hold the same taking-part addresses,
-- that is when n(O) = n(N) = n(O, N), each n counting distinct UPRNs. The counts are over every
-- letter of the scratch table, not only the letters written: a division crosses postcode areas.
-- An address in two old (or new) divisions of one type, which only overlapping divisions allow,
-- gets a change per (old, new) pair.
--
-- The JSON comes from to_json of structs, whose keys keep their order; the Athena twin builds
-- the same text with CAST(row AS JSON).

COPY (
    WITH
    -- Read where used, never held: the whole AddressBase would not fit in memory.
    addresses AS NOT MATERIALIZED (
        SELECT *
        FROM read_parquet(
            $addresses_in_review_divisions || 'first_letter=*/*.parquet', hive_partitioning = true
        )
    ),
    pieces AS (
        SELECT * EXCLUDE (geometry) FROM read_parquet($boundary_review_divisions || '*.parquet')
    ),
    -- A division's fields, from its first row by (source_file, source_line): its pieces' rows
    -- repeat them, and should they not, the first row decides.
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
        FROM pieces
        QUALIFY row_number() OVER (
            PARTITION BY division_key ORDER BY source_file, source_line
        ) = 1
    ),
    -- A review's details, from its first row by (source_file, source_line), likewise.
    reviews AS (
        SELECT
            boundary_review_id,
            {
                'consultation_url': consultation_url,
                'legislation_title': legislation_title,
                'effective_date': effective_date,
                'organisation_name': organisation_name,
                'organisation_official_name': organisation_official_name,
                'organisation_gss': organisation_gss
            } AS details
        FROM pieces
        QUALIFY row_number() OVER (
            PARTITION BY boundary_review_id ORDER BY source_file, source_line
        ) = 1
    ),
    placed AS (
        SELECT a.uprn, d.*
        FROM (
            SELECT uprn, unnest(division_keys) AS division_key
            FROM addresses
            WHERE len(division_keys) > 0
        ) AS a
        JOIN divisions AS d USING (division_key)
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
    old_sizes AS (SELECT old_key, count(DISTINCT uprn) AS in_old FROM pairs GROUP BY old_key),
    new_sizes AS (SELECT new_key, count(DISTINCT uprn) AS in_new FROM pairs GROUP BY new_key),
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
        JOIN old_sizes AS o USING (old_key)
        JOIN new_sizes AS n USING (new_key)
        JOIN pair_sizes AS b USING (old_key, new_key)
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
    -- Lists are sorted by list_sort on a leading sort key rather than by an ordered aggregate,
    -- whose per-group sorting state runs out of memory over millions of addresses.
    review_changes AS (
        SELECT
            uprn,
            boundary_review_id,
            list_transform(
                list_sort(list({
                    'sort_key': [division_type, old_division_slug, new_division_slug],
                    'change': {
                        'division_type': division_type,
                        'old_division_slug': old_division_slug,
                        'old_division_name': old_division_name,
                        'old_division_official_identifier': old_division_official_identifier,
                        'old_divisionset_pmtiles_url': old_divisionset_pmtiles_url,
                        'new_division_slug': new_division_slug,
                        'new_division_name': new_division_name,
                        'new_division_official_identifier': new_division_official_identifier,
                        'new_divisionset_pmtiles_url': new_divisionset_pmtiles_url,
                        'change_scenario': change_scenario
                    }
                })),
                sorted -> sorted.change
            ) AS changes
        FROM classified
        GROUP BY uprn, boundary_review_id
    ),
    address_reviews AS (
        SELECT
            c.uprn,
            list_transform(
                list_sort(list({
                    'sort_key': c.boundary_review_id,
                    'element': to_json({
                        'boundary_review_id': c.boundary_review_id,
                        'boundary_review_details': r.details,
                        'changes': c.changes
                    })::VARCHAR
                })),
                sorted -> sorted.element
            ) AS boundary_reviews
        FROM review_changes AS c
        JOIN reviews AS r USING (boundary_review_id)
        GROUP BY c.uprn
    )
    -- Every address of the letters asked for (the scratch table holds every UPRN); most are in
    -- no review division and find none.
    SELECT
        b.uprn,
        coalesce(r.boundary_reviews, []::VARCHAR[]) AS boundary_reviews,
        b.first_letter
    FROM addresses AS b
    LEFT JOIN address_reviews AS r ON r.uprn = b.uprn
    WHERE list_contains($letters, b.first_letter)
) TO $output (FORMAT parquet, PARTITION_BY (first_letter), COMPRESSION zstd);
