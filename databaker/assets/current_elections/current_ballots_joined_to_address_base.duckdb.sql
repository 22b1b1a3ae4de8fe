-- Every address (its UPRN) with the sorted, distinct IDs of the ballots whose area contains it.
-- The other address columns stay in the partitioned AddressBase, where the version takes them.
--   $addressbase_partitioned  folder of the addressbase_partitioned table
--   $letters                  the first letters to build
--   $current_ballots          folder of the current_ballots table
--   $output                   folder receiving first_letter=<L>/ partitions

-- The ballots' geometry reads as a GEOMETRY, but as its WKB from a table of no rows (an export
-- whose every ballot is past polling day), whose file carries no GeoParquet metadata.
CREATE TEMP MACRO area(geometry GEOMETRY) AS geometry, (geometry BLOB) AS ST_GeomFromWKB(geometry);

COPY (
    SELECT
        a.uprn,
        coalesce(
            list_sort(list_distinct(list(b.election_id) FILTER (WHERE b.election_id IS NOT NULL))),
            []
        )::VARCHAR[] AS ballot_ids,
        a.first_letter
    FROM read_parquet(
        $addressbase_partitioned || 'first_letter=*/*.parquet', hive_partitioning = true
    ) AS a
    LEFT JOIN read_parquet($current_ballots || '*.parquet') AS b
        ON ST_Contains(area(b.geometry), ST_Point(a.longitude, a.latitude))
    WHERE list_contains($letters, a.first_letter)
    -- Grouped by every column of the address, so that each row of the partitioned AddressBase
    -- gives one row, as the embedded engine writes them.
    GROUP BY a.uprn, a.address, a.postcode, a.addressbase_source, a.first_letter
) TO $output (FORMAT parquet, PARTITION_BY (first_letter), COMPRESSION zstd);
