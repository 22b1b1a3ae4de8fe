-- The first letters whose partition of the raw table holds a UPRN on more than one row.
--   $addressbase_cleaned_raw  folder of the addressbase_cleaned_raw table
--   $letters                  the first letters to look at

WITH raw AS (
    SELECT uprn, first_letter
    FROM read_parquet(
        $addressbase_cleaned_raw || 'first_letter=*/*.parquet', hive_partitioning = true
    )
    WHERE list_contains($letters, first_letter)
)
SELECT DISTINCT first_letter
FROM raw
WHERE uprn IN (SELECT uprn FROM raw GROUP BY uprn HAVING count(*) > 1)
ORDER BY first_letter;
