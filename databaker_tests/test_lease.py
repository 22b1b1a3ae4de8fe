"""The data root's lease, between real processes: on a local root (an OS lock) and on S3
(SeaweedFS, conditional writes). One holder at a time; the others wait or refuse, naming the
holder; a killed holder's lease is freed (locally at once, on S3 once it expires), and a holder
that lost its lease writes nothing more."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from databaker_tests.s3_server import S3Server

pytestmark = pytest.mark.slow_module

STARTUP_SECONDS = 30.0


class Holder:
    """One ``lease_holder`` process and the lines it printed (stdout and stderr as one)."""

    def __init__(self, root: str, name: str, *options: str, env: dict[str, str] | None = None):
        self.name = name
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "databaker_tests.lease_holder", root, name, *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )

    def wait_for(self, expected: str, timeout: float = STARTUP_SECONDS) -> float:
        """Wait until the holder prints a line starting with ``expected``; when it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                break
            self.lines.append(line.rstrip("\n"))
            if line.startswith(expected):
                return time.monotonic()
        raise AssertionError(f"{self.name} did not print {expected!r}: {self.output()}")

    def let_go(self) -> str:
        """Tell a holder without ``--hold`` to write and let go; what it said of the write."""
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        self.wait_for(("wrote", "refused"))  # type: ignore[arg-type]
        assert self.process.wait(timeout=60) == 0, self.output()
        return self.lines[-1]

    def finish(self, timeout: float = 120) -> int:
        code = self.process.wait(timeout=timeout)
        self.lines += self.process.stdout.read().splitlines()
        return code

    def output(self) -> str:
        return "\n".join(self.lines)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def holders() -> Iterator[Callable[..., Holder]]:
    started: list[Holder] = []

    def start(*args: str, **kwargs) -> Holder:
        started.append(Holder(*args, **kwargs))
        return started[-1]

    yield start
    for holder in started:
        if holder.process.poll() is None:
            holder.kill()
        holder.process.stdin.close()
        holder.process.stdout.close()


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> Iterator[tuple[str, dict[str, str] | None]]:
    """A data root and the environment that reaches it."""
    if request.param == "local":
        yield str(tmp_path / "data"), None
        return
    server: S3Server = request.getfixturevalue("s3_server")
    yield f"s3://{server.new_bucket()}/data", {**os.environ, **server.environment()}


def test_while_one_holds_the_lease_others_wait_or_refuse_naming_it(root, holders):
    where, env = root
    first = holders(where, "first-bake", env=env)
    first.wait_for("held")
    refused = holders(where, "impatient-bake", "--hold", "0", "--wait", "0", env=env)
    second = holders(where, "second-bake", "--hold", "0", env=env)

    assert refused.finish() == 3
    host = socket.gethostname()
    named = f"first-bake (pid {first.process.pid} on {host}) since 20"
    assert f"another bake holds the data root {where}: {named}" in refused.output()
    second.wait_for(f"waiting for the lease on {where}, held by {named}")
    time.sleep(1)
    assert second.process.poll() is None, "the second holder did not wait"
    assert first.let_go() == "wrote"
    second.wait_for("held", timeout=10)
    assert second.finish() == 0


def test_a_killed_local_holder_frees_the_lease_at_once(tmp_path, holders):
    where = str(tmp_path / "data")
    first = holders(where, "killed-bake")
    first.wait_for("held")
    first.kill()

    after = holders(where, "next-bake", "--hold", "0", "--wait", "0")
    assert after.finish() == 0, after.output()


def test_a_killed_s3_holder_is_taken_over_once_its_lease_expires(s3_server, holders):
    where = f"s3://{s3_server.new_bucket()}/data"
    env = {**os.environ, **s3_server.environment()}
    ttl = 4.0
    first = holders(where, "killed-bake", "--ttl", str(ttl), env=env)
    first.wait_for("held")
    after = holders(where, "next-bake", "--hold", "0", "--ttl", str(ttl), env=env)
    after.wait_for(f"waiting for the lease on {where}, held by killed-bake")
    first.kill()
    killed = time.monotonic()

    held = after.wait_for("held", timeout=4 * ttl)
    assert after.finish() == 0
    assert any(line.startswith("took over the lease") and "from killed-bake" in line
               for line in after.lines), after.output()  # fmt: skip
    # Not before the killed holder's last renewal (at most ttl/3 before the kill) expired;
    # the server's clock counts whole seconds.
    assert held - killed > ttl * 2 / 3 - 1


def test_an_s3_holder_stalled_past_its_expiry_writes_nothing_more(s3_server, holders):
    where = f"s3://{s3_server.new_bucket()}/data"
    env = {**os.environ, **s3_server.environment()}
    ttl = 3.0
    stalled = holders(where, "stalled-bake", "--ttl", str(ttl), env=env)
    stalled.wait_for("held")
    os.kill(stalled.process.pid, signal.SIGSTOP)
    try:
        # The next bake's own lease lives long: on a loaded machine a renewal a second late
        # would otherwise leave it untrusted (after two thirds of 3 s) by the time it writes.
        taker = holders(where, "next-bake", "--ttl", str(10 * ttl), env=env)
        taker.wait_for("held", timeout=STARTUP_SECONDS + 3 * ttl)
    finally:
        os.kill(stalled.process.pid, signal.SIGCONT)

    last = stalled.let_go()
    assert last.startswith("refused: the lease on"), last
    assert taker.let_go() == "wrote"
    client = s3_server.client()
    bucket = where.split("/")[2]
    names = {item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert "data/next-bake.txt" in names and "data/stalled-bake.txt" not in names


@pytest.mark.parametrize("count", [4])
def test_holders_racing_for_the_lease_hold_it_one_at_a_time(root, holders, tmp_path, count):
    where, env = root
    log = tmp_path / "held.jsonl"
    racing = [
        holders(where, f"bake-{n}", "--hold", "0.2", "--log", str(log), env=env)
        for n in range(count)
    ]
    for holder in racing:
        assert holder.finish() == 0, holder.output()

    spans = sorted(
        (entry["start"], entry["end"], entry["name"])
        for entry in map(json.loads, log.read_text().splitlines())
    )
    assert len(spans) == count
    for (_, end, name), (start, _, next_name) in itertools.pairwise(spans):
        assert end <= start, f"{name} and {next_name} held the lease at the same time"
