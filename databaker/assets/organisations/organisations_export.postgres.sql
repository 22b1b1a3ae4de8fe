-- The organisations export's rows, read from EveryElection's database (EE), in the CSV's 13
-- columns: a row per piece of an organisation's own area (the division fields NULL) and per
-- piece of each of its divisions' areas, then one row for each thing the export leaves out,
-- with why (left_out), and the EE ids that order the rows. Its placeholder, filled as an SQL
-- literal:
--   as_of  the date the export is taken as of
--
-- Which organisations, areas and divisions:
-- - every organisation not ended before as_of (end_date NULL or on or after it), of any type:
--   those that start later are kept, for a bake as of a later date; a type the CSV does not
--   know is the reader's to reject, with its reason;
-- - its area is the one of its geographies current on as_of, or on its start date when it
--   starts later (a geography's NULL date is open); an organisation with a single geography
--   has that one, whatever its dates, as EE's Organisation.get_geography has it. Its pieces
--   are that geography's subdivided polygons (organisations_organisationgeographysubdivided)
--   as they are, or the whole geography, one MULTIPOLYGON row, when EE holds no pieces of it;
-- - its divisions are those of its divisionsets not ended before as_of, each with the
--   divisionset's dates, their areas' pieces taken as the organisation's are
--   (organisations_divisiongeographysubdivided, else organisations_divisiongeography);
-- - every row of an organisation carries the organisation's own fields: organisation_name
--   as EE names it (official_name, else common_name, else official_identifier), gss and its
--   area's geography's, start_date and end_date its own, by which the reader keys it.
--
-- Left out (no row of the CSV, a left_out row here): an organisation without an area (no
-- geography, or one with neither pieces nor a shape; its divisions are still exported), a
-- division without an area, and a division without a slug, which the CSV cannot hold (an
-- empty division_slug means the organisation's own area).
--
-- Fields: an empty text is NULL (COPY leaves it bare, not ""), dates YYYY-MM-DD, geometry WKT
-- in EE's lon/lat (SRID 4326).
-- It reads organisations_organisation(id, organisation_type, official_identifier,
-- official_name, common_name, start_date, end_date), organisations_organisationgeography(id,
-- organisation_id, gss, start_date, end_date, geography), organisations_organisationdivisionset
-- (id, organisation_id, start_date, end_date), organisations_organisationdivision(id,
-- divisionset_id, name, official_identifier, slug, division_type),
-- organisations_divisiongeography(id, division_id, geography) and the two subdivided tables'
-- (id, <geography>_id, geography).

WITH organisation AS (
    SELECT
        id,
        organisation_type,
        official_identifier,
        coalesce(nullif(official_name, ''), nullif(common_name, ''), official_identifier)
            AS organisation_name,
        start_date,
        end_date,
        greatest({as_of}::date, start_date) AS area_day
    FROM organisations_organisation
    WHERE end_date IS NULL OR end_date >= {as_of}::date
),
area AS (
    SELECT DISTINCT ON (organisation.id)
        organisation.id AS organisation_id,
        geography.id AS geography_id,
        geography.gss,
        geography.geography
    FROM organisation
    JOIN organisations_organisationgeography AS geography
        ON geography.organisation_id = organisation.id
    WHERE (
        coalesce(geography.start_date <= organisation.area_day, true)
        AND coalesce(geography.end_date >= organisation.area_day, true)
    ) OR NOT EXISTS (
        SELECT FROM organisations_organisationgeography AS other
        WHERE other.organisation_id = organisation.id AND other.id <> geography.id
    )
    ORDER BY organisation.id, geography.start_date DESC NULLS LAST, geography.id DESC
),
owner AS (
    SELECT
        organisation.*,
        area.geography_id AS area_geography_id,
        area.geography AS area_geography,
        nullif(area.gss, '') AS gss
    FROM organisation
    LEFT JOIN area ON area.organisation_id = organisation.id
),
divisionset AS (
    SELECT id, organisation_id, start_date, end_date
    FROM organisations_organisationdivisionset
    WHERE organisation_id IN (SELECT id FROM organisation)
        AND (end_date IS NULL OR end_date >= {as_of}::date)
),
organisation_rows AS (
    SELECT
        owner.*,
        NULL::date AS divisionset_start_date,
        NULL::date AS divisionset_end_date,
        NULL::text AS division_type,
        NULL::text AS division_slug,
        NULL::text AS division_name,
        NULL::text AS division_official_identifier,
        piece.geography AS piece_geography,
        NULL::integer AS divisionset_id,
        NULL::integer AS division_id,
        piece.id AS piece_id,
        CASE WHEN piece.geography IS NULL THEN 'organisation without area' END AS left_out
    FROM owner
    LEFT JOIN LATERAL (
        SELECT id, geography
        FROM organisations_organisationgeographysubdivided
        WHERE organisation_geography_id = owner.area_geography_id
        UNION ALL
        SELECT NULL, owner.area_geography
        WHERE NOT EXISTS (
            SELECT FROM organisations_organisationgeographysubdivided
            WHERE organisation_geography_id = owner.area_geography_id
        )
    ) AS piece ON true
),
division_rows AS (
    SELECT
        owner.*,
        divisionset.start_date AS divisionset_start_date,
        divisionset.end_date AS divisionset_end_date,
        nullif(division.division_type, '') AS division_type,
        nullif(division.slug, '') AS division_slug,
        nullif(division.name, '') AS division_name,
        nullif(division.official_identifier, '') AS division_official_identifier,
        piece.geography AS piece_geography,
        divisionset.id AS divisionset_id,
        division.id AS division_id,
        piece.id AS piece_id,
        CASE
            WHEN btrim(division.slug) = '' THEN 'division without slug'
            WHEN piece.geography IS NULL THEN 'division without area'
        END AS left_out
    FROM divisionset
    JOIN owner ON owner.id = divisionset.organisation_id
    JOIN organisations_organisationdivision AS division
        ON division.divisionset_id = divisionset.id
    LEFT JOIN organisations_divisiongeography AS geography
        ON geography.division_id = division.id
    LEFT JOIN LATERAL (
        SELECT id, geography
        FROM organisations_divisiongeographysubdivided
        WHERE division_geography_id = geography.id
        UNION ALL
        SELECT NULL, geography.geography
        WHERE NOT EXISTS (
            SELECT FROM organisations_divisiongeographysubdivided
            WHERE division_geography_id = geography.id
        )
    ) AS piece ON true
),
export_rows AS (
    SELECT * FROM organisation_rows
    UNION ALL
    SELECT * FROM division_rows
)
SELECT
    organisation_type,
    official_identifier,
    organisation_name,
    gss,
    to_char(start_date, 'YYYY-MM-DD') AS start_date,
    to_char(end_date, 'YYYY-MM-DD') AS end_date,
    to_char(divisionset_start_date, 'YYYY-MM-DD') AS divisionset_start_date,
    to_char(divisionset_end_date, 'YYYY-MM-DD') AS divisionset_end_date,
    division_type,
    division_slug,
    division_name,
    division_official_identifier,
    ST_AsText(piece_geography) AS geometry,
    left_out,
    id AS organisation_id,
    divisionset_id,
    division_id,
    piece_id
FROM export_rows
