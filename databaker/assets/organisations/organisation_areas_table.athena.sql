-- The Glue table over organisation_areas: one row per piece of a current organisation's area or
-- of one of its current divisions' (as of the date the table was taken), the geometry as OGC WKB.
--   $location  the table's folder (s3://.../organisation_areas/)

CREATE EXTERNAL TABLE IF NOT EXISTS organisation_areas (
    organisation_type STRING,
    official_identifier STRING,
    organisation_name STRING,
    gss STRING,
    start_date DATE,
    end_date DATE,
    divisionset_start_date DATE,
    divisionset_end_date DATE,
    division_type STRING,
    division_slug STRING,
    division_name STRING,
    division_official_identifier STRING,
    organisation_key STRING,
    area_key STRING,
    geometry BINARY,
    repaired BOOLEAN,
    source_file STRING,
    source_line BIGINT
)
STORED AS PARQUET
LOCATION $location;

ALTER TABLE organisation_areas SET LOCATION $location;
