-- A few UPRNs that are in one table and not the other, to name them in a failing check.
--   $addressbase_partitioned  folder of the addressbase_partitioned table
--   $joined                   folder of the layer's joined table
--   $sample_size              how many UPRNs of each kind to list

WITH addressbase AS (SELECT DISTINCT uprn FROM read_parquet($addressbase_partitioned || 'first_letter=*/*.parquet')),
joined AS (SELECT DISTINCT uprn FROM read_parquet($joined || 'first_letter=*/*.parquet'))
SELECT
    (SELECT coalesce(list(uprn ORDER BY uprn)[:$sample_size], [])
     FROM (SELECT uprn FROM addressbase EXCEPT SELECT uprn FROM joined)) AS missing_from_joined,
    (SELECT coalesce(list(uprn ORDER BY uprn)[:$sample_size], [])
     FROM (SELECT uprn FROM joined EXCEPT SELECT uprn FROM addressbase)) AS not_in_addressbase;
