"""The one ``Definitions`` object: assets, checks, jobs and the resources they run with.

Which resources is a matter of configuration, read from the environment here and nowhere else:

- ``DATABAKER_DATA_ROOT``: where layers are kept, a local folder (default ``data``) or
  ``s3://bucket/prefix``;
- ``DATABAKER_ADDRESSBASE_DROPS``: where dated AddressBase drops arrive,
  ``DATABAKER_BALLOTS``: the ballots export, ``DATABAKER_BOUNDARY_REVIEWS``: the
  boundary-reviews export, and ``DATABAKER_ORGANISATIONS``: the organisations export (local
  paths or ``s3://`` URLs; by default the bundled sample);
  any of the three may instead be EveryElection's database, a ``postgresql://`` URL (its
  password from ``PGPASSWORD``, a pgpass file or the URL; never shown), which the layer's
  export asset exports from; for a boundary-reviews export taken from it,
  ``DATABAKER_BOUNDARY_REVIEW_STATUSES`` (default ``CURRENT``) or
  ``DATABAKER_BOUNDARY_REVIEW_IDS`` (comma-separated) select the reviews;
- ``DATABAKER_EE_EVENTS_QUEUE``: the SQS queue URL of EveryElection's change events, which
  rebuild the layers whose input comes from its database, and
  ``DATABAKER_EE_EVENTS_QUIET_SECONDS``: how long a burst of events must be quiet before the
  rebuild (default 300);
- ``DATABAKER_SENSOR_INTERVAL_SECONDS``: how often the sensors look (default 60);
- ``DATABAKER_LEASE_WAIT_SECONDS``: how long a run waits for another bake of the data root
  (default six hours), and ``DATABAKER_S3_LEASE_SECONDS``: how long an S3 data root's lease
  lives unless renewed (default 120);
- ``DATABAKER_ENGINE``: ``duckdb`` (default, embedded) or ``athena``;
- with Athena: ``DATABAKER_ATHENA_DATABASE`` (required), ``DATABAKER_ATHENA_WORKGROUP``
  (default ``primary``) and ``DATABAKER_ATHENA_OUTPUT`` (query results location, unless the
  workgroup enforces one);
- the standard AWS variables (region, ``AWS_ENDPOINT_URL_S3``, credentials) for anything on S3.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from databaker.assets import LAYERS, assets_of
from databaker.automation.addressbase_drops import build_addressbase_drops_sensor
from databaker.automation.every_election_events import (
    EventTarget,
    build_every_election_events_sensor,
)
from databaker.huge_pages import forbid_transparent_huge_pages
from databaker.layers import Layer
from databaker.layers.build import LayerDefinitions, layer_definitions
from databaker.partitions import ALL_LETTERS
from databaker.resources import (
    AthenaQueryEngine,
    DuckDBQueryEngine,
    LayerStore,
    LocalLayerStore,
    QueryEngine,
    S3LayerStore,
)
from databaker.resources.aws import is_s3_url
from databaker.resources.every_election import conninfo_password, is_every_election_url
from databaker.resources.input_locations import InputLocations
from databaker.resources.layer_store import LEASE_WAIT_SECONDS
from databaker.resources.s3_layer_store import S3_LEASE_SECONDS
from databaker.sources import (
    SAMPLE_BALLOTS,
    SAMPLE_BOUNDARY_REVIEWS,
    SAMPLE_DROPS,
    SAMPLE_ORGANISATIONS,
)

DEFAULT_DATA_ROOT = "data"
EVENTS_QUIET_SECONDS = 300.0
ENGINES = ("duckdb", "athena")


class ConfigurationError(Exception):
    """The configuration is incomplete or contradictory; the message lists what to set."""


@dataclass(frozen=True)
class Settings:
    """Where layers go and which engine bakes them."""

    data_root: str = DEFAULT_DATA_ROOT
    addressbase_drops: str = str(SAMPLE_DROPS)
    ballots: str = str(SAMPLE_BALLOTS)
    boundary_reviews: str = str(SAMPLE_BOUNDARY_REVIEWS)
    boundary_review_statuses: tuple[str, ...] = ("CURRENT",)
    boundary_review_ids: tuple[int, ...] = ()
    organisations: str = str(SAMPLE_ORGANISATIONS)
    sensor_interval_seconds: int = 60
    events_queue: str | None = None
    events_quiet_seconds: float = EVENTS_QUIET_SECONDS
    lease_wait_seconds: float = LEASE_WAIT_SECONDS
    s3_lease_seconds: float = S3_LEASE_SECONDS
    engine: str = "duckdb"
    athena_database: str | None = None
    athena_workgroup: str = "primary"
    athena_output: str | None = None
    transparent_huge_pages: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            data_root=environ.get("DATABAKER_DATA_ROOT") or DEFAULT_DATA_ROOT,
            addressbase_drops=environ.get("DATABAKER_ADDRESSBASE_DROPS") or str(SAMPLE_DROPS),
            ballots=environ.get("DATABAKER_BALLOTS") or str(SAMPLE_BALLOTS),
            boundary_reviews=environ.get("DATABAKER_BOUNDARY_REVIEWS")
            or str(SAMPLE_BOUNDARY_REVIEWS),
            boundary_review_statuses=tuple(
                _listed(environ.get("DATABAKER_BOUNDARY_REVIEW_STATUSES")) or ("CURRENT",)
            ),
            boundary_review_ids=_review_ids(environ.get("DATABAKER_BOUNDARY_REVIEW_IDS")),
            organisations=environ.get("DATABAKER_ORGANISATIONS") or str(SAMPLE_ORGANISATIONS),
            sensor_interval_seconds=_seconds(environ.get("DATABAKER_SENSOR_INTERVAL_SECONDS")),
            events_queue=environ.get("DATABAKER_EE_EVENTS_QUEUE") or None,
            events_quiet_seconds=_duration(
                "DATABAKER_EE_EVENTS_QUIET_SECONDS", environ, EVENTS_QUIET_SECONDS, minimum=0
            ),
            lease_wait_seconds=_duration(
                "DATABAKER_LEASE_WAIT_SECONDS", environ, LEASE_WAIT_SECONDS, minimum=0
            ),
            s3_lease_seconds=_duration("DATABAKER_S3_LEASE_SECONDS", environ, S3_LEASE_SECONDS),
            engine=(environ.get("DATABAKER_ENGINE") or "duckdb").strip().lower(),
            athena_database=environ.get("DATABAKER_ATHENA_DATABASE") or None,
            athena_workgroup=environ.get("DATABAKER_ATHENA_WORKGROUP") or "primary",
            athena_output=environ.get("DATABAKER_ATHENA_OUTPUT") or None,
            transparent_huge_pages=_switch("DATABAKER_TRANSPARENT_HUGE_PAGES", environ),
        )


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """``store``, ``engine`` and ``inputs`` as configured; ``reader`` is always embedded DuckDB.

    The inputs are read in this process in every configuration (a clean drop by Arrow, any
    other input line by line by DuckDB), because a rejected row must be reported with its line
    number and Athena has no notion of a line's position.
    """
    problems = _problems(settings)
    if problems:
        raise ConfigurationError(
            "databaker cannot start with this configuration:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
        )
    reader = DuckDBQueryEngine()
    engine: QueryEngine = reader
    if settings.engine == "athena":
        engine = AthenaQueryEngine(
            database=settings.athena_database or "",
            workgroup=settings.athena_workgroup,
            output_location=settings.athena_output,
        )
    inputs = InputLocations(
        addressbase_drops=settings.addressbase_drops,
        ballots=_secret_free(settings.ballots, "DATABAKER_BALLOTS"),
        boundary_reviews=_secret_free(settings.boundary_reviews, "DATABAKER_BOUNDARY_REVIEWS"),
        boundary_review_statuses=list(settings.boundary_review_statuses),
        boundary_review_ids=list(settings.boundary_review_ids),
        organisations=_secret_free(settings.organisations, "DATABAKER_ORGANISATIONS"),
    )
    return {
        "store": _store(settings),
        "engine": engine,
        "reader": reader,
        "inputs": inputs,
    }


def build_defs(
    settings: Settings | None = None, layers: tuple[Layer, ...] = LAYERS
) -> dg.Definitions:
    """Every layer's assets, checks, jobs, sensors and schedules, with the resources
    ``settings`` configure.

    Whichever process loads them (``databaker bake``, the code server, a run's worker) bakes
    without transparent huge pages from then on, unless ``settings`` keep them
    (:mod:`databaker.huge_pages`)."""
    settings = settings or Settings()
    if not settings.transparent_huge_pages:
        forbid_transparent_huge_pages()
    from_database = layers_from_database(settings, layers)
    built = [layer_definitions(layer, layer.name in from_database) for layer in layers]
    assets, checks = assets_of(layers, from_database)
    interval = settings.sensor_interval_seconds
    return dg.Definitions(
        assets=_with_code_references(assets),
        asset_checks=checks,
        jobs=[job for b in built for job in b.jobs],
        sensors=[
            build_addressbase_drops_sensor(interval, [b.full_job for b in built]),
            *(sensor for b in built for sensor in b.sensors(interval)),
            *_events_sensors(settings, built),
        ],
        schedules=[b.schedule for b in built if b.schedule is not None],
        resources=build_resources(settings),
        # Every step is one heavy query or file pass that parallelises inside its engine;
        # starting a Python process per step would cost more than it isolates. One process per
        # run is also what makes a run hold the data root's lease from its first step to its
        # last (the store is set up once per run): a step per process would take it per step.
        executor=dg.in_process_executor,
    )


def _events_sensors(
    settings: Settings, built: Sequence[LayerDefinitions]
) -> list[dg.SensorDefinition]:
    """The sensor on EveryElection's change events, for the layers whose input comes from its
    database, when a queue is configured."""
    exported = [b for b in built if b.from_database and b.layer.input and b.layer.input.export]
    if not settings.events_queue or not exported:
        return []
    targets = [
        EventTarget(b.layer.name, b.layer.input.export.events, b.rebuild_job, ALL_LETTERS)
        for b in exported
        if b.layer.input and b.layer.input.export
    ]
    sensor = build_every_election_events_sensor(
        settings.events_queue,
        settings.events_quiet_seconds,
        settings.sensor_interval_seconds,
        targets,
    )
    return [sensor]


def layers_from_database(settings: Settings, layers: tuple[Layer, ...] = LAYERS) -> set[str]:
    """The layers whose input the settings locate in EveryElection's database."""
    return {
        layer.name
        for layer in layers
        if layer.input and is_every_election_url(getattr(settings, layer.input.option, ""))
    }


_CODE_REFERENCES_BETA = (
    r"(Function `with_source_code_references`"
    r"|Class `(LocalFileCodeReference|CodeReferencesMetadataValue)`) is currently in beta"
)


def _with_code_references(
    assets: Sequence[dg.AssetsDefinition],
) -> Sequence[dg.AssetsDefinition]:
    """Each asset with a link, on its page, to the code that makes it (a local file reference).

    Code references are beta in Dagster 1.13, with no stable API to use instead, and each use
    warns so: once per asset, in every process that loads the code (the webserver's, the
    daemon's, each run's). Those warnings alone are silenced, for this call alone.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _CODE_REFERENCES_BETA, dg.BetaWarning)
        return dg.with_source_code_references(assets)


def _secret_free(location: str, variable: str) -> str | dg.EnvVar:
    """A location as the resource's configuration; one holding a password (EveryElection's
    database, ``postgresql://user:password@...``) by its environment variable instead.

    Dagster shows a resource's configuration in the UI and stores it in every run's snapshot;
    for an ``EnvVar`` it shows and stores the variable's name, and reads the value when the
    resource starts. A location given otherwise (``databaker bake --ballots``) is put in this
    process's environment under that name first.
    """
    if not is_every_election_url(location) or conninfo_password(location) is None:
        return location
    if os.environ.get(variable) != location:
        os.environ[variable] = location
    return dg.EnvVar(variable)


def _listed(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _review_ids(text: str | None) -> tuple[int, ...]:
    items = _listed(text)
    if not all(item.isdigit() for item in items):
        raise ConfigurationError(
            f"DATABAKER_BOUNDARY_REVIEW_IDS must list review IDs, 955,963, not {text!r}"
        )
    return tuple(int(item) for item in items)


def _seconds(text: str | None) -> int:
    if not text:
        return 60
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigurationError(
            f"DATABAKER_SENSOR_INTERVAL_SECONDS must be a whole number of seconds, not {text!r}"
        )
    return int(text)


def _switch(name: str, environ: Mapping[str, str]) -> bool:
    text = (environ.get(name) or "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise ConfigurationError(f"{name} must be 1 or 0 (true or false), not {text!r}")


def _duration(
    name: str, environ: Mapping[str, str], default: float, *, minimum: float = 1
) -> float:
    text = environ.get(name)
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not minimum <= seconds < float("inf"):
        raise ConfigurationError(f"{name} must be a number of seconds, at least {minimum:g}")
    return seconds


def _store(settings: Settings) -> LayerStore:
    if is_s3_url(settings.data_root):
        return S3LayerStore(
            root=settings.data_root,
            lease_wait_seconds=settings.lease_wait_seconds,
            lease_seconds=settings.s3_lease_seconds,
        )
    return LocalLayerStore(
        root=str(Path(settings.data_root).expanduser().resolve()),
        lease_wait_seconds=settings.lease_wait_seconds,
    )


def _problems(settings: Settings) -> list[str]:
    if settings.engine not in ENGINES:
        return [f"DATABAKER_ENGINE is {settings.engine!r}; use one of {', '.join(ENGINES)}"]
    if settings.events_queue and not layers_from_database(settings):
        return [
            "DATABAKER_EE_EVENTS_QUEUE is set, but no input comes from EveryElection's "
            "database: set DATABAKER_BALLOTS, DATABAKER_BOUNDARY_REVIEWS or "
            "DATABAKER_ORGANISATIONS to its postgresql:// URL, or unset the queue"
        ]
    if "://" in settings.data_root and not is_s3_url(settings.data_root):
        return [f"DATABAKER_DATA_ROOT {settings.data_root!r}: use a local path or s3:// URL"]
    if settings.engine != "athena":
        return []
    problems = []
    if not settings.athena_database:
        problems.append(
            "DATABAKER_ATHENA_DATABASE is required with DATABAKER_ENGINE=athena "
            "(the Glue database that holds the layer tables)"
        )
    if not is_s3_url(settings.data_root):
        problems.append(
            f"DATABAKER_DATA_ROOT must be an s3:// URL with DATABAKER_ENGINE=athena "
            f"(Athena reads and writes S3 only), not {settings.data_root!r}"
        )
    if settings.athena_output is not None and not is_s3_url(settings.athena_output):
        problems.append(
            f"DATABAKER_ATHENA_OUTPUT must be an s3:// URL, not {settings.athena_output!r}"
        )
    return problems


@dg.definitions
def defs() -> dg.Definitions:
    """The code location, configured from the environment when Dagster loads it (not on import,
    so the command line can import this module whatever the environment holds)."""
    return build_defs(Settings.from_environment())
