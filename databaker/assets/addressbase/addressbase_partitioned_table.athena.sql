-- The Glue table over addressbase_partitioned: one first_letter=<L>/ folder per letter.
-- Partition projection enumerates the letters, so partitions written by UNLOAD are readable
-- at once, with no MSCK REPAIR or ADD PARTITION after each bake.
--   $location  the table's folder (s3://.../addressbase_partitioned/)

CREATE EXTERNAL TABLE IF NOT EXISTS addressbase_partitioned (
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

ALTER TABLE addressbase_partitioned SET LOCATION $location;
