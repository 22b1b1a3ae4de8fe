"""A real Dagster deployment for tests: ``dg dev`` (webserver, daemon, code server).

The deployment runs in its own process group, so stopping it stops everything it started: the
webserver, the daemon, the code server and any run workers and step processes still running.
The webserver listens on 127.0.0.1 only and is driven through its GraphQL API, exactly as the UI
drives it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = "__repository__"
"""The repository name Dagster gives the one ``Definitions`` object of a code location."""

STARTUP_SECONDS = 180
STOP_SECONDS = 60
_LOG_TAIL_CHARS = 6000

T = TypeVar("T")


class DeploymentError(AssertionError):
    """The deployment did not start, answered with an error, or did not get somewhere in time."""


@dataclass(frozen=True)
class DagsterDeployment:
    """A running ``dg dev`` and the GraphQL endpoint of its webserver."""

    url: str
    process: subprocess.Popen
    log: Path
    location: str = ""
    """The name of the workspace's one code location, once it has loaded."""

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        """The ``data`` of a GraphQL request; GraphQL errors are raised, not returned."""
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        if answer.get("errors"):
            raise DeploymentError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]

    def wait_for(
        self,
        what: str,
        condition: Callable[[], T | None],
        timeout: float,
        interval: float = 1.5,
    ) -> T:
        """Poll ``condition`` until it returns something truthy, at most ``timeout`` seconds.

        The deployment must stay up meanwhile: a crash fails at once, with its log.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise DeploymentError(
                    f"dg dev exited with {self.process.returncode} while waiting for "
                    f"{what}:\n{self.log_tail()}"
                )
            result = condition()
            if result:
                return result
            if time.monotonic() > deadline:
                raise DeploymentError(f"no {what} within {timeout} s:\n{self.log_tail()}")
            time.sleep(interval)

    def log_tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-_LOG_TAIL_CHARS:]

    def group_pids(self) -> list[int]:
        return live_group_members(self.process.pid)


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dagster_dev(
    dagster_home: Path, environment: Mapping[str, str], log: Path
) -> Iterator[DagsterDeployment]:
    """Run ``dg dev`` for the repository's workspace until the block ends, then stop it all.

    ``environment`` is added to a copy of this process's environment from which every
    ``DAGSTER_*`` and ``DATABAKER_*`` variable has been removed, so the deployment sees only the
    configuration the test gives it.
    """
    port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DAGSTER_", "DATABAKER_"))
    }
    env.update(environment)
    env["DAGSTER_HOME"] = str(dagster_home)
    dg = Path(sys.executable).with_name("dg")
    command = [
        sys.executable, "-c", _WITH_INTERRUPTS,
        str(dg), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deployment = DagsterDeployment(f"http://127.0.0.1:{port}", process, log)
    try:
        location = deployment.wait_for(
            "loaded code location", lambda: _loaded_location(deployment), STARTUP_SECONDS
        )
        yield dataclasses.replace(deployment, location=location)
    finally:
        stop_process_group(process)


_WITH_INTERRUPTS = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)
"""Run the command with SIGINT's default action, which a shell gives background jobs ignored.

Dagster's processes handle SIGTERM as they handle SIGINT: were SIGINT ignored (``cmd &`` in a
non-interactive shell, as CI scripts do), they would ignore SIGTERM too and only SIGKILL, which
gives a run no chance to record that it was interrupted, would stop them.
"""


def _loaded_location(deployment: DagsterDeployment) -> str | None:
    """The workspace's code location once the webserver serves it loaded; a load error fails."""
    try:
        data = deployment.graphql(
            """
            query {
              workspaceOrError {
                ... on Workspace {
                  locationEntries {
                    name
                    loadStatus
                    locationOrLoadError {
                      __typename
                      ... on PythonError { message }
                    }
                  }
                }
              }
            }
            """
        )
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    (entry,) = data["workspaceOrError"]["locationEntries"]
    if entry["loadStatus"] != "LOADED":
        return None
    loaded = entry["locationOrLoadError"]
    if loaded["__typename"] == "PythonError":
        raise DeploymentError(f"the code location failed to load: {loaded['message']}")
    return entry["name"] if loaded["__typename"] == "RepositoryLocation" else None


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the whole group (Dagster shuts down on it), then SIGKILL whatever is left.

    A group already stopped is not signalled again: once its last process is gone, its id may
    have been given to another process group.
    """
    if process.poll() is not None and not live_group_members(process.pid):
        return
    if not _signal_group_and_wait(process, signal.SIGTERM, STOP_SECONDS):
        _signal_group_and_wait(process, signal.SIGKILL, 15)
    process.wait(timeout=15)


def _signal_group_and_wait(process: subprocess.Popen, sig: signal.Signals, grace: float) -> bool:
    """Signal every process of the group; whether all of them are gone within ``grace``."""
    with suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(process.pid, sig)
    deadline = time.monotonic() + grace
    while True:
        if process.poll() is not None and not live_group_members(process.pid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def live_group_members(group: int) -> list[int]:
    """The processes of a process group that still run (zombies, which run nothing, excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after its closing one.
        state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == group and state != "Z":
            members.append(int(entry.name))
    return members


def listening_addresses(pids: list[int]) -> set[tuple[str, int]]:
    """Every TCP ``(address, port)`` the given processes listen on, read from ``/proc``."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if found := re.fullmatch(r"socket:\[(\d+)\]", target):
                inodes.add(found.group(1))
    listening = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                listening.add((str(_proc_net_address(address)), int(port, 16)))
    return listening


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _proc_net_address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as ``/proc/net/tcp*`` writes it: 32-bit words, each in host byte order."""
    words = [bytes.fromhex(hex_address[i : i + 8]) for i in range(0, len(hex_address), 8)]
    if sys.byteorder == "little":
        words = [word[::-1] for word in words]
    return ipaddress.ip_address(b"".join(words))
