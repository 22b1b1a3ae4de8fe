-- The letters of the drop that hold a repeated UPRN, rewritten with identical rows dropped:
-- rows that agree on every address field are one row (the first file's). Letters without a
-- repeated UPRN are not rewritten; their raw files are copied as they are.
--   $addressbase_cleaned_raw  the addressbase_cleaned_raw table
--   $letters                  the first letters to write
--   $output                   empty folder receiving first_letter=<L>/ partitions

UNLOAD (
    SELECT
        uprn, address, postcode, arbitrary(outcode) AS outcode, longitude, latitude,
        address_type, arbitrary(addressbase_source) AS addressbase_source,
        min(source_file) AS source_file, first_letter
    FROM $addressbase_cleaned_raw
    WHERE contains($letters, first_letter)
    GROUP BY uprn, address, postcode, longitude, latitude, address_type, first_letter
)
TO $output
WITH (format = 'PARQUET', compression = 'ZSTD', partitioned_by = ARRAY['first_letter']);
