-- The Glue table over boundary_review_divisions: one row per piece of a division's area in a
-- boundary review, the geometry as OGC WKB.
--   $location  the table's folder (s3://.../boundary_review_divisions/)

CREATE EXTERNAL TABLE IF NOT EXISTS boundary_review_divisions (
    boundary_review_id BIGINT,
    slug STRING,
    status STRING,
    latest_event STRING,
    consultation_url STRING,
    legislation_title STRING,
    effective_date STRING,
    review_created STRING,
    review_modified STRING,
    organisation_name STRING,
    organisation_official_name STRING,
    organisation_gss STRING,
    divisionset_id STRING,
    divisionset_pmtiles_url STRING,
    division_slug STRING,
    division_name STRING,
    division_official_identifier STRING,
    divisionset_generation STRING,
    division_type STRING,
    division_key STRING,
    geometry BINARY,
    repaired BOOLEAN,
    source_file STRING,
    source_line BIGINT
)
STORED AS PARQUET
LOCATION $location;

ALTER TABLE boundary_review_divisions SET LOCATION $location;
