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
--   an organisation without an area of its own (EE's boundary imports find areas by GSS
--   code, which Parliament and the devolved legislatures lack; their ballots take their
--   divisions' areas) has as its area the
--   pieces of the divisions of its divisionset current on that day, as own-area rows, so
--   that an address in one of its constituencies is in it;
-- - its divisions are those of its divisionsets not ended before as_of, each with the
--   divisionset's dates, their areas' pieces taken as the organisation's are
--   (organisations_divisiongeographysubdivided, else organisations_divisiongeography);
-- - every row of an organisation carries the organisation's own fields: organisation_name
--   as EE names it (official_name, else common_name, else official_identifier), gss and its
--   area's geography's, start_date and end_date its own, by which the reader keys it.
--
-- Left out (no row of the CSV, a left_out row here): an organisation without an area (no
-- geography, or one with neither pieces nor a shape, and no current division with an area;
-- its divisions are still exported), a
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
division_piece AS (
    SELECT
        divisionset.id AS divisionset_id,
        divisionset.organisation_id,
        divisionset.start_date AS divisionset_start_date,
        divisionset.end_date AS divisionset_end_date,
        division.id AS division_id,
        division.division_type,
        division.slug,
        division.name,
        division.official_identifier,
        piece.id AS piece_id,
        piece.geography
    FROM divisionset
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
own_piece AS (
    SELECT owner.id AS organisation_id, piece.id AS piece_id, piece.geography
    FROM owner
    JOIN organisations_organisationgeographysubdivided AS piece
        ON piece.organisation_geography_id = owner.area_geography_id
    UNION ALL
    SELECT owner.id, NULL, owner.area_geography
    FROM owner
    WHERE owner.area_geography IS NOT NULL AND NOT EXISTS (
        SELECT FROM organisations_organisationgeographysubdivided
        WHERE organisation_geography_id = owner.area_geography_id
    )
),
area_divisionset AS (
    SELECT DISTINCT ON (divisionset.organisation_id)
        divisionset.id,
        divisionset.organisation_id
    FROM divisionset
    JOIN owner ON owner.id = divisionset.organisation_id
    WHERE coalesce(divisionset.start_date <= owner.area_day, true)
        AND coalesce(divisionset.end_date >= owner.area_day, true)
        AND NOT EXISTS (SELECT FROM own_piece WHERE own_piece.organisation_id = owner.id)
    ORDER BY divisionset.organisation_id, divisionset.start_date DESC NULLS LAST, divisionset.id DESC
),
organisation_piece AS (
    SELECT organisation_id, NULL::integer AS area_division_id, piece_id, geography
    FROM own_piece
    UNION ALL
    SELECT division_piece.organisation_id, division_piece.division_id, piece_id, geography
    FROM area_divisionset
    JOIN division_piece ON division_piece.divisionset_id = area_divisionset.id
    WHERE division_piece.geography IS NOT NULL
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
        piece.area_division_id,
        piece.piece_id,
        CASE WHEN piece.geography IS NULL THEN 'organisation without area' END AS left_out
    FROM owner
    LEFT JOIN organisation_piece AS piece ON piece.organisation_id = owner.id
),
division_rows AS (
    SELECT
        owner.*,
        piece.divisionset_start_date,
        piece.divisionset_end_date,
        nullif(piece.division_type, '') AS division_type,
        nullif(piece.slug, '') AS division_slug,
        nullif(piece.name, '') AS division_name,
        nullif(piece.official_identifier, '') AS division_official_identifier,
        piece.geography AS piece_geography,
        piece.divisionset_id,
        piece.division_id,
        NULL::integer AS area_division_id,
        piece.piece_id,
        CASE
            WHEN btrim(piece.slug) = '' THEN 'division without slug'
            WHEN piece.geography IS NULL THEN 'division without area'
        END AS left_out
    FROM division_piece AS piece
    JOIN owner ON owner.id = piece.organisation_id
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
    area_division_id,
    piece_id
FROM export_rows
