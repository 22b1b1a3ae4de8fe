-- The rules every input that carries areas applies to a geometry field (the ballots export's,
-- the boundary-reviews export's): macros that a reading query includes with
-- `-- include area_rules`, so that both read an area alike, with the same reasons.
--
-- A field is WKT or EWKT: one POLYGON or MULTIPOLYGON in lon/lat and nothing after it, an
-- `SRID=` prefix read in any case. GEOS raises, rather than answers, on a ring that does not
-- close or has fewer than 4 points, so these are checked before a geometry reaches it; then an
-- invalid polygon is repaired with ST_MakeValid, and one that cannot be is a fault too.

-- RFC 4180: a quoted field's content has its quotes doubled; a bare field is taken as it is.
CREATE TEMP MACRO csv_field(quoted, bare) AS
    CASE WHEN quoted <> '' THEN replace(quoted, '""', '"') ELSE bare END;

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
