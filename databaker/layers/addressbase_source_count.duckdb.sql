-- How many AddressBase drops the partitioned AddressBase holds: a layer's joined table, joined
-- from its letters, must come from one.
--   $addressbase_partitioned  folder of the addressbase_partitioned table
--   $sample_size              how many sources to list

SELECT
    count(DISTINCT addressbase_source) AS sources,
    list(DISTINCT addressbase_source ORDER BY addressbase_source)[:$sample_size] AS source_sample,
    count(*) FILTER (WHERE addressbase_source IS NULL) AS rows_without_source
FROM read_parquet($addressbase_partitioned || 'first_letter=*/*.parquet');
