-- The validated drop split by the postcode's first letter, identical duplicate rows dropped.
--   $addressbase_cleaned_raw  folder of the addressbase_cleaned_raw table
--   $letters                  the first letters to write
--   $output                   folder receiving first_letter=<L>/ partitions
--
-- Repeated UPRNs are rare: only their rows go through DISTINCT, the rest are copied as they
-- are, which spares hashing every column of every row. Snappy, not zstd: this is a working
-- table, written and read once per bake, and snappy writes several times faster.

COPY (
    WITH raw AS NOT MATERIALIZED (
        SELECT outcode, uprn, address, postcode, longitude, latitude, addressbase_source, first_letter
        FROM read_parquet($addressbase_cleaned_raw || '*.parquet')
        WHERE list_contains($letters, first_letter)
    ),
    repeated AS (
        SELECT uprn FROM raw GROUP BY uprn HAVING count(*) > 1
    )
    SELECT * FROM raw ANTI JOIN repeated USING (uprn)
    UNION ALL
    SELECT DISTINCT * FROM raw SEMI JOIN repeated USING (uprn)
) TO $output (FORMAT parquet, PARTITION_BY (first_letter), COMPRESSION snappy);
