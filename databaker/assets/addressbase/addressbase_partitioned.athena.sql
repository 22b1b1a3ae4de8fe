-- The validated drop split by the postcode's first letter, identical duplicate rows dropped.
--   $addressbase_cleaned_raw  the addressbase_cleaned_raw table
--   $letters                  the first letters to write
--   $output                   empty folder receiving first_letter=<L>/ partitions

UNLOAD (
    SELECT DISTINCT
        outcode, uprn, address, postcode, longitude, latitude, addressbase_source, first_letter
    FROM $addressbase_cleaned_raw
    WHERE contains($letters, first_letter)
)
TO $output
WITH (format = 'PARQUET', compression = 'ZSTD', partitioned_by = ARRAY['first_letter']);
