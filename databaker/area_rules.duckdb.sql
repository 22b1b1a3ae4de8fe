-- The rules every export of areas (the ballots, boundary-reviews and organisations exports)
-- applies to its lines and to its geometry field: macros that a reading query includes with
-- `-- include area_rules`, so that all read a line and an area alike, with the same reasons.
-- A reading query states only its own fields' faults; area_verdicts judges the area after them.
--
-- A field is WKT or EWKT: one POLYGON or MULTIPOLYGON in lon/lat and nothing after it, an
-- `SRID=` prefix read in any case. GEOS raises, rather than answers, on a ring that does not
-- close or has fewer than 4 points, so these are checked before a geometry reaches it; then an
-- invalid polygon is repaired with ST_MakeValid, and one that cannot be is a fault too.

-- RFC 4180: a quoted field's content has its quotes doubled; a bare field is taken as it is.
CREATE TEMP MACRO csv_field(quoted, bare) AS
    CASE WHEN quoted <> '' THEN replace(quoted, '""', '"') ELSE bare END;

-- Why a line (`raw_line`, as databaker/line_reading.py cuts it; `too_long`: it holds only its
-- start) is rejected whole, before its fields are read; NULL when it is not. The longest line
-- read is the readers' MAX_LINE_BYTES (databaker/input_tables.py).
CREATE TEMP MACRO line_fault(raw_line, too_long) AS
    CASE
        WHEN too_long THEN 'line is longer than 64 MiB, the most a line may hold'
        WHEN contains(raw_line, chr(13)) THEN 'line holds a carriage return that does not end it'
        WHEN contains(raw_line, chr(0)) THEN 'line holds a NUL byte'
    END;

-- The lines of the table `lines` (as databaker/line_reading.py cuts an export: line_no,
-- raw_line, too_long) that are not blank, each with its line_fault and, unless too long, its
-- `parts`: its text cut at its double quotes. A line as exports write it (bare fields and one
-- quoted geometry) is cut into its fields from its parts, which costs far less than matching
-- the record pattern over the whole geometry.
CREATE TEMP MACRO quoted_lines(lines) AS TABLE
    SELECT
        line_no,
        raw_line,
        too_long,
        line_fault(raw_line, too_long) AS line_fault,
        CASE WHEN NOT too_long THEN string_split(raw_line, '"') END AS parts
    FROM query_table(lines)
    -- Blank lines hold no row.
    WHERE raw_line <> '';

-- EWKT's SRID prefix, in any case; an unreadable one is left to fail the grammar.
CREATE TEMP MACRO area_srid(text) AS regexp_extract(text, '^\s*SRID=([0-9]+);', 1, 'i');

-- The WKT after any SRID prefix.
CREATE TEMP MACRO area_wkt(text) AS regexp_replace(text, '^\s*SRID=[0-9]+;', '', 'i');

-- What follows the geometry (matched by `pattern`, one POLYGON or MULTIPOLYGON) that a field
-- starts with, which DuckDB's WKT reader would silently drop.
CREATE TEMP MACRO after_geometry(wkt, pattern) AS
    trim(wkt[length(regexp_extract(wkt, '^' || pattern, 0, 'i')) + 1:]);

-- Each ring of the geometry's non-empty polygons.
CREATE TEMP MACRO area_rings(shape) AS
    flatten(list_transform(
        list_filter(ST_Dump(shape), part -> NOT ST_IsEmpty(part.geom)),
        part -> list_prepend(
            ST_ExteriorRing(part.geom),
            list_transform(
                range(1, ST_NumInteriorRings(part.geom) + 1),
                i -> ST_InteriorRingN(part.geom, i::INTEGER)
            )
        )
    ));

-- Why the field `text` (its `srid` and `wkt` parts, `shape` as parsed, `ring_list` its rings)
-- is no area to keep; NULL when it is one (which may still need repairing). `pattern` is one
-- POLYGON or MULTIPOLYGON in WKT (current_ballots.wkt.POLYGONAL_WKT).
-- (A field of blanks alone is as empty to ltrim as to trim, which reads the field to its end.)
CREATE TEMP MACRO area_fault(text, srid, wkt, shape, ring_list, pattern) AS
    CASE
        WHEN ltrim(text) = '' THEN 'geometry is empty'
        WHEN srid NOT IN ('', '4326') THEN
            printf('geometry is in SRID %s, not 4326 (lon/lat)', srid)
        WHEN shape IS NULL THEN
            printf('geometry is not valid WKT: "%s..."', text[:40])
        WHEN ST_GeometryType(shape) NOT IN ('POLYGON', 'MULTIPOLYGON') THEN
            printf('geometry is a %s, not a POLYGON or MULTIPOLYGON', ST_GeometryType(shape))
        WHEN NOT regexp_full_match(wkt, pattern || '\s*', 'i') THEN
            CASE WHEN regexp_matches(wkt, '^' || pattern, 'i')
                THEN printf(
                    'geometry goes on after its %s ends: "%s..."',
                    ST_GeometryType(shape), after_geometry(wkt, pattern)[:40]
                )
                ELSE printf('geometry is not valid WKT: "%s..."', text[:40])
            END
        WHEN ST_IsEmpty(shape) THEN
            printf('geometry is an empty %s', ST_GeometryType(shape))
        WHEN list_bool_or(list_transform(
                ring_list, ring -> ST_NPoints(ring) > 0 AND NOT ST_IsClosed(ring)
            )) THEN
            'geometry has a ring that does not close (its last point is not its first)'
        WHEN list_min(list_transform(ring_list, ring -> ST_NPoints(ring))) < 4 THEN
            'geometry has a ring of fewer than 4 points'
        WHEN NOT (isfinite(ST_XMin(shape)) AND isfinite(ST_XMax(shape))
                  AND isfinite(ST_YMin(shape)) AND isfinite(ST_YMax(shape))) THEN
            'geometry has a coordinate that is not a finite number'
        WHEN NOT (ST_XMin(shape) >= -10 AND ST_XMax(shape) <= 3
                  AND ST_YMin(shape) >= 49 AND ST_YMax(shape) <= 62) THEN
            'geometry is outside Great Britain: are the coordinates lon/lat?'
    END;

-- The area kept for a geometry without a fault: itself when valid (`shape_is_valid`, from
-- TRY(ST_IsValid(shape)): only a geometry without a fault reaches GEOS, and TRY turns whatever
-- it may still raise on into a geometry that could not be repaired), else its polygons once
-- repaired; NULL or empty when it cannot be repaired.
CREATE TEMP MACRO area_kept(shape, shape_is_valid) AS
    CASE WHEN shape_is_valid THEN shape ELSE TRY(ST_CollectionExtract(ST_MakeValid(shape), 3)) END;

-- The fault of a geometry that could not be repaired into a polygon.
CREATE TEMP MACRO area_unrepaired(geometry) AS
    CASE WHEN geometry IS NULL OR ST_IsEmpty(geometry) THEN
        'geometry is invalid and could not be repaired into a polygon'
    END;

-- Every row of the table `lines` with the verdict on its area: `lines` has a `geometry_text`
-- field and a `field_fault`, the first of the line's own faults (its line_fault and its other
-- fields', in the reader's order) or NULL when it has none. A line's field fault comes before
-- any fault of its area, whose geometry is parsed, once, only when the line has no field
-- fault; `pattern` is one POLYGON or MULTIPOLYGON in WKT (current_ballots.wkt.POLYGONAL_WKT).
-- Adds to the columns of `lines`:
--   geometry  the area kept, repaired when invalid; NULL when the line has a fault
--   repaired  whether the kept area was an invalid polygon, repaired
--   fault     why the line is no row of the table (its field fault, else its area's); NULL:
--             the line is a row, its area `geometry`
CREATE TEMP MACRO area_verdicts(lines, pattern) AS TABLE
WITH texts AS (
    SELECT *, area_srid(geometry_text) AS srid, area_wkt(geometry_text) AS wkt
    FROM query_table(lines)
),
parsed AS (
    SELECT *, CASE WHEN field_fault IS NULL THEN TRY(ST_GeomFromText(wkt)) END AS shape
    FROM texts
),
rings AS (SELECT *, area_rings(shape) AS ring_list FROM parsed),
-- A CASE rather than coalesce: only a line without a field fault reaches area_fault.
faults AS (
    SELECT
        *,
        CASE
            WHEN field_fault IS NOT NULL THEN field_fault
            ELSE area_fault(geometry_text, srid, wkt, shape, ring_list, pattern)
        END AS line_or_area_fault
    FROM rings
),
validity AS (
    SELECT
        *,
        CASE WHEN line_or_area_fault IS NULL THEN TRY(ST_IsValid(shape)) END AS shape_is_valid
    FROM faults
),
repaired AS (
    SELECT
        *,
        line_or_area_fault IS NULL AND shape_is_valid IS NOT TRUE AS repaired,
        CASE WHEN line_or_area_fault IS NULL THEN area_kept(shape, shape_is_valid) END AS geometry
    FROM validity
)
SELECT
    * EXCLUDE (srid, wkt, shape, ring_list, line_or_area_fault, shape_is_valid),
    coalesce(line_or_area_fault, area_unrepaired(geometry)) AS fault
FROM repaired;

-- The first rejected lines, as databaker/rejections.py lists them when it stops a bake: an
-- aggregate over the judged lines, each in `file` at `line`, rejected (`rejected`) for `reason`.
CREATE TEMP MACRO first_rejected(file, line, reason, rejected) AS
    coalesce(
        list({'file': file, 'line': line, 'reason': reason} ORDER BY file, line)
            FILTER (WHERE rejected)[:20],
        []
    );

-- The report of the lines of one export file (`file`) that the table `judged` did not keep:
-- every line whose `status` is not 'ok', with its status, reason and text, in line order.
CREATE TEMP MACRO unkept_lines(judged, file) AS TABLE
    SELECT file AS file, line_no AS line, status, reason, text
    FROM query_table(judged)
    WHERE status <> 'ok'
    ORDER BY line;
