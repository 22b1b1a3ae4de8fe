-- The Glue table over addressbase_cleaned_raw: the validated drop, written by the embedded
-- reader as one first_letter=<L>/ folder per letter. Partition projection enumerates the
-- letters. Declared before every Athena query that reads it; the ALTER keeps the table
-- pointing at this deployment's data root.
--   $location  the table's folder (s3://.../addressbase_cleaned_raw/)

CREATE EXTERNAL TABLE IF NOT EXISTS addressbase_cleaned_raw (
    uprn STRING,
    address STRING,
    postcode STRING,
    outcode STRING,
    longitude DOUBLE,
    latitude DOUBLE,
    address_type STRING,
    addressbase_source STRING,
    source_file STRING
)
PARTITIONED BY (first_letter STRING)
STORED AS PARQUET
LOCATION $location
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.first_letter.type' = 'enum',
    'projection.first_letter.values' = 'A,B,C,D,E,F,G,H,I,J,K,L,M,N,O,P,Q,R,S,T,U,V,W,X,Y,Z'
);

ALTER TABLE addressbase_cleaned_raw SET LOCATION $location;
