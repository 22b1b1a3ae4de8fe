-- One part file of the boundary-reviews export, read from EveryElection's database (EE): the
-- divisions of one type in one divisionset of a review, a row per piece of a division's area
-- (organisations_divisiongeographysubdivided), in the 20 columns the export's reader takes
-- (boundary_review_divisions.duckdb.sql), ordered by division slug. Its placeholders, each
-- filled as an SQL literal:
--   boundary_review_id      the review
--   divisionset_generation  new or old ...
--   divisionset_id          ... and that generation's divisionset (the groups query's)
--   division_type           the divisions' type
--   pmtiles_base_url        where EE publishes its pmtiles-store/ (ends in /)
--
-- Fields are written as the export's other writers write them: an empty text as an empty field
-- (NULL, which COPY leaves bare, not ""), dates as YYYY-MM-DD, the review's timestamps in UTC
-- as Python's isoformat() writes them (2024-07-15T01:14:17.175616+00:00, no fraction when it is
-- zero), geometries as WKT in EE's lon/lat (SRID 4326). The organisation's GSS code is its
-- latest geography's (by start date), as EE's own pages show it. A divisionset's map tiles are
-- EE's file <organisation slug>_<divisionset id>_<pmtiles_md5_hash>.pmtiles, named only once EE
-- has hashed the divisionset.

WITH review AS (
    SELECT
        review.id,
        review.slug,
        review.status,
        review.latest_event,
        review.consultation_url,
        review.legislation_title,
        review.effective_date,
        review.created AT TIME ZONE 'UTC' AS created,
        review.modified AT TIME ZONE 'UTC' AS modified,
        organisation.common_name,
        organisation.official_name,
        (
            SELECT geography.gss
            FROM organisations_organisationgeography AS geography
            WHERE geography.organisation_id = organisation.id
            ORDER BY geography.start_date DESC NULLS LAST, geography.id DESC
            LIMIT 1
        ) AS gss
    FROM organisations_organisationboundaryreview AS review
    LEFT JOIN organisations_organisation AS organisation
        ON organisation.id = review.organisation_id
    WHERE review.id = {boundary_review_id}
),
divisionset AS (
    SELECT
        divisionset.id,
        CASE WHEN divisionset.pmtiles_md5_hash <> '' AND owner.slug <> '' THEN
            {pmtiles_base_url} || 'pmtiles-store/' || owner.slug || '_' || divisionset.id
            || '_' || divisionset.pmtiles_md5_hash || '.pmtiles'
        END AS pmtiles_url
    FROM organisations_organisationdivisionset AS divisionset
    JOIN organisations_organisation AS owner ON owner.id = divisionset.organisation_id
    WHERE divisionset.id = {divisionset_id}
)
SELECT
    nullif(review.slug, '') AS slug,
    nullif(review.status, '') AS status,
    nullif(review.latest_event, '') AS latest_event,
    nullif(review.consultation_url, '') AS consultation_url,
    nullif(review.legislation_title, '') AS legislation_title,
    to_char(review.effective_date, 'YYYY-MM-DD') AS effective_date,
    to_char(review.created, 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_trunc('second', review.created) <> review.created
            THEN to_char(review.created, '.US') ELSE '' END
        || '+00:00' AS review_created,
    to_char(review.modified, 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_trunc('second', review.modified) <> review.modified
            THEN to_char(review.modified, '.US') ELSE '' END
        || '+00:00' AS review_modified,
    nullif(review.common_name, '') AS organisation_name,
    nullif(review.official_name, '') AS organisation_official_name,
    nullif(review.gss, '') AS organisation_gss,
    divisionset.id::text AS divisionset_id,
    divisionset.pmtiles_url AS divisionset_pmtiles_url,
    nullif(division.slug, '') AS division_slug,
    nullif(division.name, '') AS division_name,
    nullif(division.official_identifier, '') AS division_official_identifier,
    ST_AsText(piece.geography) AS division_boundary_wkt,
    review.id AS boundary_review_id,
    {divisionset_generation}::text AS divisionset_generation,
    division.division_type
FROM review
CROSS JOIN divisionset
JOIN organisations_organisationdivision AS division
    ON division.divisionset_id = divisionset.id AND division.division_type = {division_type}
JOIN organisations_divisiongeography AS geography ON geography.division_id = division.id
JOIN organisations_divisiongeographysubdivided AS piece
    ON piece.division_geography_id = geography.id
ORDER BY division.slug, division.id, piece.id
