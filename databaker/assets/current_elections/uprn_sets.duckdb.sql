-- The UPRN sets of the partitioned AddressBase and of the joined table, summarised so that
-- they can be compared: rows, distinct UPRNs and an order-insensitive checksum.
--   $addressbase_partitioned  folder of the addressbase_partitioned table
--   $joined                   folder of the current_ballots_joined_to_address_base table

WITH addressbase AS (
    SELECT count(*) AS rows, count(DISTINCT uprn) AS uprns, sum(hash(uprn)) AS checksum
    FROM read_parquet($addressbase_partitioned || 'first_letter=*/*.parquet')
),
joined AS (
    SELECT count(*) AS rows, count(DISTINCT uprn) AS uprns, sum(hash(uprn)) AS checksum
    FROM read_parquet($joined || 'first_letter=*/*.parquet')
)
SELECT
    addressbase.rows AS addressbase_rows,
    addressbase.uprns AS addressbase_uprns,
    printf('%032x', coalesce(addressbase.checksum, 0)) AS addressbase_checksum,
    joined.rows AS joined_rows,
    joined.uprns AS joined_uprns,
    printf('%032x', coalesce(joined.checksum, 0)) AS joined_checksum
FROM addressbase, joined;
