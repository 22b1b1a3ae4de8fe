-- What the joined table's checks compare of the partitioned AddressBase, a letter at a time:
-- each letter's rows, an order-insensitive checksum of its UPRNs (a sum of 64-bit hashes), and
-- the AddressBase sources (drops) its rows name. Kept by the letter's token
-- (databaker/layers/letter_summaries.py), so each letter is read once.
--   $addressbase_partitioned  folder of the addressbase_partitioned table
--   $letters                  the first letters to summarise

WITH sources AS (
    SELECT
        first_letter,
        addressbase_source,
        count(*) AS row_count,
        sum(hash(uprn)) AS checksum
    FROM read_parquet(
        $addressbase_partitioned || 'first_letter=*/*.parquet', hive_partitioning = true
    )
    WHERE list_contains($letters, first_letter)
    GROUP BY first_letter, addressbase_source
)
SELECT
    first_letter,
    CAST(sum(row_count) AS BIGINT) AS row_count,
    CAST(sum(checksum) AS VARCHAR) AS checksum,
    coalesce(
        list(addressbase_source ORDER BY addressbase_source)
            FILTER (WHERE addressbase_source IS NOT NULL),
        []
    ) AS sources,
    CAST(coalesce(sum(row_count) FILTER (WHERE addressbase_source IS NULL), 0) AS BIGINT)
        AS rows_without_source
FROM sources
GROUP BY first_letter
ORDER BY first_letter;
