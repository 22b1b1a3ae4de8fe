-- The first letters whose partition of the raw table holds a UPRN on more than one row.
--   $addressbase_cleaned_raw  the addressbase_cleaned_raw table
--   $letters                  the first letters to look at

WITH raw AS (
    SELECT uprn, first_letter
    FROM $addressbase_cleaned_raw
    WHERE contains($letters, first_letter)
)
SELECT DISTINCT first_letter
FROM raw
WHERE uprn IN (SELECT uprn FROM raw GROUP BY uprn HAVING count(*) > 1)
ORDER BY first_letter;
