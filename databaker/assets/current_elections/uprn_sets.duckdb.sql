-- The UPRN sets of the partitioned AddressBase and of the joined table, summarised so that
-- they can be compared: rows, distinct UPRNs and an order-insensitive checksum.
--   $addressbase  every file of addressbase_partitioned
--   $joined       every file of current_ballots_joined_to_address_base

WITH addressbase AS (
    SELECT count(*) AS rows, count(DISTINCT uprn) AS uprns, sum(hash(uprn)) AS checksum
    FROM read_parquet($addressbase)
),
joined AS (
    SELECT count(*) AS rows, count(DISTINCT uprn) AS uprns, sum(hash(uprn)) AS checksum
    FROM read_parquet($joined)
)
SELECT
    addressbase.rows AS addressbase_rows,
    addressbase.uprns AS addressbase_uprns,
    printf('%032x', coalesce(addressbase.checksum, 0)) AS addressbase_checksum,
    joined.rows AS joined_rows,
    joined.uprns AS joined_uprns,
    printf('%032x', coalesce(joined.checksum, 0)) AS joined_checksum
FROM addressbase, joined;
