"""EveryElection's PostgreSQL database (EE), read-only, as a source of the layers' inputs.

A deployment names it by a libpq URL, ``postgresql://user@host:port/every_election``, in
place of an input file. The password comes from where libpq looks for it (``PGPASSWORD``, a
pgpass file, or the URL itself); it is never logged, never put in metadata or an error: what
this module shows of a URL is :func:`redacted`.

Reads happen in one transaction, ``REPEATABLE READ, READ ONLY``: every statement of an export
sees the same snapshot, even while EE keeps writing. Rows leave the server by ``COPY ... TO
STDOUT`` and go to their file block by block, so no export holds its geometries in Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, BinaryIO

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

SCHEMES = ("postgresql://", "postgres://")
APPLICATION_NAME = "databaker"
CONNECT_TIMEOUT_SECONDS = 10


def is_every_election_url(location: str | None) -> bool:
    """Whether an input location names a PostgreSQL database (EE's) rather than a file."""
    return bool(location) and location.lower().startswith(SCHEMES)


def redacted(url: str) -> str:
    """The URL with any password replaced by ``***``: the only form of it ever shown."""
    url = re.sub(r"(?<=://)([^/@:]*):[^/@]*@", r"\1:***@", url)
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", url)


class EveryElectionUnavailable(Exception):
    """EE's database could not be reached or refused the export; the message never holds the
    password."""


class EveryElectionDatabase:
    """A read-only view of EE's database at one URL."""

    def __init__(self, url: str) -> None:
        if not is_every_election_url(url):
            raise ValueError(f"{redacted(url)} is not a postgresql:// URL")
        self.url = url

    def __repr__(self) -> str:
        return f"EveryElectionDatabase({redacted(self.url)!r})"

    @property
    def shown(self) -> str:
        return redacted(self.url)

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """One read-only transaction that sees a single consistent state of the database."""
        try:
            conninfo = conninfo_to_dict(self.url)
        except psycopg.ProgrammingError:
            raise EveryElectionUnavailable(f"{self.shown} is not a valid PostgreSQL URL") from None
        conninfo.setdefault("application_name", APPLICATION_NAME)
        conninfo.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        # The exports are UTF-8 files, whatever the URL or PGCLIENTENCODING ask for.
        conninfo["client_encoding"] = "UTF8"
        try:
            connection = psycopg.connect(**conninfo, autocommit=True)
        except psycopg.OperationalError as error:
            raise EveryElectionUnavailable(
                f"cannot connect to EveryElection's database {self.shown}: "
                f"{_reason(error, self.url)}"
            ) from None
        with connection:
            try:
                connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield Snapshot(connection, self.shown)
            except psycopg.Error as error:
                raise EveryElectionUnavailable(
                    f"EveryElection's database {self.shown}: {_reason(error, self.url)}"
                ) from None
            finally:
                if not connection.closed:
                    connection.execute("ROLLBACK")


class Snapshot:
    """Queries and CSV exports within one read-only transaction (see
    :meth:`EveryElectionDatabase.snapshot`)."""

    def __init__(self, connection: psycopg.Connection, shown: str) -> None:
        self.connection = connection
        self.shown = shown

    def rows(self, query: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """The rows of a small query (lists of IDs, counts): not for geometries."""
        return self.connection.execute(_statement(query, params)).fetchall()

    def copy_csv(
        self, query: str, params: Mapping[str, Any] | None, out: BinaryIO, *, header: bool
    ) -> int:
        """Write the rows of ``query`` to ``out`` as RFC 4180 CSV (LF line ends, ``"``
        quoting, NULL as an empty field), block by block as the server sends them; return the
        bytes written."""
        statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER {})").format(
            _statement(query, params), sql.SQL("true" if header else "false")
        )
        written = 0
        with self.connection.cursor() as cursor, cursor.copy(statement) as copy:
            for block in copy:
                out.write(block)
                written += len(block)
        return written


def _statement(query: str, params: Mapping[str, Any] | None) -> sql.Composed:
    """``query`` with each ``{name}`` replaced by ``params[name]`` as an SQL literal."""
    return sql.SQL(query).format(**{k: sql.Literal(v) for k, v in (params or {}).items()})


def _reason(error: psycopg.Error, url: str) -> str:
    """The server's or libpq's message, first line, with any password in it hidden."""
    message = (str(error).strip().splitlines() or [type(error).__name__])[0]
    password = conninfo_password(url)
    return message.replace(password, "***") if password else message


def conninfo_password(url: str) -> str | None:
    try:
        return conninfo_to_dict(url).get("password")
    except psycopg.ProgrammingError:
        return None
