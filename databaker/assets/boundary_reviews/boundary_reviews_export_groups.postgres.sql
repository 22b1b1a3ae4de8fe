-- What the boundary-reviews export will hold, read from EveryElection's database (EE) before
-- any geometry: the selected reviews, each with its new and old divisionset, and the part files
-- to write, a (review, generation, division type) group each, with their counts. Small: a row
-- per review, generation and division type. Its placeholders, each filled as an SQL literal:
--   review_ids  text[] of review IDs: exactly these reviews, whatever their status ...
--   statuses    text[]: ... or, when review_ids is empty, the reviews of these statuses
-- Returns, ordered by review, generation and division type:
--   boundary_review_id, divisionset_generation (new, old)
--   divisionset_id       NULL: the review has no divisionset of that generation
--   division_type        NULL: the divisionset holds no division
--   type_is_folder_name  whether division_type can name a division_type= folder (letters,
--                        digits, _ and -, as the export's reader requires)
--   divisions            the divisions of that type with at least one piece of area
--   pieces               their pieces (organisations_divisiongeographysubdivided): the rows
--   divisions_without_area  divisions of that type with no piece of area
--
-- The new divisionset is the review's own. The old one is the organisation's divisionset that
-- ended last before the new one began (any that ended, when the review has none yet): a
-- divisionset that ended after the new one began is a later review's old one, not this one's.

WITH selected AS (
    SELECT
        review.id AS boundary_review_id,
        review.organisation_id,
        review.divisionset_id AS new_divisionset_id
    FROM organisations_organisationboundaryreview AS review
    WHERE CASE
        WHEN cardinality({review_ids}::bigint[]) > 0 THEN review.id = ANY({review_ids}::bigint[])
        ELSE review.status = ANY({statuses}::text[])
    END
),
generations AS (
    SELECT boundary_review_id, 'new' AS divisionset_generation, new_divisionset_id AS divisionset_id
    FROM selected
    UNION ALL
    SELECT
        selected.boundary_review_id,
        'old',
        (
            SELECT earlier.id
            FROM organisations_organisationdivisionset AS earlier
            WHERE earlier.organisation_id = selected.organisation_id
                AND earlier.id IS DISTINCT FROM selected.new_divisionset_id
                AND earlier.end_date < coalesce(new_set.start_date, 'infinity'::date)
            ORDER BY earlier.end_date DESC, earlier.id DESC
            LIMIT 1
        )
    FROM selected
    LEFT JOIN organisations_organisationdivisionset AS new_set
        ON new_set.id = selected.new_divisionset_id
),
division_pieces AS (
    SELECT division.id AS division_id, count(piece.id) AS pieces
    FROM organisations_organisationdivision AS division
    LEFT JOIN organisations_divisiongeography AS geography
        ON geography.division_id = division.id
    LEFT JOIN organisations_divisiongeographysubdivided AS piece
        ON piece.division_geography_id = geography.id
    WHERE division.divisionset_id IN (SELECT divisionset_id FROM generations)
    GROUP BY division.id
)
SELECT
    generations.boundary_review_id,
    generations.divisionset_generation,
    generations.divisionset_id,
    division.division_type,
    coalesce(division.division_type ~ '^[A-Za-z0-9_-]+$', false) AS type_is_folder_name,
    count(*) FILTER (WHERE division_pieces.pieces > 0) AS divisions,
    coalesce(sum(division_pieces.pieces), 0)::bigint AS pieces,
    count(*) FILTER (WHERE division_pieces.pieces = 0) AS divisions_without_area
FROM generations
LEFT JOIN organisations_organisationdivision AS division
    ON division.divisionset_id = generations.divisionset_id
LEFT JOIN division_pieces ON division_pieces.division_id = division.id
GROUP BY
    generations.boundary_review_id,
    generations.divisionset_generation,
    generations.divisionset_id,
    division.division_type
ORDER BY
    generations.boundary_review_id,
    generations.divisionset_generation,
    division.division_type;
