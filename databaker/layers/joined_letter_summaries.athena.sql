-- What the joined table's UPRN check compares of the joined table, a letter at a time: each
-- letter's rows and an order-insensitive checksum of its UPRNs, as
-- addressbase_letter_summaries computes them for the partitioned AddressBase.
--   $joined   the layer's joined table
--   $letters  the first letters to summarise

SELECT
    first_letter,
    count(*) AS row_count,
    CAST(sum(CAST(from_big_endian_64(xxhash64(to_utf8(uprn))) AS DECIMAL(38, 0))) AS VARCHAR)
        AS checksum
FROM $joined
WHERE contains($letters, first_letter)
GROUP BY first_letter
ORDER BY first_letter;
