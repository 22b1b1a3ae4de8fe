-- Every address's UPRN with the sorted, distinct keys of the boundary-review divisions
-- containing it. The other address columns stay in the partitioned AddressBase.
--   $addressbase_partitioned    folder of the addressbase_partitioned table
--   $letters                    the first letters to build
--   $boundary_review_divisions  folder of the boundary_review_divisions table
--   $output                     folder receiving first_letter=<L>/ partitions
-- Each row of the divisions table is one piece of a division, tested on its own: a point on
-- the edge between two pieces of one division is in neither, as with the ballots' pieces.

-- The geometry reads as a GEOMETRY, but as its WKB from a table of no rows (no review at all),
-- whose file carries no GeoParquet metadata.
CREATE TEMP MACRO area(geometry GEOMETRY) AS geometry, (geometry BLOB) AS ST_GeomFromWKB(geometry);

COPY (
    SELECT
        a.uprn,
        coalesce(
            list_sort(
                list_distinct(list(d.division_key) FILTER (WHERE d.division_key IS NOT NULL))
            ),
            []
        )::VARCHAR[] AS division_keys,
        a.first_letter
    FROM read_parquet(
        $addressbase_partitioned || 'first_letter=*/*.parquet', hive_partitioning = true
    ) AS a
    LEFT JOIN read_parquet($boundary_review_divisions || '*.parquet') AS d
        ON ST_Contains(area(d.geometry), ST_Point(a.longitude, a.latitude))
    WHERE list_contains($letters, a.first_letter)
    GROUP BY a.uprn, a.first_letter
) TO $output (FORMAT parquet, PARTITION_BY (first_letter), COMPRESSION snappy);
