-- UPRNs that occur on more than one row of the drop: identical rows (dropped by
-- addressbase_partitioned) and rows that differ (which must stop the bake).
--   $addressbase_cleaned_raw  folder of the addressbase_cleaned_raw table
--   $sample_size              how many UPRNs of each kind to list
-- Returns one row.

WITH repeated AS (
    SELECT uprn
    FROM read_parquet(
        $addressbase_cleaned_raw || 'first_letter=*/*.parquet', hive_partitioning = true
    )
    GROUP BY uprn
    HAVING count(*) > 1
),
duplicated AS (
    SELECT
        uprn,
        count(*) AS rows,
        count(DISTINCT (address, postcode, longitude, latitude, address_type)) AS variants,
        list(DISTINCT first_letter ORDER BY first_letter) AS letters,
        list(source_file ORDER BY source_file) AS files
    FROM read_parquet(
        $addressbase_cleaned_raw || 'first_letter=*/*.parquet', hive_partitioning = true
    )
    WHERE uprn IN (SELECT uprn FROM repeated)
    GROUP BY uprn
)
SELECT
    count(*) FILTER (WHERE variants = 1) AS identical_uprns,
    coalesce(sum(rows - 1) FILTER (WHERE variants = 1), 0)::BIGINT AS identical_rows_dropped,
    count(*) FILTER (WHERE variants > 1) AS differing_uprns,
    coalesce(
        list({'uprn': uprn, 'letters': letters, 'files': files} ORDER BY uprn)
            FILTER (WHERE variants = 1)[:$sample_size],
        []
    ) AS identical_sample,
    coalesce(
        list({'uprn': uprn, 'letters': letters, 'files': files} ORDER BY uprn)
            FILTER (WHERE variants > 1)[:$sample_size],
        []
    ) AS differing_sample
FROM duplicated;
