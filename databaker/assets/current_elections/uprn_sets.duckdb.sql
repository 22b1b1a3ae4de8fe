-- The UPRN sets of the partitioned AddressBase and of the joined table, summarised so that
-- they can be compared: rows and an order-insensitive checksum of each, and the distinct UPRNs
-- of AddressBase. Equal rows and checksums make the joined UPRNs AddressBase's (as multisets);
-- AddressBase's UPRNs being distinct then makes the joined ones distinct too, without a second
-- distinct count, the costliest part of the check.
--   $addressbase_partitioned  folder of the addressbase_partitioned table
--   $joined                   folder of the current_ballots_joined_to_address_base table

WITH addressbase AS (
    SELECT count(*) AS rows, count(DISTINCT uprn) AS uprns, sum(hash(uprn)) AS checksum
    FROM read_parquet($addressbase_partitioned || 'first_letter=*/*.parquet')
),
joined AS (
    SELECT count(*) AS rows, sum(hash(uprn)) AS checksum
    FROM read_parquet($joined || 'first_letter=*/*.parquet')
)
SELECT
    addressbase.rows AS addressbase_rows,
    addressbase.uprns AS addressbase_uprns,
    printf('%032x', coalesce(addressbase.checksum, 0)) AS addressbase_checksum,
    joined.rows AS joined_rows,
    printf('%032x', coalesce(joined.checksum, 0)) AS joined_checksum
FROM addressbase, joined;
