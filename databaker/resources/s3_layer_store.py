"""The production layer store: objects under an ``s3://bucket/prefix`` root."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from databaker.resources.aws import (
    MOST_S3_REQUESTS_AT_ONCE,
    S3_REQUESTS_AT_ONCE,
    S3Clients,
    S3Location,
    arrow_s3_filesystem,
    arrow_s3_filesystems,
    aws_reason,
    s3_clients,
)
from databaker.resources.layer_store import LayerStore, LayerStoreError, as_prefix, check_key
from databaker.resources.lease import LEASE_PREFIX, Lease, LeaseHolder
from databaker.resources.s3_lease import S3Lease

_DELETE_BATCH = 1000
S3_LEASE_SECONDS = 120.0


class S3LayerStore(LayerStore):
    """Objects are S3 objects under ``root``; a PUT is whole, so every write is atomic.

    Any S3-compatible server works: the endpoint and region come from the standard AWS
    environment unless set here, and credentials always come from the standard AWS chain.
    """

    root: str = Field(description="s3://bucket/prefix under which the layers are kept.")
    region_name: str | None = Field(
        default=None, description="AWS region; default: the standard AWS chain (AWS_REGION)."
    )
    endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint; default: AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS.",
    )

    lease_seconds: float = Field(
        default=S3_LEASE_SECONDS,
        gt=0,
        description="How long the data root's lease lives unless renewed (every third of it): "
        "how soon a killed bake's lease is taken over.",
    )

    requests_at_once: int = Field(
        default=S3_REQUESTS_AT_ONCE,
        ge=1,
        le=MOST_S3_REQUESTS_AT_ONCE,
        description="Requests kept in flight when writing, reading or copying many objects "
        "(a bake's outcode files, a publish, a rollback). Each waits a round trip to S3, so "
        "thousands of them take about their number times that wait over this. Past about 50, "
        "PUTs and GETs gain little on two cores (each costs the client 1.2 to 1.5 ms of CPU), "
        "and S3 slows a prefix down past 3,500 writes a second.",
    )

    def new_lease(self, holder: LeaseHolder) -> Lease:
        key = self._key(LEASE_PREFIX + "bake.json")
        clients = s3_clients(self.region_name, self.endpoint_url)
        return S3Lease(clients, self._location.bucket, key, self.root, holder, self.lease_seconds)

    def uri(self, key: str) -> str:
        return self._location.url(self._key(key, prefix=key.endswith("/")))

    def uri_for_writing(self, key: str) -> str:
        return self.uri(key)

    def list_keys(self, prefix: str) -> list[str]:
        """Listed by pyarrow's S3 client, which parses a page of keys in C++: a layer's 5,749
        keys in 0.1 s on SeaweedFS on loopback, where boto3's paginator takes 0.4 to 0.5 s."""
        bucket = self._location.bucket
        base = self._key(as_prefix(prefix), prefix=True)
        selector = pafs.FileSelector(f"{bucket}/{base}", recursive=True, allow_not_found=True)
        try:
            found = self._arrow.get_file_info(selector)
        except (OSError, pa.ArrowException) as error:
            raise LayerStoreError(f"{self.root}: listing {prefix!r} failed: {error}") from error
        start = len(bucket) + 1 + len(self._root_key)
        return sorted(info.path[start:] for info in found if info.type == pafs.FileType.File)

    def list_folders(self, prefix: str) -> list[str]:
        base = self._key(as_prefix(prefix), prefix=True)
        with self._request(f"listing the folders of {prefix!r}") as s3:
            pages = s3.get_paginator("list_objects_v2").paginate(
                Bucket=self._location.bucket, Prefix=base, Delimiter="/"
            )
            names = [
                common["Prefix"][len(base) :].rstrip("/")
                for page in pages
                for common in page.get("CommonPrefixes", [])
            ]
        return sorted(names)

    def exists(self, key: str) -> bool:
        with self._request(f"looking for {key!r}") as s3:
            try:
                s3.head_object(Bucket=self._location.bucket, Key=self._key(key))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                    return False
                raise
        return True

    def read_bytes(self, key: str) -> bytes:
        """One GET by boto3. pyarrow's client would cost less CPU, but it asks for the object's
        size first: two requests an object, which on S3 itself, where a request waits tens of
        milliseconds, would double the wait of reading a version's files."""
        with self._request(f"reading {key!r}") as s3:
            try:
                response = s3.get_object(Bucket=self._location.bucket, Key=self._key(key))
            except s3.exceptions.NoSuchKey:
                raise LayerStoreError(f"{key!r} does not exist in {self.root}") from None
            return response["Body"].read()

    def open_input(self, key: str) -> pa.NativeFile:
        path = f"{self._location.bucket}/{self._key(key)}"
        try:
            return self._arrow.open_input_file(path)
        except (OSError, pa.ArrowException) as error:
            raise LayerStoreError(f"{self.uri(key)}: {error}") from error

    def _open_output(self, key: str) -> pa.NativeFile:
        """A multipart upload: the object appears, whole, when the stream is closed."""
        path = f"{self._location.bucket}/{self._key(key)}"
        try:
            return self._arrow.open_output_stream(path)
        except (OSError, pa.ArrowException) as error:
            raise LayerStoreError(f"{self.uri(key)}: {error}") from error

    def _write_bytes(self, key: str, data: bytes) -> None:
        with self._request(f"writing {key!r}") as s3:
            s3.put_object(Bucket=self._location.bucket, Key=self._key(key), Body=data)

    def _delete(self, keys: Iterable[str]) -> None:
        objects = [{"Key": self._key(key)} for key in keys]
        for start in range(0, len(objects), _DELETE_BATCH):
            batch = objects[start : start + _DELETE_BATCH]
            with self._request("deleting objects") as s3:
                response = s3.delete_objects(
                    Bucket=self._location.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if response.get("Errors"):
                failed = ", ".join(
                    f"{e['Key']} ({e.get('Code')}: {e.get('Message')})" for e in response["Errors"]
                )
                raise LayerStoreError(f"could not delete from {self.root}: {failed}")

    def _move(self, source: str, target: str) -> None:
        self._copy(source, target)
        with self._request(f"moving {source!r} to {target!r}") as s3:
            s3.delete_object(Bucket=self._location.bucket, Key=self._key(source))

    def _copy(self, source: str, target: str) -> None:
        """One server-side CopyObject, sent by pyarrow's S3 client: on SeaweedFS on loopback it
        makes 1,250 copies a second where boto3 makes 700, with a third of the client's CPU.
        A filesystem holds 25 connections, so copies beyond them are lent more filesystems.
        What pyarrow refuses is tried again with boto3, whose managed, multipart copy takes an
        object too large for one CopyObject (over 5 GB), and whose error names AWS's code."""
        bucket = self._location.bucket
        with self._arrows.lent() as arrow:
            try:
                arrow.copy_file(f"{bucket}/{self._key(source)}", f"{bucket}/{self._key(target)}")
                return
            except (OSError, pa.ArrowException):
                pass
        origin = {"Bucket": bucket, "Key": self._key(source)}
        with self._request(f"copying {source!r} to {target!r}") as s3:
            try:
                s3.copy_object(CopySource=origin, Bucket=bucket, Key=self._key(target))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "InvalidRequest":
                    raise
                s3.copy(origin, bucket, self._key(target))

    def move_all(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Every copy first, then the sources deleted a thousand a request: a move on S3 is a
        copy and a delete anyway."""
        self.copy_all(pairs)
        self.delete([source for source, _ in pairs])

    def in_flight(self) -> int:
        return self.requests_at_once

    @property
    def _location(self) -> S3Location:
        location = S3Location.parse(self.root)
        if not location.bucket:
            raise LayerStoreError(f"the data root {self.root!r} names no bucket")
        return location

    @property
    def _root_key(self) -> str:
        """The root's key prefix, ending in ``/`` (empty for a bucket's top level)."""
        base = self._location.key
        return base if not base or base.endswith("/") else base + "/"

    def _key(self, key: str, *, prefix: bool = False) -> str:
        return self._root_key + check_key(key, prefix=prefix)

    @property
    def _arrow(self) -> pafs.S3FileSystem:
        return arrow_s3_filesystem(self.region_name, self.endpoint_url)

    @property
    def _arrows(self) -> S3Clients:
        """pyarrow's filesystems, lent a request at a time (for copies)."""
        return arrow_s3_filesystems(self.region_name, self.endpoint_url)

    @contextmanager
    def _request(self, doing: str) -> Iterator[Any]:
        """A boto3 client for one request (or listing) to S3, with a connection of its pool
        held while it lasts (:class:`~databaker.resources.aws.S3Clients`); boto errors become
        ``LayerStoreError`` naming the operation, never the credentials."""
        with s3_clients(self.region_name, self.endpoint_url).lent() as s3:
            try:
                yield s3
            except (ClientError, BotoCoreError) as error:
                message = f"{self.root}: {doing} failed: {aws_reason(error)}"
                raise LayerStoreError(message) from error
