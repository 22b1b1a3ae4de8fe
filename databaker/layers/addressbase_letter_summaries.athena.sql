-- What the joined table's checks compare of the partitioned AddressBase, a letter at a time:
-- each letter's rows, an order-insensitive checksum of its UPRNs (a DECIMAL sum of 64-bit
-- hashes, which cannot overflow for any number of addresses in Great Britain), and the
-- AddressBase sources (drops) its rows name. See the DuckDB version.
--   $addressbase_partitioned  the addressbase_partitioned table
--   $letters                  the first letters to summarise

WITH sources AS (
    SELECT
        first_letter,
        addressbase_source,
        count(*) AS row_count,
        sum(CAST(from_big_endian_64(xxhash64(to_utf8(uprn))) AS DECIMAL(38, 0))) AS checksum
    FROM $addressbase_partitioned
    WHERE contains($letters, first_letter)
    GROUP BY first_letter, addressbase_source
)
SELECT
    first_letter,
    CAST(sum(row_count) AS BIGINT) AS row_count,
    CAST(sum(checksum) AS VARCHAR) AS checksum,
    CAST(
        coalesce(
            array_sort(array_agg(addressbase_source) FILTER (
                WHERE addressbase_source IS NOT NULL)),
            CAST(ARRAY[] AS ARRAY(VARCHAR))
        ) AS JSON
    ) AS sources,
    CAST(coalesce(sum(row_count) FILTER (WHERE addressbase_source IS NULL), 0) AS BIGINT)
        AS rows_without_source
FROM sources
GROUP BY first_letter
ORDER BY first_letter;
