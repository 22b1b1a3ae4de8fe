-- How many AddressBase drops the joined table was built from (a layer must come from one).
--   $joined       folder of the layer's joined table
--   $sample_size  how many sources to list

SELECT
    count(DISTINCT addressbase_source) AS sources,
    list(DISTINCT addressbase_source ORDER BY addressbase_source)[:$sample_size] AS source_sample,
    count(*) FILTER (WHERE addressbase_source IS NULL) AS rows_without_source
FROM read_parquet($joined || 'first_letter=*/*.parquet');
