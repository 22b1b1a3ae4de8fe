"""AWS access shared by the S3 store, the engines and the input readers.

Credentials always come from the standard AWS chain (environment, shared config, instance or
task role); endpoints and region from the standard variables (``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL``, ``AWS_REGION``) unless a resource overrides them. Nothing here logs or
returns a secret except :func:`frozen_credentials`, whose callers hand it straight to a client.

Making the first boto3 client costs about half a second (dagster-aws's imports and the
service's model), and a bake opens S3 objects thousands of times, so sessions, clients and
pyarrow filesystems are made once per process and per configuration (the AWS variables of the
environment included), and shared: boto3 clients and pyarrow filesystems are safe to use from
several threads. A store that keeps more requests in flight than one client's connections
borrows them from a few clients (:class:`S3Clients`). Credentials are still resolved on each
use, so rotating ones (an instance or task role) are refreshed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import pyarrow.fs as pafs
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import BotoCoreError, ClientError

S3_SCHEME = "s3://"

_ATTEMPTS = 5
"""How often every client tries a request, with AWS's standard retries between tries."""
_RETRIES = Config(retries={"mode": "standard", "max_attempts": _ATTEMPTS})
_SETTINGS = (
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
)  # fmt: skip
"""The environment that decides where a client points and how it signs."""
_made: dict[tuple, Any] = {}
_making = threading.RLock()


class AwsSettingError(Exception):
    """A required AWS setting is missing or malformed; the message says which and how to set it."""


def is_s3_url(location: str) -> bool:
    return location.startswith(S3_SCHEME)


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key (or key prefix) parsed from ``s3://bucket/key``."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        if not is_s3_url(url):
            raise AwsSettingError(f"{url!r} is not an s3:// URL")
        parts = urlsplit(url)
        if not parts.netloc or parts.query or parts.fragment:
            raise AwsSettingError(f"{url!r} is not of the form s3://bucket/prefix")
        return cls(parts.netloc, parts.path.lstrip("/"))

    def url(self, key: str | None = None) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key if key is None else key}"


def _shared(kind: str, *arguments: object, make: Any) -> Any:
    """The object ``make()`` returns, made once per process for these arguments and this
    AWS environment."""
    key = (kind, arguments, tuple(os.environ.get(name) for name in _SETTINGS))
    with _making:
        if key not in _made:
            _made[key] = make()
        return _made[key]


def aws_session(region_name: str | None = None) -> boto3.session.Session:
    """A boto3 session on the standard chain; ``AWS_REGION`` is honoured as other SDKs do.

    Shared: use it only to make clients through this module, or to read credentials."""

    def make() -> boto3.session.Session:
        session = boto3.session.Session(region_name=region_name)
        if session.region_name is None and os.environ.get("AWS_REGION"):
            session = boto3.session.Session(region_name=os.environ["AWS_REGION"])
        return session

    return _shared("session", region_name, make=make)


CLIENT_CONNECTIONS = 10
"""Connections one boto3 client holds: botocore's connection pool, which dagster-aws's
resource leaves at its default and takes no setting for."""

ARROW_S3_CONNECTIONS = 25
"""Connections one pyarrow S3 filesystem holds: the AWS C++ SDK's connection pool, whose
default size pyarrow keeps and takes no setting for (SeaweedFS saw 25 connections from 32 and
from 64 threads copying through one filesystem at once)."""

S3_REQUESTS_AT_ONCE = 50
"""Requests a store keeps in flight by default, each waiting a round trip to S3. With every
answer 50 ms late (SeaweedFS behind a delaying proxy, ``benchmarks/s3_requests.py``), 50 in
flight made 700 to 730 copies a second where 25 made 430 to 440, 560 to 580 PUTs where 25 made
400; at 100, PUTs and GETs gained a tenth or nothing on two cores, the interpreter's share of
each request limiting them. S3 takes 3,500 PUTs or copies a second under one prefix: 50 in flight
stay under it while a request waits 15 ms or more."""

MOST_S3_REQUESTS_AT_ONCE = 200
"""The most requests a store may be set to keep in flight: past it the client's CPU, not the
wait, limits a bulk step."""


def s3_client(region_name: str | None = None, endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client made by dagster-aws's ``S3Resource`` (standard retries, 5 attempts);
    with no overrides it applies the standard AWS environment, ``AWS_REGION`` included. It is
    the first client :func:`s3_clients` lends."""
    return _shared(
        "s3", region_name, endpoint_url, make=lambda: _new_s3_client(region_name, endpoint_url)
    )


def _new_s3_client(region_name: str | None, endpoint_url: str | None) -> Any:
    # Imported here: dagster-aws brings 0.5 s of imports that only S3 work needs.
    from dagster_aws.s3 import S3Resource

    region = region_name or aws_session().region_name
    client = S3Resource(
        region_name=region, endpoint_url=endpoint_url, max_attempts=_ATTEMPTS
    ).get_client()
    client.meta.events.register("before-send.s3.PutObject", _continue_only_when_large)
    return client


class S3Clients:
    """S3 clients (boto3's, or pyarrow's filesystems) lent a request at a time, so that none is
    asked for more connections than its pool holds (``connections``). A boto3 request beyond
    its pool would open a connection of its own, a new TCP and TLS handshake, and drop it
    after with a warning; a pyarrow request would wait for one of its pool's.

    S3 itself answers a small request in tens of milliseconds, so a store keeps more requests
    in flight than one pool holds: when every connection of the clients made is lent, another
    client is made (``make(n)`` makes the n-th, from 0), up to ``most``; beyond them a request
    waits for a connection to come back. A process that makes one request at a time makes one
    client.
    """

    def __init__(
        self, make: Callable[[int], Any], most: int, connections: int = CLIENT_CONNECTIONS
    ) -> None:
        self._make, self._most, self._connections = make, most, connections
        self._clients: list[Any] = []
        self._free: list[Any] = []
        """A client for each connection not lent, the most recently returned last."""
        self._returned = threading.Condition()

    @property
    def made(self) -> int:
        """How many clients have been made so far."""
        return len(self._clients)

    @contextmanager
    def lent(self) -> Iterator[Any]:
        """A client with a connection free for one request."""
        with self._returned:
            while not self._free:
                if len(self._clients) < self._most:
                    client = self._make(len(self._clients))
                    self._clients.append(client)
                    self._free += [client] * self._connections
                else:
                    self._returned.wait()
            client = self._free.pop()
        try:
            yield client
        finally:
            with self._returned:
                self._free.append(client)
                self._returned.notify()


def s3_clients(region_name: str | None = None, endpoint_url: str | None = None) -> S3Clients:
    """The boto3 clients for up to :data:`MOST_S3_REQUESTS_AT_ONCE` requests with these
    settings, shared by every thread of the process; the first is :func:`s3_client`'s."""

    def make() -> S3Clients:
        return S3Clients(
            lambda n: (_new_s3_client if n else s3_client)(region_name, endpoint_url),
            most=-(-MOST_S3_REQUESTS_AT_ONCE // CLIENT_CONNECTIONS),
        )

    return _shared("s3-clients", region_name, endpoint_url, make=make)


CONTINUE_THRESHOLD = 2 * 1024 * 1024
"""The smallest body a PUT asks the server's leave to send (``Expect: 100-continue``)."""


def _continue_only_when_large(request: Any, **_: Any) -> None:
    """Drop the ``Expect: 100-continue`` botocore puts on every PutObject, when the body is
    under :data:`CONTINUE_THRESHOLD`, as AWS's Go and Kotlin SDKs do by default.

    Waiting for the server's ``100 Continue`` is a round trip per object, and it saves nothing
    when the body is smaller than what a refusal would waste. A layer's outcode files, records
    and manifests are a few kilobytes: without it, SeaweedFS on loopback took 740 PUTs a second
    from ten threads against 610, and the client's CPU fell by a fifth. The header is not
    signed (SigV4 leaves ``Expect`` out), so dropping it here, after signing, is safe."""
    length = request.headers.get("Content-Length")
    if length is not None and int(length) < CONTINUE_THRESHOLD:
        request.headers.pop("Expect", None)


def sqs_client(region_name: str | None = None) -> Any:
    """A boto3 SQS client (for EE's change events), on the standard AWS environment
    (``AWS_ENDPOINT_URL_SQS`` or ``AWS_ENDPOINT_URL`` to point it elsewhere)."""

    def make() -> Any:
        return aws_session(region_name).client("sqs", config=_RETRIES)

    return _shared("sqs", region_name, make=make)


def s3_objects(client: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """Every object whose key starts with ``prefix``, page after page (``Key``, ``Size``...)."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        yield from page.get("Contents", [])


def aws_reason(error: ClientError | BotoCoreError) -> str:
    """AWS's own code and message for an error (boto's errors never carry the credentials)."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'UnknownError')}: {details.get('Message', '')}"
    return str(error)


def frozen_credentials(region_name: str | None = None) -> ReadOnlyCredentials:
    """The credentials the standard chain resolves to now, for clients that are not boto3."""
    credentials = aws_session(region_name).get_credentials()
    if credentials is None:
        raise AwsSettingError(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE, or run with an instance or task role"
        )
    return credentials.get_frozen_credentials()


def arrow_s3_filesystem(
    region_name: str | None = None, endpoint_url: str | None = None
) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem, pointed where a boto3 client with these settings points,
    signed with the same credentials (the standard AWS chain) and retrying as it does (AWS's
    standard retries, 5 attempts). It is the first :func:`arrow_s3_filesystems` lends.

    Its streams open on their first read or write (``allow_delayed_open``): a file written
    whole in one part goes up as one PutObject, where pyarrow would otherwise start a
    multipart upload when the stream opens and complete it when it closes, three requests in
    turn, each waiting a round trip to S3. A stream that cannot be written fails on its
    write or its close instead of its opening."""
    credentials = frozen_credentials(region_name)
    return _shared(
        "arrow",
        region_name,
        endpoint_url,
        tuple(credentials),
        make=lambda: _new_arrow_s3_filesystem(region_name, endpoint_url, credentials),
    )


def arrow_s3_filesystems(
    region_name: str | None = None, endpoint_url: str | None = None
) -> S3Clients:
    """pyarrow S3 filesystems for up to :data:`MOST_S3_REQUESTS_AT_ONCE` requests with these
    settings, :data:`ARROW_S3_CONNECTIONS` each, shared by every thread of the process: a
    store's copies, which pyarrow makes with a third of boto3's CPU. The first is
    :func:`arrow_s3_filesystem`'s."""
    credentials = frozen_credentials(region_name)

    def make() -> S3Clients:
        def nth(n: int) -> pafs.S3FileSystem:
            if n == 0:
                return arrow_s3_filesystem(region_name, endpoint_url)
            return _new_arrow_s3_filesystem(region_name, endpoint_url, credentials)

        most = -(-MOST_S3_REQUESTS_AT_ONCE // ARROW_S3_CONNECTIONS)
        return S3Clients(nth, most=most, connections=ARROW_S3_CONNECTIONS)

    return _shared("arrows", region_name, endpoint_url, tuple(credentials), make=make)


def _new_arrow_s3_filesystem(
    region_name: str | None, endpoint_url: str | None, credentials: ReadOnlyCredentials
) -> pafs.S3FileSystem:
    client = s3_client(region_name, endpoint_url)
    return pafs.S3FileSystem(
        access_key=credentials.access_key,
        secret_key=credentials.secret_key,
        session_token=credentials.token,
        region=client.meta.region_name,
        endpoint_override=client.meta.endpoint_url,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=_ATTEMPTS),
        allow_delayed_open=True,
    )
