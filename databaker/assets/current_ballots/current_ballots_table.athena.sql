-- The Glue table over current_ballots: one row per ballot area, the geometry as OGC WKB.
--   $location  the table's folder (s3://.../current_ballots/)

CREATE EXTERNAL TABLE IF NOT EXISTS current_ballots (
    election_id STRING,
    division_id STRING,
    source_table STRING,
    geometry BINARY,
    repaired BOOLEAN,
    source_line BIGINT
)
STORED AS PARQUET
LOCATION $location;

ALTER TABLE current_ballots SET LOCATION $location;
