-- The letters of the drop that hold a repeated UPRN, rewritten with identical rows dropped:
-- rows that agree on every address field are one row (the first file's). Letters without a
-- repeated UPRN are not rewritten; their raw files are copied as they are.
--   $addressbase_cleaned_raw  folder of the addressbase_cleaned_raw table
--   $letters                  the first letters to write
--   $output                   folder receiving first_letter=<L>/ partitions
-- Snappy, not zstd: a working table, written and read once per bake.

COPY (
    SELECT
        uprn, address, postcode, any_value(outcode) AS outcode, longitude, latitude,
        address_type, any_value(addressbase_source) AS addressbase_source,
        min(source_file) AS source_file, first_letter
    FROM read_parquet(
        $addressbase_cleaned_raw || 'first_letter=*/*.parquet', hive_partitioning = true
    )
    WHERE list_contains($letters, first_letter)
    GROUP BY ALL
) TO $output (FORMAT parquet, PARTITION_BY (first_letter), COMPRESSION snappy);
