"""Shared fixtures: a fresh data root per test and helpers to run parts of the asset graph."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from databaker.assets import assets_of
from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.definitions import Settings, build_resources
from databaker.partitions import ALL_LETTERS
from databaker.resources import DuckDBQueryEngine, LocalLayerStore
from databaker_tests.artefacts import report_artefacts
from databaker_tests.s3_server import S3Server, seaweedfs

REBUILD = [
    "current_ballots",
    "current_ballots_joined_to_address_base",
    "current_elections_version",
    "current_elections_parquet",
]
"""The current-elections layer rebuilt from its input on the AddressBase already baked."""
ALLOW = {
    f"allow_{rail}": True
    for rail in ("ballot_loss", "coverage_change", "address_drop", "upcoming_ballots_gone")
}
"""The version's config allowing every guard rail: for tests of what a rebuild writes, not of
what it refuses."""


def square(x0: float, x1: float, y0: float, y1: float) -> str:
    """The WKT of the box from ``(x0, y0)`` to ``(x1, y1)``."""
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def write_lines(path: Path, lines: Iterable[str], *, newline: str = "\n") -> Path:
    """Write ``lines`` as a text file (gzip-compressed when the name ends in .gz)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + newline for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def address_line(
    uprn: str, address: str, postcode: str, lon: float, lat: float, kind: str = "RD04"
) -> str:
    """One AddressBase cleaned line, quoting the address the way RFC 4180 writers do."""
    if any(ch in address for ch in ',"'):
        address = '"' + address.replace('"', '""') + '"'
    return f"{uprn},{address},{postcode},SRID=4326;POINT({lon} {lat}),{kind}"


def ballot_line(election_id: str, division_id: str, wkt: str, source_table: str) -> str:
    return f'{election_id},{division_id},"{wkt}",{source_table}'


@pytest.fixture(scope="session")
def engine() -> DuckDBQueryEngine:
    return DuckDBQueryEngine()


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_root: Path) -> LocalLayerStore:
    return LocalLayerStore(root=str(data_root))


def asset_runner(data_root: Path) -> Callable[..., dg.ExecuteInProcessResult]:
    """Materialise a selection of the graph (with the checks of the selected assets)."""

    def run(
        selection: list[str] | None = None,
        *,
        addressbase: Path | None = None,
        ballots: Path | None = None,
        partition_key: str | None = None,
        max_rejected_rows: int = 0,
        max_rejected_share: float | None = None,
        guard_rails: dict[str, Any] | None = None,
        instance: dg.DagsterInstance | None = None,
    ) -> dg.ExecuteInProcessResult:
        limits: dict[str, Any] = {"max_rejected_rows": max_rejected_rows}
        if max_rejected_share is not None:
            limits["max_rejected_share"] = max_rejected_share
        ops: dict[str, Any] = {}
        if addressbase is not None:
            ops["addressbase_cleaned_raw"] = {"config": {"source": str(addressbase), **limits}}
        if ballots is not None:
            ops["current_ballots"] = {"config": {"source": str(ballots), **limits}}
        if guard_rails is not None:
            ops["current_elections_version"] = {"config": guard_rails}
        return dg.materialize(
            [asset for part in assets_of((CURRENT_ELECTIONS,)) for asset in part],
            selection=selection,
            resources=build_resources(Settings(data_root=str(data_root))),
            run_config={"ops": ops},
            partition_key=partition_key,
            tags=None if partition_key else ALL_LETTERS,
            instance=instance,
            raise_on_error=False,
        )

    return run


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """One Dagster instance across runs, so that materialisations and check results persist
    between them."""
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture
def run_assets(data_root: Path) -> Callable[..., dg.ExecuteInProcessResult]:
    return asset_runner(data_root)


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's message, joined: what an operator would read."""
    return "\n".join(
        event.event_specific_data.error.to_string()
        for event in result.all_events
        if event.event_type_value == "STEP_FAILURE"
    )


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    return {
        event.event_specific_data.check_name: event.event_specific_data
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def materialization(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    """The metadata of the asset's last materialisation in the run, as plain values."""
    events = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset
    ]
    assert events, f"{asset} was not materialised"
    metadata = events[-1].step_materialization_data.materialization.metadata
    return {key: value.value for key, value in metadata.items()}


def partition_materializations(
    result: dg.ExecuteInProcessResult, asset: str
) -> dict[str, dict[str, Any]]:
    """The metadata of each partition's materialisation of the asset in the run, by partition."""
    return {
        event.partition: {
            key: value.value
            for key, value in event.step_materialization_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
        if event.asset_key.to_user_string() == asset
    }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS for the whole test session, on 127.0.0.1, data in a temporary folder."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The standard AWS environment pointed at the test S3 server, for this test only."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture(autouse=True)
def _input_locations_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test leaves the inputs' variables as it found them: a bake given EveryElection's
    URL with its password puts it there (``definitions._secret_free``)."""
    for name in ("DATABAKER_BALLOTS", "DATABAKER_BOUNDARY_REVIEWS", "DATABAKER_ORGANISATIONS"):
        original = os.environ.get(name)
        monkeypatch.setenv(name, original or "")
        if original is None:
            monkeypatch.delenv(name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules marked ``slow_module`` first, each module's tests in their order.

    ``--dist loadscope`` hands a module to whichever process is free, in collection order
    (``--no-loadscope-reorder``: its own order is by count of tests, which put the few long
    tests of the end-to-end modules last). Started first, the long modules run beside the many
    short ones, and the four processes finish together rather than one running the last
    long module alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow_module") is None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report_artefacts(terminalreporter)
