"""The ballots export taken from EveryElection's database (EE): which ballots and pieces, in the
ballots CSV's exact format, read by the ``current_ballots`` asset as a delivered file is; the
columns it may read; and the password never shown when the database cannot be reached."""

from __future__ import annotations

import io
import socket
import traceback
from datetime import date

import psycopg
import pyarrow.parquet as pq
import pytest
import shapely

from databaker.assets.current_ballots.ballots_export import export_ballots
from databaker.resources.every_election import EveryElectionDatabase, EveryElectionUnavailable
from databaker_tests.conftest import ballot_line, materialization
from databaker_tests.every_election_db import (
    BAKER,
    BAKER_COLUMNS,
    BAKER_PASSWORD,
    BALLOTS_EXPORT_COLUMNS,
    EveryElectionDb,
    division,
    every_election_fixture,  # noqa: F401
    every_election_server_fixture,  # noqa: F401
)

TODAY = date(2027, 4, 10)
POLLING_DAY = date(2027, 5, 6)


def square(lon: float, lat: float) -> str:
    """A square of 0.01 degrees, its coordinates written as PostGIS writes them back."""
    east, north = round(lon + 0.01, 6), round(lat + 0.01, 6)
    return f"POLYGON(({lon} {lat},{east} {lat},{east} {north},{lon} {north},{lon} {lat}))"


LEEDS = square(-1.6, 53.8)
HEADINGLEY = square(-1.58, 53.82)
KIRKSTALL_NORTH = square(-1.6, 53.83)
KIRKSTALL_SOUTH = square(-1.6, 53.82)
ADEL = square(-1.58, 53.85)
ROUNDHAY = square(-1.5, 53.83)
WEETWOOD = square(-1.57, 53.83)
MOORTOWN = square(-1.54, 53.84)
GIPTON = square(-1.5, 53.81)
ARMLEY = square(-1.6, 53.79)
BRAMLEY = square(-1.63, 53.8)
LONDON = square(-0.13, 51.5)
WEST_YORKSHIRE = (square(-1.9, 53.7), square(-1.7, 53.7), square(-1.5, 53.7))


def ballots_of_every_kind(ee: EveryElectionDb) -> dict[str, int]:
    """EE's ballots of every kind the export tells apart; return their areas' geography ids."""
    leeds = ee.organisation("LDS", LEEDS, common_name="Leeds", gss="E08000035")
    wards = ee.divisionset(
        leeds,
        division("headingley", HEADINGLEY),
        division("kirkstall", KIRKSTALL_NORTH, KIRKSTALL_SOUTH),
        division("adel", ADEL),
        division("roundhay", ROUNDHAY),
        division("weetwood", WEETWOOD),
        division("moortown", MOORTOWN),
        division("gipton", GIPTON),
        division("armley", ARMLEY),
        division("bramley", BRAMLEY),
    ).divisions
    west_yorkshire = ee.organisation(
        "WYCA", *WEST_YORKSHIRE, organisation_type="combined-authority"
    )
    gla = ee.organisation("GLA", LONDON, organisation_type="gla")

    # A ward.
    ee.election("local.leeds.headingley.2027-05-06", POLLING_DAY, division=wards["headingley"])
    # A ward of two pieces, cancelled: EE keeps a cancelled ballot Approved and current, and
    # the export keeps it, so that a lookup can say it is cancelled.
    ee.election(
        "local.leeds.kirkstall.2027-05-06",
        POLLING_DAY,
        division=wards["kirkstall"],
        cancelled=True,
    )
    # A ballot naming both a division and an organisation geography: the division's is taken.
    ee.election(
        "local.leeds.adel.2027-05-06", POLLING_DAY, division=wards["adel"], organisation=leeds
    )
    # A whole council's ballot (London-wide), and a mayoral area given as three pieces.
    ee.election("gla.a.2027-05-06", POLLING_DAY, organisation=gla)
    ee.election("mayor.west-yorkshire.2027-05-06", POLLING_DAY, organisation=west_yorkshire)
    # A ballot without geography.
    ee.election("parl.leeds-central.2027-05-06", POLLING_DAY)
    # Polled 31 days ago (gone) and exactly 30 days ago (still current).
    ee.election("local.leeds.roundhay.2027-03-10", date(2027, 3, 10), division=wards["roundhay"])
    ee.election("local.leeds.weetwood.2027-03-11", date(2027, 3, 11), division=wards["weetwood"])
    # Polled long ago but marked current; polling ahead but marked not-current.
    ee.election(
        "local.leeds.moortown.2026-05-07",
        date(2026, 5, 7),
        division=wards["moortown"],
        current=True,
    )
    ee.election(
        "local.leeds.gipton.2027-05-06", POLLING_DAY, division=wards["gipton"], current=False
    )
    # Not approved: suggested, and deleted (even marked current).
    ee.election(
        "local.leeds.armley.2027-05-06",
        POLLING_DAY,
        division=wards["armley"],
        current_status="Suggested",
    )
    ee.election(
        "local.leeds.bramley.2027-05-06",
        POLLING_DAY,
        division=wards["bramley"],
        current_status="Deleted",
        current=True,
    )
    # A group (the council's whole election): never a ballot, whatever its area.
    ee.election(
        "local.leeds.2027-05-06", POLLING_DAY, organisation=leeds, group_type="organisation"
    )
    return {
        "gla": gla.geography.id,
        "west_yorkshire": west_yorkshire.geography.id,
        **{slug: ward.geography.id for slug, ward in wards.items()},
    }


def expected_export(ids: dict[str, int]) -> str:
    """The export's text, in its order: ballot IDs bytewise, then each area's pieces."""
    wy = ids["west_yorkshire"]
    lines = [
        "election_id,division_id,geometry,source_table",
        ballot_line("gla.a.2027-05-06", ids["gla"], f"SRID=4326;{LONDON}", "Organisation"),
        ballot_line("local.leeds.adel.2027-05-06", ids["adel"], f"SRID=4326;{ADEL}", "Division"),
        ballot_line(
            "local.leeds.headingley.2027-05-06",
            ids["headingley"],
            f"SRID=4326;{HEADINGLEY}",
            "Division",
        ),
        ballot_line(
            "local.leeds.kirkstall.2027-05-06",
            ids["kirkstall"],
            f"SRID=4326;{KIRKSTALL_NORTH}",
            "Division",
        ),
        ballot_line(
            "local.leeds.kirkstall.2027-05-06",
            ids["kirkstall"],
            f"SRID=4326;{KIRKSTALL_SOUTH}",
            "Division",
        ),
        ballot_line(
            "local.leeds.moortown.2026-05-07", ids["moortown"], f"SRID=4326;{MOORTOWN}", "Division"
        ),
        ballot_line(
            "local.leeds.weetwood.2027-03-11", ids["weetwood"], f"SRID=4326;{WEETWOOD}", "Division"
        ),
        *(
            ballot_line("mayor.west-yorkshire.2027-05-06", wy, f"SRID=4326;{piece}", "Organisation")
            for piece in WEST_YORKSHIRE
        ),
        "parl.leeds-central.2027-05-06,,,None",
    ]
    return "".join(line + "\n" for line in lines)


def normal(geometry: bytes | str) -> str:
    """A polygon, from WKB or WKT, as normalised WKT: equal for the same shape."""
    shape = (
        shapely.from_wkb(geometry) if isinstance(geometry, bytes) else shapely.from_wkt(geometry)
    )
    return shapely.to_wkt(shapely.normalize(shape), trim=True)


def export(url: str, today: date = TODAY) -> tuple[bytes, dict[str, int]]:
    out = io.BytesIO()
    with EveryElectionDatabase(url).snapshot() as snapshot:
        counts = export_ballots(snapshot, out, today=today)
    return out.getvalue(), counts


def test_the_export_holds_each_piece_of_every_current_ballot_in_the_ballots_csv_format(
    every_election,
):
    ids = ballots_of_every_kind(every_election)
    exported, counts = export(every_election.url)
    assert exported.decode() == expected_export(ids)
    assert counts == {
        "ballots": 8,
        "rows": 11,
        "division_rows": 6,
        "organisation_rows": 4,
        "without_geography": 1,
    }


def save_again(ee: EveryElectionDb, table: str, rows: str, change: str = "") -> None:
    """Delete the ``rows`` of ``table`` and insert them anew, with ``change`` made."""
    ee.execute(f"CREATE TEMP TABLE saved AS SELECT * FROM {table} WHERE {rows}")
    ee.execute(f"DELETE FROM {table} WHERE {rows}")
    if change:
        ee.execute(f"UPDATE saved SET {change}")
    ee.execute(f"INSERT INTO {table} SELECT * FROM saved")
    ee.execute("DROP TABLE saved")


def test_an_unchanged_database_exports_the_same_bytes_and_a_change_shows(every_election):
    ballots_of_every_kind(every_election)
    first, _ = export(every_election.url)
    # Rows EE saves again move to the end of their tables (here a ballot, with columns the
    # export does not read changed, and the first piece of each area of several pieces), yet
    # the export reads the same.
    headingley = "election_id = 'local.leeds.headingley.2027-05-06'"
    save_again(every_election, "elections_election", headingley, "election_title = 'Headingley'")
    for kind in ("organisation", "division"):
        table = f"organisations_{kind}geographysubdivided"
        first_pieces = (
            f"id IN (SELECT min(id) FROM {table} GROUP BY {kind}_geography_id HAVING count(*) > 1)"
        )
        save_again(every_election, table, first_pieces)
    assert export(every_election.url)[0] == first

    every_election.execute(f"UPDATE elections_election SET current = false WHERE {headingley}")
    changed, counts = export(every_election.url)
    assert [line for line in first.decode().splitlines() if "headingley" not in line] == (
        changed.decode().splitlines()
    )
    assert counts["ballots"] == 7


def test_the_current_ballots_asset_reads_the_export_as_a_delivered_file(
    every_election, tmp_path, data_root, run_assets
):
    ids = ballots_of_every_kind(every_election)
    path = tmp_path / "ballots.csv"
    path.write_bytes(export(every_election.url)[0])

    result = run_assets(["current_ballots"], ballots=path)
    assert result.success
    table = pq.read_table(data_root / "current_ballots" / "current_ballots.parquet").to_pylist()
    pieces = sorted(
        (r["election_id"], r["division_id"], r["source_table"], normal(r["geometry"]))
        for r in table
    )
    assert pieces == sorted(
        (election_id, str(ids[area]), source, normal(wkt))
        for election_id, area, source, wkt in [
            ("gla.a.2027-05-06", "gla", "Organisation", LONDON),
            ("local.leeds.adel.2027-05-06", "adel", "Division", ADEL),
            ("local.leeds.headingley.2027-05-06", "headingley", "Division", HEADINGLEY),
            ("local.leeds.kirkstall.2027-05-06", "kirkstall", "Division", KIRKSTALL_NORTH),
            ("local.leeds.kirkstall.2027-05-06", "kirkstall", "Division", KIRKSTALL_SOUTH),
            ("local.leeds.moortown.2026-05-07", "moortown", "Division", MOORTOWN),
            ("local.leeds.weetwood.2027-03-11", "weetwood", "Division", WEETWOOD),
            *(
                ("mayor.west-yorkshire.2027-05-06", "west_yorkshire", "Organisation", piece)
                for piece in WEST_YORKSHIRE
            ),
        ]
    )
    metadata = materialization(result, "current_ballots")
    assert (metadata["ballots"], metadata["rows"], metadata["rejected_rows"]) == (7, 10, 0)
    assert metadata["skipped_without_geography"] == 1


def test_the_export_reads_only_the_columns_the_issue_lists(every_election):
    ballots_of_every_kind(every_election)
    as_baker, _ = export(every_election.url)
    only_listed = every_election.reader(BALLOTS_EXPORT_COLUMNS)
    assert export(only_listed)[0] == as_baker


@pytest.mark.parametrize(
    ("role", "granted"), [("baker", BAKER_COLUMNS), ("ballots", BALLOTS_EXPORT_COLUMNS)]
)
def test_a_read_only_role_reads_its_granted_columns_and_no_other(every_election, role, granted):
    url = every_election.url if role == "baker" else every_election.reader(granted)
    columns = every_election.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name ~ '^(elections|organisations)_'"
    )
    readable = set()
    with psycopg.connect(url, autocommit=True) as conn:
        for table, column in columns:
            try:
                conn.execute(f'SELECT "{column}" FROM "{table}" LIMIT 0')
                readable.add((table, column))
            except psycopg.errors.InsufficientPrivilege:
                pass
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE elections_election SET current = true")
    assert readable == {(table, column) for table, names in granted.items() for column in names}
    assert ("elections_election", "election_title") in set(columns) - readable


@pytest.mark.parametrize("given", ["url", "query", "PGPASSWORD"])
def test_a_wrong_password_is_never_shown(every_election, monkeypatch, given):
    wrong = "Wr0ng-s3cret"
    url = every_election.server.url(every_election.name, BAKER, None)
    if given == "url":
        url = every_election.server.url(every_election.name, BAKER, wrong)
    elif given == "query":
        url += f"?password={wrong}"
    else:
        monkeypatch.setenv("PGPASSWORD", wrong)
    with pytest.raises(EveryElectionUnavailable) as raised:
        export(url)
    shown = "".join(traceback.format_exception(raised.value))
    assert f'password authentication failed for user "{BAKER}"' in str(raised.value)
    assert every_election.name in str(raised.value)
    assert wrong not in shown and BAKER_PASSWORD not in shown


def test_a_refused_connection_is_named_without_the_password():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://{BAKER}:{BAKER_PASSWORD}@127.0.0.1:{port}/every_election"
    with pytest.raises(EveryElectionUnavailable) as raised:
        export(url)
    message = str(raised.value)
    assert message.startswith(
        f"cannot connect to EveryElection's database postgresql://{BAKER}:***@127.0.0.1:{port}/"
    )
    assert "refused" in message.lower()
    assert BAKER_PASSWORD not in "".join(traceback.format_exception(raised.value))


def test_the_password_may_come_from_pgpassword(every_election, monkeypatch):
    ballots_of_every_kind(every_election)
    monkeypatch.setenv("PGPASSWORD", BAKER_PASSWORD)
    without = every_election.server.url(every_election.name, BAKER, None)
    assert export(without) == export(every_election.url)


@pytest.mark.parametrize("where", ["PGCLIENTENCODING", "url"])
def test_exports_are_utf8_whatever_client_encoding_is_asked_for(every_election, monkeypatch, where):
    url = every_election.url
    if where == "url":
        url += "?client_encoding=LATIN1"
    else:
        monkeypatch.setenv("PGCLIENTENCODING", "LATIN1")
    out = io.BytesIO()
    with EveryElectionDatabase(url).snapshot() as snapshot:
        snapshot.copy_csv("SELECT 'Ynys Môn' AS name", None, out, header=False)
    assert out.getvalue() == "Ynys Môn\n".encode()
