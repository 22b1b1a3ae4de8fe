-- How many AddressBase drops the partitioned AddressBase holds: a layer's joined table, joined
-- from its letters, must come from one.
--   $addressbase_partitioned  the addressbase_partitioned table
--   $sample_size              how many sources to list

WITH sources AS (
    SELECT addressbase_source, count(*) AS row_count
    FROM $addressbase_partitioned
    GROUP BY addressbase_source
)
SELECT
    count(addressbase_source) AS sources,
    CAST(
        coalesce(
            slice(array_sort(array_agg(addressbase_source) FILTER (
                WHERE addressbase_source IS NOT NULL)), 1, $sample_size),
            CAST(ARRAY[] AS ARRAY(VARCHAR))
        ) AS JSON
    ) AS source_sample,
    coalesce(sum(row_count) FILTER (WHERE addressbase_source IS NULL), 0) AS rows_without_source
FROM sources;
