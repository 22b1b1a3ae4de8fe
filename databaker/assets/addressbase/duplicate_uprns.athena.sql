-- UPRNs that occur on more than one row of the drop: identical rows (dropped by
-- addressbase_partitioned) and rows that differ (which must stop the bake).
--   $addressbase_cleaned_raw  the addressbase_cleaned_raw table
--   $sample_size              how many UPRNs of each kind to list
-- Returns one row; the samples are JSON lists of {uprn, letters, files} objects (built from
-- a MAP, which every Trino version casts to a JSON object; a ROW may become an array).

WITH repeated AS (
    SELECT uprn
    FROM $addressbase_cleaned_raw
    GROUP BY uprn
    HAVING count(*) > 1
),
duplicated AS (
    SELECT
        uprn,
        count(*) AS row_count,
        count(DISTINCT ROW(address, postcode, longitude, latitude, address_type)) AS variants,
        CAST(
            MAP(
                ARRAY['uprn', 'letters', 'files'],
                ARRAY[
                    CAST(uprn AS JSON),
                    CAST(array_sort(array_distinct(array_agg(first_letter))) AS JSON),
                    CAST(array_agg(source_file ORDER BY source_file) AS JSON)
                ]
            ) AS JSON
        ) AS described
    FROM $addressbase_cleaned_raw
    WHERE uprn IN (SELECT uprn FROM repeated)
    GROUP BY uprn
)
SELECT
    count(*) FILTER (WHERE variants = 1) AS identical_uprns,
    coalesce(sum(row_count - 1) FILTER (WHERE variants = 1), 0) AS identical_rows_dropped,
    count(*) FILTER (WHERE variants > 1) AS differing_uprns,
    CAST(
        coalesce(
            slice(array_agg(described ORDER BY uprn) FILTER (WHERE variants = 1), 1, $sample_size),
            CAST(ARRAY[] AS ARRAY(JSON))
        ) AS JSON
    ) AS identical_sample,
    CAST(
        coalesce(
            slice(array_agg(described ORDER BY uprn) FILTER (WHERE variants > 1), 1, $sample_size),
            CAST(ARRAY[] AS ARRAY(JSON))
        ) AS JSON
    ) AS differing_sample
FROM duplicated;
