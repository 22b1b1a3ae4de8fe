-- Every address with the sorted, distinct IDs of the ballots whose area contains it.
--   $addresses  addressbase_partitioned files of the letters being built (hive-partitioned)
--   $ballots    parquet written by current_ballots
--   $output     folder receiving first_letter=<L>/ partitions
-- Returns one row per file written (DuckDB's RETURN_STATS).

COPY (
    SELECT
        a.uprn,
        a.address,
        a.postcode,
        a.addressbase_source,
        coalesce(
            list_sort(list_distinct(list(b.election_id) FILTER (WHERE b.election_id IS NOT NULL))),
            []
        )::VARCHAR[] AS ballot_ids,
        a.first_letter
    FROM read_parquet($addresses, hive_partitioning = true) AS a
    LEFT JOIN read_parquet($ballots) AS b
        ON ST_Contains(b.geometry, ST_Point(a.longitude, a.latitude))
    GROUP BY a.uprn, a.address, a.postcode, a.addressbase_source, a.first_letter
) TO $output (FORMAT parquet, PARTITION_BY (first_letter), COMPRESSION zstd, RETURN_STATS);
