-- The Glue table over current_organisations_joined_to_address_base: one first_letter=<L>/ folder
-- per letter, enumerated by partition projection.
--   $location  the table's folder (s3://.../current_organisations_joined_to_address_base/)

CREATE EXTERNAL TABLE IF NOT EXISTS current_organisations_joined_to_address_base (
    uprn STRING,
    organisations ARRAY<STRING>
)
PARTITIONED BY (first_letter STRING)
STORED AS PARQUET
LOCATION $location
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.first_letter.type' = 'enum',
    'projection.first_letter.values' = 'A,B,C,D,E,F,G,H,I,J,K,L,M,N,O,P,Q,R,S,T,U,V,W,X,Y,Z'
);

ALTER TABLE current_organisations_joined_to_address_base SET LOCATION $location;
