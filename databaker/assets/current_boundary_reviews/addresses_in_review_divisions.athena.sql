-- Every address's UPRN with the sorted, distinct keys of the boundary-review divisions
-- containing it. The other address columns stay in the partitioned AddressBase.
--   $addressbase_partitioned    the addressbase_partitioned table
--   $letters                    the first letters to build
--   $boundary_review_divisions  the boundary_review_divisions table
--   $output                     empty folder receiving first_letter=<L>/ partitions
-- Each row of the divisions table is one piece of a division, tested on its own. The pieces
-- are built once from WKB on the divisions' side of the join, so Trino plans a spatial join
-- (an R-tree over the pieces, probed with each address's point).

UNLOAD (
    SELECT
        a.uprn,
        coalesce(
            array_sort(
                array_distinct(array_agg(d.division_key) FILTER (WHERE d.division_key IS NOT NULL))
            ),
            CAST(ARRAY[] AS ARRAY(VARCHAR))
        ) AS division_keys,
        a.first_letter
    FROM $addressbase_partitioned AS a
    LEFT JOIN $boundary_review_divisions AS d
        ON ST_Contains(ST_GeomFromBinary(d.geometry), ST_Point(a.longitude, a.latitude))
    WHERE contains($letters, a.first_letter)
    GROUP BY a.uprn, a.first_letter
)
TO $output
WITH (format = 'PARQUET', compression = 'SNAPPY', partitioned_by = ARRAY['first_letter']);
