"""What only the S3 layer store does: s3:// URIs, a bucket in the root, errors without secrets."""

import logging
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
from pydantic import ValidationError

from databaker.resources import LayerStoreError, S3LayerStore, aws
from databaker.resources.aws import (
    ARROW_S3_CONNECTIONS,
    CLIENT_CONNECTIONS,
    CONTINUE_THRESHOLD,
    MOST_S3_REQUESTS_AT_ONCE,
    S3_REQUESTS_AT_ONCE,
    S3Clients,
    s3_client,
    s3_clients,
)
from databaker_tests.s3_server import SECRET_KEY


def test_uris_are_s3_urls_under_the_root_prefix():
    store = S3LayerStore(root="s3://bucket/deployments/2027")
    assert store.uri("layer/A1.parquet") == "s3://bucket/deployments/2027/layer/A1.parquet"
    assert S3LayerStore(root="s3://bucket").uri("layer/") == "s3://bucket/layer/"


@pytest.mark.parametrize("root", ["bucket/prefix", "s3:///prefix", "https://bucket/prefix"])
def test_a_root_that_is_not_an_s3_url_with_a_bucket_is_refused(root):
    with pytest.raises(Exception, match="s3://"):
        S3LayerStore(root=root).uri("a")


def test_a_missing_bucket_is_named_and_the_secret_is_not(s3_env):
    store = S3LayerStore(root="s3://no-such-bucket-here/data")
    with pytest.raises(LayerStoreError) as raised:
        store.write_bytes("layer/A1.parquet", b"a")
    assert "s3://no-such-bucket-here/data: writing 'layer/A1.parquet' failed" in str(raised.value)
    assert re.search(r"failed: \w+: ", str(raised.value))
    assert SECRET_KEY not in str(raised.value)


def test_listing_pages_through_more_than_a_thousand_objects(s3_env):
    store = S3LayerStore(root=f"s3://{s3_env.new_bucket()}/data")
    client = s3_env.client()
    bucket = store.root.split("/")[2]
    for number in range(1005):
        client.put_object(Bucket=bucket, Key=f"data/layer/{number:04d}.parquet", Body=b"")
    keys = store.list_keys("layer/")
    assert len(keys) == 1005 and keys[0] == "layer/0000.parquet"
    store.delete(keys)
    assert store.list_keys("layer/") == []


def test_the_server_checks_credentials_and_errors_never_show_them(s3_env, monkeypatch):
    bucket = s3_env.new_bucket()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "a-wrong-secret-key")
    store = S3LayerStore(root=f"s3://{bucket}/data")
    with pytest.raises(LayerStoreError) as raised:
        store.write_bytes("layer/A1.parquet", b"a")
    assert "SignatureDoesNotMatch" in str(raised.value) or "AccessDenied" in str(raised.value)
    assert "a-wrong-secret-key" not in str(raised.value)


def test_reads_and_copies_refused_for_credentials_say_so_and_never_show_them(s3_env, monkeypatch):
    """Copies go through pyarrow's client and reads through boto3's: either way, a refusal
    is not a missing object."""
    bucket = s3_env.new_bucket()
    s3_env.client().put_object(Bucket=bucket, Key="data/layer/A1.parquet", Body=b"a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "a-wrong-secret-key")
    store = S3LayerStore(root=f"s3://{bucket}/data")
    refusals = []
    for attempt in (
        lambda: store.read_bytes("layer/A1.parquet"),
        lambda: store.copy("layer/A1.parquet", "layer/B1.parquet"),
    ):
        with pytest.raises(LayerStoreError) as raised:
            attempt()
        refusals.append(str(raised.value))
    assert "does not exist" not in refusals[0]
    assert all("a-wrong-secret-key" not in message for message in refusals)
    assert all(re.search(r"SignatureDoesNotMatch|AccessDenied", message) for message in refusals)


class _RefusingCopies:
    """pyarrow's S3 filesystem as it answers a copy it cannot make (an object over 5 GB)."""

    def copy_file(self, source: str, target: str) -> None:
        raise OSError(f"When copying {source} to {target}: AWS Error INVALID_REQUEST")


def test_a_copy_pyarrow_refuses_is_made_by_boto3(s3_env, monkeypatch):
    store = S3LayerStore(root=f"s3://{s3_env.new_bucket()}/data")
    store.write_bytes("versions/b1/A1.parquet", b"a1")
    with monkeypatch.context() as refusing:
        refusing.setattr(
            S3LayerStore,
            "_arrows",
            property(lambda self: S3Clients(lambda n: _RefusingCopies(), 1)),
        )
        store.copy("versions/b1/A1.parquet", "layer/A1.parquet")
        with pytest.raises(LayerStoreError, match=r"copying 'versions/b1/none' .* NoSuchKey"):
            store.copy("versions/b1/none", "layer/none")
    assert store.read_bytes("layer/A1.parquet") == b"a1"


def test_only_large_puts_wait_for_the_servers_leave_to_send(s3_env):
    """Small objects go at once; from 2 MiB the client still asks first (Expect: 100-continue)."""
    client = s3_client()
    bucket = s3_env.new_bucket()
    asked = []

    def note(request, **_):
        asked.append(request.headers.get("Expect"))

    client.meta.events.register("before-send.s3.PutObject", note)
    try:
        client.put_object(Bucket=bucket, Key="small", Body=b"x" * 20_000)
        client.put_object(Bucket=bucket, Key="large", Body=b"x" * CONTINUE_THRESHOLD)
    finally:
        client.meta.events.unregister("before-send.s3.PutObject", note)
    assert asked == [None, b"100-continue"]
    assert client.head_object(Bucket=bucket, Key="large")["ContentLength"] == CONTINUE_THRESHOLD


def test_each_object_written_read_or_copied_is_one_request(s3_env):
    """On S3 itself a request waits tens of milliseconds, and a layer is thousands of small
    objects: each is written, read and copied with one request, not asked for its size
    first."""
    bucket = s3_env.new_bucket()
    store = S3LayerStore(root=f"s3://{bucket}/data")
    keys = [f"layer/{n:02}.parquet" for n in range(20)]
    before = s3_env.requests(bucket)
    with store.writes() as write:
        for key in keys:
            write(key, b"x" * 1000)
    written = s3_env.requests(bucket)
    assert [len(data) for data in store.read_all(keys)] == [1000] * 20
    read = s3_env.requests(bucket)
    store.copy_all([(key, f"copied/{key}") for key in keys])
    copied = s3_env.requests(bucket)
    assert written - before == Counter(PUT=20)
    assert read - written == Counter(GET=20)
    assert copied - read == Counter(COPY=20)


def test_a_small_object_streamed_is_one_request(s3_env):
    """A stream (a letter's parquet file, written as it is encoded) that ends up smaller than
    one part goes up as one PutObject: a multipart upload would be three requests in turn."""
    bucket = s3_env.new_bucket()
    store = S3LayerStore(root=f"s3://{bucket}/data")
    before = s3_env.requests(bucket)
    with store.open_output("staging/part-0.parquet") as stream:
        stream.write(b"x" * 100_000)
    assert s3_env.requests(bucket) - before == Counter(PUT=1)
    assert store.read_bytes("staging/part-0.parquet") == b"x" * 100_000


@pytest.mark.parametrize("at_once", [S3_REQUESTS_AT_ONCE, 3])
def test_writes_reads_copies_and_moves_keep_as_many_going_as_the_store_is_set_to(
    s3_env, monkeypatch, at_once
):
    """A layer is thousands of small objects, each request waiting a round trip to S3: the
    store keeps ``requests_at_once`` going (50 by default), not the ten of one boto3 pool."""
    store = S3LayerStore(root=f"s3://{s3_env.new_bucket()}/data", requests_at_once=at_once)
    keys = [f"versions/b1/{n:03}.parquet" for n in range(2 * at_once + 1)]
    going, most, counting = 0, Counter(), threading.Lock()

    def held(name: str) -> None:
        real = getattr(S3LayerStore, name)

        def slow(self, *args):
            nonlocal going
            with counting:
                going += 1
                most[name] = max(most[name], going)
            time.sleep(0.2)
            try:
                return real(self, *args)
            finally:
                with counting:
                    going -= 1

        monkeypatch.setattr(S3LayerStore, name, slow)

    for name in ("_write_bytes", "read_bytes", "_copy"):
        held(name)
    with store.writes() as write:
        for key in keys:
            write(key, key.encode())
    assert [data.decode() for data in store.read_all(keys)] == keys
    store.copy_all([(key, key.replace("versions/b1/", "layer/")) for key in keys])
    store.move_all([(key, key.replace("versions/b1/", "moved/")) for key in keys])
    assert most == {"_write_bytes": at_once, "read_bytes": at_once, "_copy": at_once}
    assert [store.read_bytes(key.replace("versions/b1/", "layer/")) for key in keys] == [
        key.encode() for key in keys
    ]
    assert store.list_keys("moved") == [key.replace("versions/b1/", "moved/") for key in keys]
    assert store.list_keys("versions") == []


def test_no_boto3_client_is_asked_for_more_connections_than_its_pool_holds(
    s3_env, caplog, monkeypatch
):
    """50 requests at once are lent at most five clients of ten connections (more than one:
    how many depends on how many overlap): none opens a connection beyond its pool (urllib3
    warns when it drops one). One request at a time makes one client."""
    monkeypatch.setattr(aws, "_made", {})
    store = S3LayerStore(root=f"s3://{s3_env.new_bucket()}/data")
    clients = s3_clients()
    store.write_bytes("one", b"1")
    assert store.read_bytes("one") == b"1"
    assert clients.made == 1
    keys = [f"layer/{n:03}.parquet" for n in range(200)]
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        with store.writes() as write:
            for key in keys:
                write(key, b"x" * 20_000)
        assert [len(data) for data in store.read_all(keys)] == [20_000] * len(keys)
    assert 1 < clients.made <= -(-S3_REQUESTS_AT_ONCE // CLIENT_CONNECTIONS) == 5
    assert not [record for record in caplog.records if "pool is full" in record.getMessage()]


def test_more_requests_at_once_than_the_most_are_refused():
    with pytest.raises(ValidationError, match="requests_at_once"):
        S3LayerStore(root="s3://bucket/data", requests_at_once=MOST_S3_REQUESTS_AT_ONCE + 1)


def test_a_client_is_lent_as_many_times_at_once_as_its_pool_has_connections():
    """pyarrow's filesystems hold 25 connections: the 26th request at once is lent a second
    one, and a request beyond the most clients waits for a connection to come back."""
    made = []

    def make(n: int) -> str:
        made.append(n)
        return f"client {n}"

    clients = S3Clients(make, most=2, connections=3)

    def borrowed() -> str:
        with clients.lent() as client:
            return client

    with ExitStack() as holding, ThreadPoolExecutor(1) as pool:
        lent = [holding.enter_context(clients.lent()) for _ in range(6)]
        assert lent == ["client 0"] * 3 + ["client 1"] * 3
        waiting = pool.submit(borrowed)
        time.sleep(0.2)
        assert not waiting.done()
        holding.close()
        assert waiting.result(timeout=5) in ("client 0", "client 1")
    assert made == [0, 1]


def test_copies_beyond_one_pyarrow_pool_are_lent_another_filesystem(s3_env, monkeypatch):
    """With every connection of the first filesystem taken, a store's copies still go."""
    monkeypatch.setattr(aws, "_made", {})
    store = S3LayerStore(root=f"s3://{s3_env.new_bucket()}/data", requests_at_once=60)
    keys = [f"versions/b1/{n:03}.parquet" for n in range(120)]
    with store.writes() as write:
        for key in keys:
            write(key, key.encode())
    arrows = aws.arrow_s3_filesystems()
    with ExitStack() as holding:
        for _ in range(ARROW_S3_CONNECTIONS):
            holding.enter_context(arrows.lent())
        store.copy_all([(key, key.replace("versions/b1/", "layer/")) for key in keys])
    assert arrows.made >= 2
    assert [
        data.decode()
        for data in store.read_all([k.replace("versions/b1/", "layer/") for k in keys])
    ] == keys
