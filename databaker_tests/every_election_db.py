"""EveryElection's database (EE) for tests: PostgreSQL with PostGIS on 127.0.0.1, EE's tables
(``every_election_schema.sql``), and the read-only role a deployment gives the baker.

One server per test session (``every_election_server``), started from Debian's packages by
``benchmarks.postgis`` with small settings; where they are not installed the tests that use it
are skipped, saying what to install. Each test gets a database of its own
(``every_election``), copied from a template that holds the schema and the grants.

The role ``baker`` logs in with a password (the server checks passwords for every role but the
owner) and may SELECT only the columns the three exports read, by column grants: an export that
reads any other column fails. Tests write as the owner, through ``owner()`` or the helpers that
insert EE-shaped rows.

A test module imports both fixtures::

    from databaker_tests.every_election_db import (
        every_election_fixture,  # noqa: F401
        every_election_server_fixture,  # noqa: F401
    )
"""

from __future__ import annotations

import datetime
import itertools
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from benchmarks.postgis import USER, Cluster, Installation, PostgisMissing

SKIP_REASON = "PostgreSQL with PostGIS is not installed: apt-get install postgresql-15-postgis-3"
SCHEMA = Path(__file__).with_name("every_election_schema.sql")
LOAD_BALLOTS = Path(__file__).with_name("ballots_into_every_election.sql").read_text()
TEMPLATE = "every_election_template"
OWNER = USER
BAKER = "baker"
BAKER_PASSWORD = "baker-pw-7c1e9d"

BALLOTS_EXPORT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "elections_election": (
        "election_id", "current_status", "poll_open_date", "current", "group_type",
        "division_geography_id", "organisation_geography_id",
    ),
    "organisations_divisiongeographysubdivided": ("id", "division_geography_id", "geography"),
    "organisations_organisationgeographysubdivided": (
        "id", "organisation_geography_id", "geography"
    ),
}  # fmt: skip
"""What the ballots export may read (issue 18, as the original baker's export)."""

BOUNDARY_REVIEWS_EXPORT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "organisations_organisationboundaryreview": (
        "id", "created", "modified", "organisation_id", "divisionset_id", "slug", "status",
        "latest_event", "consultation_url", "legislation_title", "effective_date",
    ),
    "organisations_organisation": (
        "id", "official_identifier", "organisation_type", "official_name", "common_name",
        "slug", "start_date", "end_date",
    ),
    "organisations_organisationgeography": (
        "id", "organisation_id", "gss", "start_date", "end_date",
    ),
    "organisations_organisationdivisionset": (
        "id", "organisation_id", "start_date", "end_date", "pmtiles_md5_hash",
    ),
    "organisations_organisationdivision": (
        "id", "divisionset_id", "name", "official_identifier", "slug", "division_type",
    ),
    "organisations_divisiongeography": ("id", "division_id", "geography"),
    "organisations_divisiongeographysubdivided": ("id", "division_geography_id", "geography"),
}  # fmt: skip
"""What the boundary-reviews export may read: the fields of its 20 columns (the review, its
organisation's names and GSS code, each divisionset's dates and PMTiles hash, each division's
names, type and area) and the keys that join them."""

ORGANISATIONS_EXPORT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "organisations_organisation": (
        "id", "organisation_type", "official_identifier", "official_name", "common_name",
        "start_date", "end_date",
    ),
    "organisations_organisationgeography": (
        "id", "organisation_id", "gss", "start_date", "end_date", "geography",
    ),
    "organisations_organisationgeographysubdivided": (
        "id", "organisation_geography_id", "geography",
    ),
    "organisations_organisationdivisionset": ("id", "organisation_id", "start_date", "end_date"),
    "organisations_organisationdivision": (
        "id", "divisionset_id", "name", "official_identifier", "slug", "division_type",
    ),
    "organisations_divisiongeography": ("id", "division_id", "geography"),
    "organisations_divisiongeographysubdivided": ("id", "division_geography_id", "geography"),
}  # fmt: skip
"""What the organisations export may read: each organisation's names, type and dates, its
geographies' dates, GSS code and shape (an area EE has not subdivided is exported whole), each
divisionset's dates, each division's names, type and area, and the keys that join them."""

EXPORT_COLUMNS = (
    BALLOTS_EXPORT_COLUMNS,
    BOUNDARY_REVIEWS_EXPORT_COLUMNS,
    ORGANISATIONS_EXPORT_COLUMNS,
)
BAKER_COLUMNS: Mapping[str, tuple[str, ...]] = {
    table: tuple(dict.fromkeys(c for columns in EXPORT_COLUMNS for c in columns.get(table, ())))
    for table in dict.fromkeys(table for columns in EXPORT_COLUMNS for table in columns)
}
"""The columns granted to ``baker``: what any export may read, and nothing else."""

SERVER_SETTINGS = {
    "shared_buffers": "32MB",
    "effective_cache_size": "128MB",
    "max_connections": "40",
    "max_wal_size": "1GB",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
"""A test server's: small memory, and durability traded for speed (its data is thrown away)."""

MULTIPOLYGON = (
    "(SELECT ST_Multi(ST_Collect(ST_GeomFromText(piece, 4326))) FROM unnest(%s::text[]) AS piece)"
)
"""A geography made of the pieces given as polygon WKT in lon/lat."""

HBA = f"""\
host all {OWNER} 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


@dataclass(frozen=True)
class EveryElectionServer:
    """The session's server, on ``127.0.0.1:port``."""

    port: int
    _names: Iterator[int] = field(default_factory=itertools.count, compare=False, repr=False)

    def url(self, database: str, user: str = BAKER, password: str | None = BAKER_PASSWORD) -> str:
        """A ``postgresql://`` URL of ``database`` as ``user`` (with its password in it)."""
        login = user if password is None else f"{user}:{password}"
        return f"postgresql://{login}@127.0.0.1:{self.port}/{database}"

    def owner(self, database: str = "postgres") -> psycopg.Connection:
        """A new autocommit connection to ``database`` as its owner (a superuser)."""
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=OWNER, dbname=database, autocommit=True
        )

    def new_database(self) -> str:
        """A new database copied from the template: EE's empty tables and the grants."""
        name = f"every_election_{next(self._names)}"
        with self.owner() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY file_copy").format(
                    sql.Identifier(name), sql.Identifier(TEMPLATE)
                )
            )
        return name

    def drop_database(self, name: str) -> None:
        with self.owner() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def create_template(self) -> None:
        with self.owner() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(BAKER), sql.Literal(BAKER_PASSWORD)
                )
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
        with self.owner(TEMPLATE) as conn:
            conn.execute(SCHEMA.read_text())
            grant_columns(conn, BAKER, BAKER_COLUMNS)


def grant_columns(
    conn: psycopg.Connection, role: str, columns: Mapping[str, Sequence[str]]
) -> None:
    """Let ``role`` SELECT exactly ``columns`` (by table) in the connected database."""
    for table, names in columns.items():
        conn.execute(
            sql.SQL("GRANT SELECT ({}) ON TABLE {} TO {}").format(
                sql.SQL(", ").join(map(sql.Identifier, names)),
                sql.Identifier(table),
                sql.Identifier(role),
            )
        )


@contextmanager
def every_election_server(
    settings: Mapping[str, str] = SERVER_SETTINGS,
) -> Iterator[EveryElectionServer]:
    """A new server with PostGIS on 127.0.0.1 and its template database, in a temporary folder
    removed afterwards; ``PostgisMissing`` where PostgreSQL or PostGIS is not installed."""
    installation = Installation.find(None)
    folder = Path(tempfile.mkdtemp(prefix="databaker-every-election-"))
    try:
        # The server runs as nobody when the tests run as root: it must reach the folder.
        folder.chmod(0o755)
        hba = folder / "pg_hba.conf"
        hba.write_text(HBA)
        hba.chmod(0o644)
        cluster = Cluster(installation, folder / "cluster")
        with cluster.running({**settings, "hba_file": str(hba)}) as server:
            started = EveryElectionServer(server.port)
            started.create_template()
            yield started
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", name="every_election_server")
def every_election_server_fixture() -> Iterator[EveryElectionServer]:
    """PostgreSQL with PostGIS on 127.0.0.1 for the session, its template database made."""
    try:
        Installation.find(None)
    except PostgisMissing:
        pytest.skip(SKIP_REASON)
    with every_election_server() as server:
        yield server


@contextmanager
def fresh_database(server: EveryElectionServer) -> Iterator[EveryElectionDb]:
    """A new EE database (the template's empty tables and grants), dropped when the block
    ends."""
    name = server.new_database()
    database = EveryElectionDb(server, name)
    try:
        yield database
    finally:
        database.close()
        server.drop_database(name)


@pytest.fixture(name="every_election")
def every_election_fixture(
    every_election_server: EveryElectionServer,
) -> Iterator[EveryElectionDb]:
    """A fresh EE database for this test, dropped after it."""
    with fresh_database(every_election_server) as database:
        yield database


@dataclass(frozen=True)
class Area:
    """An organisation's or division's geography: its id (the ballots export's
    ``division_id``) and the ids of its subdivided pieces, in the order given."""

    id: int
    piece_ids: tuple[int, ...]


@dataclass(frozen=True)
class Organisation:
    id: int
    geography: Area | None


@dataclass(frozen=True)
class Division:
    id: int
    slug: str
    geography: Area | None


@dataclass(frozen=True)
class DivisionSet:
    id: int
    divisions: dict[str, Division]
    """By slug."""


@dataclass(frozen=True)
class NewDivision:
    """A division to insert with its divisionset (see :func:`division`)."""

    slug: str
    pieces: tuple[str, ...]
    name: str
    official_identifier: str
    division_type: str


def division(
    slug: str,
    *pieces: str,
    name: str | None = None,
    official_identifier: str | None = None,
    division_type: str = "DIW",
) -> NewDivision:
    """A division whose area is ``pieces`` (polygon WKT in lon/lat), none for no geography."""
    return NewDivision(
        slug,
        pieces,
        name if name is not None else slug.replace("-", " ").title(),
        official_identifier if official_identifier is not None else f"gss:{slug}",
        division_type,
    )


class EveryElectionDb:
    """One test's EE database: ``url`` reads it as ``baker``; the rest writes as its owner."""

    def __init__(self, server: EveryElectionServer, name: str) -> None:
        self.server = server
        self.name = name
        self.url = server.url(name)
        self._conn: psycopg.Connection | None = None
        self._readers = itertools.count()

    def owner(self) -> psycopg.Connection:
        """A new autocommit connection as the owner (close it, e.g. ``with db.owner() as c``)."""
        return self.server.owner(self.name)

    def execute(self, query: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[tuple]:
        """Run one statement as the owner; its rows, if it returns any."""
        if self._conn is None:
            self._conn = self.owner()
        cursor = self._conn.execute(query, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def load_ballots_export(self, export: Path, poll_open_date: datetime.date) -> None:
        """Put a ballots export's ballots and areas into EE's tables, as EE would hold them
        (``ballots_into_every_election.sql``), every ballot Approved on ``poll_open_date``: the
        export taken from EE then names the same ballots with the same pieces."""
        with self.owner() as conn, conn.transaction(), export.open("rb") as rows:
            conn.execute(
                "CREATE TEMP TABLE export_rows (election_id text, division_id text,"
                " geometry text, source_table text) ON COMMIT DROP"
            )
            with conn.cursor().copy(
                "COPY export_rows FROM STDIN (FORMAT csv, HEADER true)"
            ) as copy:
                while block := rows.read(1 << 20):
                    copy.write(block)
            psycopg.ClientCursor(conn).execute(LOAD_BALLOTS, {"poll_open_date": poll_open_date})
            conn.execute("DROP TABLE area_pieces")

    def add_ballot_in_division(
        self, election_id: str, division: str, poll_open_date: datetime.date
    ) -> None:
        """An Approved ballot (a by-election, say) in the area of the division whose official
        identifier is ``division``."""
        self.execute(
            "INSERT INTO elections_election (election_id, election_type_id, poll_open_date,"
            " current_status, division_geography_id)"
            " SELECT %s, 1, %s, 'Approved', g.id FROM organisations_divisiongeography AS g"
            " JOIN organisations_organisationdivision AS d ON d.id = g.division_id"
            " WHERE d.official_identifier = %s",
            (election_id, poll_open_date, division),
        )

    def reader(self, columns: Mapping[str, Sequence[str]]) -> str:
        """The URL of a new role that may SELECT only ``columns`` (by table) here."""
        role = f"{self.name}_reader_{next(self._readers)}"
        password = f"{role}-pw"
        with self.owner() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
            grant_columns(conn, role, columns)
        return self.server.url(self.name, role, password)

    def organisation(
        self,
        official_identifier: str,
        *pieces: str,
        slug: str = "",
        official_name: str = "",
        common_name: str = "",
        organisation_type: str = "local-authority",
        start_date: datetime.date = datetime.date(2000, 1, 1),
        end_date: datetime.date | None = None,
        gss: str = "",
    ) -> Organisation:
        """An organisation; with ``pieces`` (polygon WKT in lon/lat), its geography made of
        them and subdivided into exactly them."""
        ((organisation_id,),) = self.execute(
            "INSERT INTO organisations_organisation (official_identifier, organisation_type,"
            " official_name, common_name, slug, start_date, end_date)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (official_identifier, organisation_type, official_name, common_name,
             slug or official_identifier.lower(), start_date, end_date),
        )  # fmt: skip
        if not pieces:
            return Organisation(organisation_id, None)
        ((geography_id,),) = self.execute(
            "INSERT INTO organisations_organisationgeography (organisation_id, gss, geography,"
            f" start_date, end_date) VALUES (%s, %s, {MULTIPOLYGON}, %s, %s) RETURNING id",
            (organisation_id, gss, list(pieces), start_date, end_date),
        )
        return Organisation(
            organisation_id,
            Area(geography_id, self._pieces("organisation", geography_id, pieces)),
        )

    def divisionset(
        self,
        organisation: Organisation,
        *divisions: NewDivision,
        start_date: datetime.date = datetime.date(2000, 1, 1),
        end_date: datetime.date | None = None,
        pmtiles_md5_hash: str = "",
        short_title: str = "",
    ) -> DivisionSet:
        """A divisionset of ``organisation`` with its divisions, each with its geography and
        pieces (when it has pieces)."""
        ((divisionset_id,),) = self.execute(
            "INSERT INTO organisations_organisationdivisionset (organisation_id, start_date,"
            " end_date, pmtiles_md5_hash, short_title) VALUES (%s, %s, %s, %s, %s)"
            " RETURNING id",
            (organisation.id, start_date, end_date, pmtiles_md5_hash, short_title),
        )
        made = {}
        for new in divisions:
            ((division_id,),) = self.execute(
                "INSERT INTO organisations_organisationdivision (divisionset_id, name,"
                " official_identifier, slug, division_type) VALUES (%s, %s, %s, %s, %s)"
                " RETURNING id",
                (divisionset_id, new.name, new.official_identifier, new.slug,
                 new.division_type),
            )  # fmt: skip
            area = None
            if new.pieces:
                ((geography_id,),) = self.execute(
                    "INSERT INTO organisations_divisiongeography (division_id, geography)"
                    f" VALUES (%s, {MULTIPOLYGON}) RETURNING id",
                    (division_id, list(new.pieces)),
                )
                area = Area(geography_id, self._pieces("division", geography_id, new.pieces))
            made[new.slug] = Division(division_id, new.slug, area)
        return DivisionSet(divisionset_id, made)

    def election(
        self,
        election_id: str,
        poll_open_date: datetime.date | None,
        *,
        current_status: str = "Approved",
        current: bool | None = None,
        group_type: str | None = None,
        division: Division | None = None,
        organisation: Organisation | None = None,
        election_title: str = "",
        cancelled: bool = False,
    ) -> int:
        """A ballot (or group, with ``group_type``) of ``division``'s or ``organisation``'s
        area: its division or organisation geography is theirs; give neither for none."""
        ((election,),) = self.execute(
            "INSERT INTO elections_election (election_id, election_title, election_type_id,"
            " poll_open_date, current_status, current, group_type, division_id,"
            " division_geography_id, organisation_id, organisation_geography_id, cancelled)"
            " VALUES (%s, %s, 1, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                election_id, election_title, poll_open_date, current_status, current,
                group_type,
                division and division.id, division and division.geography and division.geography.id,
                organisation and organisation.id,
                organisation and organisation.geography and organisation.geography.id,
                cancelled,
            ),
        )  # fmt: skip
        return election

    def boundary_review(
        self,
        organisation: Organisation,
        slug: str,
        *,
        status: str = "CURRENT",
        divisionset: DivisionSet | None = None,
        legislation_title: str = "",
        consultation_url: str = "",
        latest_event: str = "",
        effective_date: datetime.date | None = None,
        boundaries_url: str = "",
    ) -> int:
        """A boundary review of ``organisation``; ``divisionset`` is its new one, if made."""
        ((review,),) = self.execute(
            "INSERT INTO organisations_organisationboundaryreview (organisation_id,"
            " divisionset_id, slug, status, legislation_title, consultation_url, latest_event,"
            " effective_date, boundaries_url) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            (organisation.id, divisionset and divisionset.id, slug, status, legislation_title,
             consultation_url, latest_event, effective_date, boundaries_url),
        )  # fmt: skip
        return review

    def _pieces(self, kind: str, geography_id: int, pieces: Sequence[str]) -> tuple[int, ...]:
        table = f"organisations_{kind}geographysubdivided"
        return tuple(
            self.execute(
                f"INSERT INTO {table} ({kind}_geography_id, geography)"
                " VALUES (%s, ST_GeomFromText(%s, 4326)) RETURNING id",
                (geography_id, piece),
            )[0][0]
            for piece in pieces
        )
