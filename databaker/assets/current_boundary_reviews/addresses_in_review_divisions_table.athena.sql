-- The Glue table over addresses_in_review_divisions, the join's scratch table: every address's
-- UPRN with the keys of the boundary-review divisions containing it, one first_letter=<L>/
-- folder per letter, enumerated by partition projection. Each join points it at its own
-- scratch folder.
--   $location  the table's folder (s3://.../_staging/<run>/.../addresses_in_review_divisions/)

CREATE EXTERNAL TABLE IF NOT EXISTS addresses_in_review_divisions (
    uprn STRING,
    division_keys ARRAY<STRING>
)
PARTITIONED BY (first_letter STRING)
STORED AS PARQUET
LOCATION $location
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.first_letter.type' = 'enum',
    'projection.first_letter.values' = 'A,B,C,D,E,F,G,H,I,J,K,L,M,N,O,P,Q,R,S,T,U,V,W,X,Y,Z'
);

ALTER TABLE addresses_in_review_divisions SET LOCATION $location;
