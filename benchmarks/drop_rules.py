"""The bake's rules for a valid AddressBase line, as one SQL view for the harness and its peers.

Numeric UPRN, an address, a postcode that normalises to ``OUTCODE INWARD``, a lon/lat point in
Great Britain. The harness's own reading (the population it samples from) and the DuckDB peer
both apply these rules; neither imports anything of the bake, so they stay independent of it.
"""

VALID_ADDRESSES_SQL = r"""
CREATE OR REPLACE TEMP VIEW valid_addresses AS
WITH lines AS (
    SELECT
        uprn, address,
        regexp_replace(upper(postcode), '\s', '', 'g') AS compact,
        regexp_extract(
            location,
            '^(?:SRID=4326;)?POINT\s*\(\s*(-?[0-9]+(?:\.[0-9]+)?)\s+(-?[0-9]+(?:\.[0-9]+)?)\s*\)$',
            ['lon', 'lat']
        ) AS point
    FROM read_csv(
        getvariable('drop_files'), header = false, auto_detect = false, quote = '"',
        escape = '"',
        columns = {'uprn': 'VARCHAR', 'address': 'VARCHAR', 'postcode': 'VARCHAR',
                   'location': 'VARCHAR', 'address_type': 'VARCHAR'}
    )
),
typed AS (
    SELECT
        uprn, address,
        CASE WHEN length(compact) BETWEEN 5 AND 7
            THEN left(compact, -3) || ' ' || right(compact, 3) END AS postcode,
        TRY_CAST(nullif(point.lon, '') AS DOUBLE) AS lon,
        TRY_CAST(nullif(point.lat, '') AS DOUBLE) AS lat
    FROM lines
)
SELECT uprn, address, postcode, lon, lat
FROM typed
WHERE regexp_full_match(uprn, '[0-9]{1,12}')
  AND trim(address) <> ''
  AND regexp_full_match(postcode, '[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}')
  AND lon BETWEEN -10 AND 3 AND lat BETWEEN 49 AND 62
"""


def define_valid_addresses(conn, files: list[str]) -> None:
    """Create the temporary view ``valid_addresses(uprn, address, postcode, lon, lat)`` over
    ``files`` on ``conn`` (a DuckDB connection)."""
    conn.execute("SET VARIABLE drop_files = $files", {"files": files})
    conn.execute(VALID_ADDRESSES_SQL)
