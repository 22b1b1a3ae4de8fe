-- What the joined table's UPRN check compares of the joined table, a letter at a time: each
-- letter's rows and an order-insensitive checksum of its UPRNs, as
-- addressbase_letter_summaries computes them for the partitioned AddressBase.
--   $joined   folder of the layer's joined table
--   $letters  the first letters to summarise

SELECT
    first_letter,
    count(*) AS row_count,
    CAST(sum(hash(uprn)) AS VARCHAR) AS checksum
FROM read_parquet($joined || 'first_letter=*/*.parquet', hive_partitioning = true)
WHERE list_contains($letters, first_letter)
GROUP BY first_letter
ORDER BY first_letter;
