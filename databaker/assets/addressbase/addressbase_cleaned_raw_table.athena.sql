-- The Glue table over addressbase_cleaned_raw: the validated drop, one parquet file written
-- by the embedded reader. Declared before every Athena query that reads it; the ALTER keeps
-- the table pointing at this deployment's data root.
--   $location  the table's folder (s3://.../addressbase_cleaned_raw/)

CREATE EXTERNAL TABLE IF NOT EXISTS addressbase_cleaned_raw (
    uprn STRING,
    address STRING,
    postcode STRING,
    outcode STRING,
    first_letter STRING,
    longitude DOUBLE,
    latitude DOUBLE,
    address_type STRING,
    addressbase_source STRING,
    source_file STRING
)
STORED AS PARQUET
LOCATION $location;

ALTER TABLE addressbase_cleaned_raw SET LOCATION $location;
