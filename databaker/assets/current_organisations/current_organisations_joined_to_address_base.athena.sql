-- Every address with the current organisations whose area contains it, each with its
-- division containing the address (the contract is in the .duckdb.sql twin of this file).
--   $addressbase_partitioned  the addressbase_partitioned table
--   $letters                  the first letters to build
--   $organisation_areas       the organisation_areas table
--   $output                   empty folder receiving first_letter=<L>/ partitions
-- The areas are built once from WKB on the pieces' side of the join, so Trino plans a spatial
-- join (an R-tree over the pieces, probed with each address's point).

UNLOAD (
    WITH addresses AS (
        SELECT uprn, longitude, latitude, first_letter
        FROM $addressbase_partitioned
        WHERE contains($letters, first_letter)
    ),
    organisations AS (
        SELECT
            organisation_key,
            min(organisation_type || chr(30) || official_identifier || chr(30)
                || organisation_name || chr(30) || gss) AS organisation,
            array_position(
                ARRAY['parl', 'sp', 'senedd', 'nia', 'gla', 'combined-authority', 'police-area',
                      'local-authority'],
                min(organisation_type)
            ) AS type_rank,
            min(official_identifier) AS official_identifier
        FROM $organisation_areas
        WHERE division_slug = ''
        GROUP BY organisation_key
    ),
    divisions AS (
        SELECT
            area_key,
            min(division_type || chr(30) || division_slug || chr(30) || division_name
                || chr(30) || division_official_identifier) AS division
        FROM $organisation_areas
        WHERE division_slug <> ''
        GROUP BY area_key
    ),
    containing AS (
        SELECT DISTINCT a.uprn, p.organisation_key, p.area_key, p.division_slug = '' AS own_area
        FROM addresses AS a
        JOIN $organisation_areas AS p
            ON ST_Contains(ST_GeomFromBinary(p.geometry), ST_Point(a.longitude, a.latitude))
    ),
    per_organisation AS (
        SELECT
            c.uprn,
            c.organisation_key,
            bool_or(c.own_area) AS in_area,
            min_by(d.division, c.area_key) FILTER (WHERE NOT c.own_area) AS division
        FROM containing AS c
        LEFT JOIN divisions AS d ON d.area_key = c.area_key
        GROUP BY c.uprn, c.organisation_key
    ),
    elements AS (
        SELECT
            p.uprn,
            array_agg(
                o.organisation || chr(30)
                    || coalesce(p.division, chr(30) || chr(30) || chr(30))
                ORDER BY o.type_rank, o.official_identifier, o.organisation_key
            ) AS organisations
        FROM per_organisation AS p
        JOIN organisations AS o ON o.organisation_key = p.organisation_key
        WHERE p.in_area
        GROUP BY p.uprn
    )
    SELECT
        a.uprn,
        coalesce(e.organisations, CAST(ARRAY[] AS ARRAY(VARCHAR))) AS organisations,
        a.first_letter
    FROM addresses AS a
    LEFT JOIN elements AS e ON e.uprn = a.uprn
)
TO $output
WITH (format = 'PARQUET', compression = 'ZSTD', partitioned_by = ARRAY['first_letter']);
