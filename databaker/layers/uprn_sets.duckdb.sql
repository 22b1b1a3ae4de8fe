-- The UPRN sets of the partitioned AddressBase and of the joined table, summarised so that
-- they can be compared: rows and an order-insensitive checksum of each. Equal rows and
-- checksums make the joined UPRNs AddressBase's, as multisets. AddressBase's UPRNs are each
-- there once by construction: addressbase_partitioned is built only from a raw table whose
-- uniqueness check passed or warned, and drops the identical repeats that warn. So no distinct
-- count is needed here, the costliest part the check used to have.
--   $addressbase_partitioned  folder of the addressbase_partitioned table
--   $joined                   folder of the layer's joined table

WITH addressbase AS (
    SELECT count(*) AS rows, sum(hash(uprn)) AS checksum
    FROM read_parquet($addressbase_partitioned || 'first_letter=*/*.parquet')
),
joined AS (
    SELECT count(*) AS rows, sum(hash(uprn)) AS checksum
    FROM read_parquet($joined || 'first_letter=*/*.parquet')
)
SELECT
    addressbase.rows AS addressbase_rows,
    printf('%032x', coalesce(addressbase.checksum, 0)) AS addressbase_checksum,
    joined.rows AS joined_rows,
    printf('%032x', coalesce(joined.checksum, 0)) AS joined_checksum
FROM addressbase, joined;
