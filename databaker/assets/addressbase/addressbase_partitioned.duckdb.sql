-- The validated drop split by the postcode's first letter, identical duplicate rows dropped.
--   $addressbase_cleaned_raw  parquet written by addressbase_cleaned_raw
--   $letters                  the first letters to write
--   $output                   folder receiving first_letter=<L>/ partitions
-- Returns one row per file written (DuckDB's RETURN_STATS).

COPY (
    SELECT DISTINCT
        outcode, uprn, address, postcode, longitude, latitude, addressbase_source, first_letter
    FROM read_parquet($addressbase_cleaned_raw)
    WHERE list_contains($letters, first_letter)
) TO $output (FORMAT parquet, PARTITION_BY (first_letter), COMPRESSION zstd, RETURN_STATS);
