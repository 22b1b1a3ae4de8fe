-- Every address (its UPRN) with the sorted, distinct IDs of the ballots whose area contains it.
-- The other address columns stay in the partitioned AddressBase, where the version takes them.
--   $addressbase_partitioned  the addressbase_partitioned table
--   $letters                  the first letters to build
--   $current_ballots          the current_ballots table
--   $output                   empty folder receiving first_letter=<L>/ partitions
-- The areas are built once from WKB on the ballots side of the join, so Trino plans a spatial
-- join (an R-tree over the ballots, probed with each address's point). ST_GeomFromBinary is
-- used rather than ST_Polygon, which accepts single polygons only.

UNLOAD (
    SELECT
        a.uprn,
        coalesce(
            array_sort(
                array_distinct(array_agg(b.election_id) FILTER (WHERE b.election_id IS NOT NULL))
            ),
            CAST(ARRAY[] AS ARRAY(VARCHAR))
        ) AS ballot_ids,
        a.first_letter
    FROM $addressbase_partitioned AS a
    LEFT JOIN $current_ballots AS b
        ON ST_Contains(ST_GeomFromBinary(b.geometry), ST_Point(a.longitude, a.latitude))
    WHERE contains($letters, a.first_letter)
    -- Grouped by every column of the address, so that each row of the partitioned AddressBase
    -- gives one row, as the embedded engine writes them.
    GROUP BY a.uprn, a.address, a.postcode, a.addressbase_source, a.first_letter
)
TO $output
WITH (format = 'PARQUET', compression = 'ZSTD', partitioned_by = ARRAY['first_letter']);
