-- A few UPRNs that are in one table and not the other, to name them in a failing check.
--   $addressbase_partitioned  the addressbase_partitioned table
--   $joined                   the layer's joined table
--   $sample_size              how many UPRNs of each kind to list

WITH addressbase AS (SELECT DISTINCT uprn FROM $addressbase_partitioned),
joined AS (SELECT DISTINCT uprn FROM $joined),
missing AS (SELECT uprn FROM addressbase EXCEPT SELECT uprn FROM joined),
extra AS (SELECT uprn FROM joined EXCEPT SELECT uprn FROM addressbase)
SELECT
    (SELECT CAST(
        coalesce(slice(array_agg(uprn ORDER BY uprn), 1, $sample_size),
                 CAST(ARRAY[] AS ARRAY(VARCHAR))) AS JSON)
     FROM missing) AS missing_from_joined,
    (SELECT CAST(
        coalesce(slice(array_agg(uprn ORDER BY uprn), 1, $sample_size),
                 CAST(ARRAY[] AS ARRAY(VARCHAR))) AS JSON)
     FROM extra) AS not_in_addressbase;
