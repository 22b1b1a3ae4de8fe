-- The UPRN sets of the partitioned AddressBase and of the joined table, summarised so that
-- they can be compared: rows and an order-insensitive checksum of each (a DECIMAL sum of 64-bit
-- hashes, which cannot overflow for any number of addresses in Great Britain). See the DuckDB
-- version for why AddressBase's UPRNs need no distinct count.
--   $addressbase_partitioned  the addressbase_partitioned table
--   $joined                   the layer's joined table

WITH addressbase AS (
    SELECT
        count(*) AS row_count,
        sum(CAST(from_big_endian_64(xxhash64(to_utf8(uprn))) AS DECIMAL(38, 0))) AS checksum
    FROM $addressbase_partitioned
),
joined AS (
    SELECT
        count(*) AS row_count,
        sum(CAST(from_big_endian_64(xxhash64(to_utf8(uprn))) AS DECIMAL(38, 0))) AS checksum
    FROM $joined
)
SELECT
    addressbase.row_count AS addressbase_rows,
    CAST(coalesce(addressbase.checksum, 0) AS VARCHAR) AS addressbase_checksum,
    joined.row_count AS joined_rows,
    CAST(coalesce(joined.checksum, 0) AS VARCHAR) AS joined_checksum
FROM addressbase CROSS JOIN joined;
