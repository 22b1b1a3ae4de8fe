-- A ballots export (loaded into the temporary table export_rows: election_id, division_id,
-- geometry, source_table, as the CSV has them) put into EE's tables, the way EE would hold it:
-- each Division area a division of one divisionset of one council, each Organisation area an
-- organisation's geography, every ballot Approved on %(poll_open_date)s with its area's
-- geography id, and each area subdivided into the polygons of its rows. The export taken from
-- EE afterwards names the same ballots with the same pieces (a MULTIPOLYGON row becomes its
-- polygons).

CREATE TEMP TABLE area_pieces AS
SELECT DISTINCT division_id, source_table, ST_AsEWKB(piece) AS wkb
FROM (
    SELECT
        r.division_id,
        r.source_table,
        (ST_Dump(
            CASE WHEN r.geometry ILIKE 'SRID=%%' THEN ST_GeomFromEWKT(r.geometry)
                 ELSE ST_GeomFromText(r.geometry, 4326) END
        )).geom AS piece
    FROM export_rows AS r
    WHERE r.source_table IN ('Division', 'Organisation') AND r.geometry <> ''
) AS dumped;

WITH council AS (
    INSERT INTO organisations_organisation (official_identifier, organisation_type, start_date)
    VALUES ('LOADED-COUNCIL', 'local-authority', DATE '2000-01-01') RETURNING id
)
INSERT INTO organisations_organisationdivisionset (organisation_id, start_date)
SELECT id, DATE '2000-01-01' FROM council;

INSERT INTO organisations_organisationdivision (divisionset_id, official_identifier, slug, name)
SELECT (SELECT max(id) FROM organisations_organisationdivisionset), division_id,
       lower(division_id), division_id
FROM (SELECT DISTINCT division_id FROM area_pieces WHERE source_table = 'Division') AS d;

INSERT INTO organisations_divisiongeography (division_id, geography)
SELECT d.id, ST_Multi(ST_Collect(p.piece))
FROM organisations_organisationdivision AS d
JOIN (SELECT division_id, ST_GeomFromEWKB(wkb) AS piece FROM area_pieces WHERE source_table = 'Division') AS p
    ON p.division_id = d.official_identifier
GROUP BY d.id;

INSERT INTO organisations_divisiongeographysubdivided (division_geography_id, geography)
SELECT g.id, p.piece
FROM organisations_divisiongeography AS g
JOIN organisations_organisationdivision AS d ON d.id = g.division_id
JOIN (SELECT division_id, ST_GeomFromEWKB(wkb) AS piece FROM area_pieces WHERE source_table = 'Division') AS p
    ON p.division_id = d.official_identifier;

INSERT INTO organisations_organisation (official_identifier, organisation_type, start_date)
SELECT DISTINCT division_id, 'local-authority', DATE '2000-01-01'
FROM area_pieces WHERE source_table = 'Organisation';

INSERT INTO organisations_organisationgeography (organisation_id, gss, geography)
SELECT o.id, o.official_identifier, ST_Multi(ST_Collect(p.piece))
FROM organisations_organisation AS o
JOIN (SELECT division_id, ST_GeomFromEWKB(wkb) AS piece FROM area_pieces
          WHERE source_table = 'Organisation')
    AS p ON p.division_id = o.official_identifier
GROUP BY o.id, o.official_identifier;

INSERT INTO organisations_organisationgeographysubdivided (organisation_geography_id, geography)
SELECT g.id, p.piece
FROM organisations_organisationgeography AS g
JOIN organisations_organisation AS o ON o.id = g.organisation_id
JOIN (SELECT division_id, ST_GeomFromEWKB(wkb) AS piece FROM area_pieces
          WHERE source_table = 'Organisation')
    AS p ON p.division_id = o.official_identifier;

INSERT INTO elections_election (
    election_id, election_type_id, poll_open_date, current_status, division_geography_id,
    organisation_geography_id
)
SELECT
    r.election_id, 1, %(poll_open_date)s, 'Approved',
    max(dg.id) FILTER (WHERE r.source_table = 'Division'),
    max(og.id) FILTER (WHERE r.source_table = 'Organisation')
FROM export_rows AS r
LEFT JOIN organisations_organisationdivision AS d
    ON r.source_table = 'Division' AND d.official_identifier = r.division_id
LEFT JOIN organisations_divisiongeography AS dg ON dg.division_id = d.id
LEFT JOIN organisations_organisation AS o
    ON r.source_table = 'Organisation' AND o.official_identifier = r.division_id
LEFT JOIN organisations_organisationgeography AS og ON og.organisation_id = o.id
GROUP BY r.election_id;
