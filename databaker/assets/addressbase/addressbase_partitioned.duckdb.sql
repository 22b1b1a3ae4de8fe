-- The validated drop split by the postcode's first letter, identical duplicate rows dropped.
--   $addressbase_cleaned_raw  folder of the addressbase_cleaned_raw table
--   $letters                  the first letters to write
--   $output                   folder receiving first_letter=<L>/ partitions

COPY (
    SELECT DISTINCT
        outcode, uprn, address, postcode, longitude, latitude, addressbase_source, first_letter
    FROM read_parquet($addressbase_cleaned_raw || '*.parquet')
    WHERE list_contains($letters, first_letter)
) TO $output (FORMAT parquet, PARTITION_BY (first_letter), COMPRESSION zstd);
