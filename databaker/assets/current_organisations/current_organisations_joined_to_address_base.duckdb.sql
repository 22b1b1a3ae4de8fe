-- Every address (its UPRN: the other address columns stay in the partitioned AddressBase, where
-- the version takes them) with the current organisations whose area contains it, each with its
-- division containing the address: one element per organisation, the text of its fields
-- joined by chr(30) (organisation_type, official_identifier, organisation_name, gss,
-- division_type, division_slug, division_name, division_official_identifier), the division's
-- four empty where none of the organisation's divisions contains the address; ordered by
-- organisation type (parl, sp, senedd, nia, gla, combined-authority, police-area,
-- local-authority), then official identifier. `[]` for an address in none.
--   $addressbase_partitioned  folder of the addressbase_partitioned table
--   $letters                  the first letters to build
--   $organisation_areas       folder of the organisation_areas table: the pieces of every
--                             current organisation's area (division_slug '') and of its
--                             current divisions' areas
--   $output                   folder receiving first_letter=<L>/ partitions
--
-- An organisation's fields are the least text of its own area's pieces, a division's the
-- least of its area's pieces; of several of an organisation's divisions containing an address
-- (divisions that overlap), the one with the least area_key.

CREATE TEMP MACRO area(geometry GEOMETRY) AS geometry, (geometry BLOB) AS ST_GeomFromWKB(geometry);

COPY (
    WITH addresses AS (
        SELECT uprn, longitude, latitude, first_letter
        FROM read_parquet(
            $addressbase_partitioned || 'first_letter=*/*.parquet', hive_partitioning = true
        )
        WHERE list_contains($letters, first_letter)
    ),
    pieces AS (
        SELECT * FROM read_parquet($organisation_areas || '*.parquet')
    ),
    organisations AS (
        SELECT
            organisation_key,
            min(organisation_type || chr(30) || official_identifier || chr(30)
                || organisation_name || chr(30) || gss) AS organisation,
            list_position(
                ['parl', 'sp', 'senedd', 'nia', 'gla', 'combined-authority', 'police-area',
                 'local-authority'],
                min(organisation_type)
            ) AS type_rank,
            min(official_identifier) AS official_identifier
        FROM pieces
        WHERE division_slug = ''
        GROUP BY organisation_key
    ),
    divisions AS (
        SELECT
            area_key,
            min(division_type || chr(30) || division_slug || chr(30) || division_name
                || chr(30) || division_official_identifier) AS division
        FROM pieces
        WHERE division_slug <> ''
        GROUP BY area_key
    ),
    containing AS (
        SELECT DISTINCT a.uprn, p.organisation_key, p.area_key, p.division_slug = '' AS own_area
        FROM addresses AS a
        JOIN pieces AS p
            ON ST_Contains(area(p.geometry), ST_Point(a.longitude, a.latitude))
    ),
    per_organisation AS (
        SELECT
            c.uprn,
            c.organisation_key,
            bool_or(c.own_area) AS in_area,
            arg_min(d.division, c.area_key) FILTER (WHERE NOT c.own_area) AS division
        FROM containing AS c
        LEFT JOIN divisions AS d USING (area_key)
        GROUP BY c.uprn, c.organisation_key
    ),
    elements AS (
        SELECT
            p.uprn,
            list(
                o.organisation || chr(30)
                    || coalesce(p.division, chr(30) || chr(30) || chr(30))
                ORDER BY o.type_rank, o.official_identifier, o.organisation_key
            ) AS organisations
        FROM per_organisation AS p
        JOIN organisations AS o USING (organisation_key)
        WHERE p.in_area
        GROUP BY p.uprn
    )
    SELECT
        a.uprn,
        coalesce(e.organisations, [])::VARCHAR[] AS organisations,
        a.first_letter
    FROM addresses AS a
    LEFT JOIN elements AS e USING (uprn)
) TO $output (FORMAT parquet, PARTITION_BY (first_letter), COMPRESSION zstd);
