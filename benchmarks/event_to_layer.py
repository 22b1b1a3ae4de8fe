"""From a change in EveryElection to the published layer: how long, and where the time goes.

Measured on the deployment as production runs it: ``dg dev`` (webserver, daemon, run queue)
on 127.0.0.1 with the ballots in EveryElection's database (PostgreSQL with PostGIS on
127.0.0.1, holding the generated ballots export as EE holds ballots) and EE's change events on
a FIFO queue of an AWS emulator on loopback (moto). The layer is first baked from the generated
drop; then, each round, a by-election is added in EE in a ward that has a ballot, its event is
sent, and the clock runs until the published layer's manifest names the new ballot. The
quiet period is 0, as the issue asks; the sensor's interval is an option.

Each round's time is cut at the points the deployment records: the run's creation (the sensor's
tick has requested it), its start (the queue launched it in a new process), each step's start
and end, and the manifest's change seen by polling every 0.2 s.

    .venv/bin/python -m benchmarks.event_to_layer --addresses 30000000 --divisions 20000
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shutil
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import dagster as dg

from benchmarks.inputs import InputSpec, add_input_arguments, ensure_inputs
from benchmarks.machine import describe_machine
from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.bake import bake
from databaker.definitions import Settings
from databaker.layers.versions import published_manifest
from databaker.resources import LocalLayerStore
from databaker_tests.athena_emulator import running_moto_server
from databaker_tests.dagster_server import ROOT, dagster_dev
from databaker_tests.deployment_client import DeploymentClient
from databaker_tests.every_election_db import (
    BAKER_PASSWORD,
    EveryElectionDb,
    every_election_server,
)

SECTION = "event-to-layer"
REGION = "eu-west-2"
ELECTIONS_CHANGED = "elections_set_changed"
SERVER_SETTINGS = {
    "shared_buffers": "1GB",
    "effective_cache_size": "4GB",
    "max_wal_size": "4GB",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "jit": "off",
}
RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    ... on Runs {
      results { runId status creationTime startTime endTime
                stepStats { stepKey status startTime endTime } }
    }
  }
}
"""
AWS = {
    "AWS_ACCESS_KEY_ID": "AKIAEMULATOREXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "emulator-secret",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass(frozen=True)
class Round:
    """One event's way to the published layer, as seconds from the event being sent."""

    ballot: str
    addresses: int
    requested: float
    started: float
    steps: dict[str, float]
    """Each step's duration."""
    published: float


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.event_to_layer", description=__doc__
    )
    add_input_arguments(parser)
    parser.add_argument(
        "--boundary-reviews",
        type=int,
        default=0,
        help="generate a boundary-reviews export too (only so that inputs cached with one are "
        "reused: the benchmark does not read it)",
    )
    parser.add_argument("--boundary-review-types", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sensor-interval", type=int, default=5)
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)

    spec = InputSpec(
        args.addresses,
        args.divisions,
        args.seed,
        args.files,
        args.boundary_reviews,
        args.boundary_review_types,
    )
    inputs = ensure_inputs(spec, args.cache)
    work = (args.cache / "runs" / "event_to_layer").resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with every_election_server(SERVER_SETTINGS) as server, running_moto_server() as endpoint:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        database = EveryElectionDb(server, server.new_database())
        started = time.perf_counter()
        database.load_ballots_export(inputs.ballots, datetime.date.today() + datetime.timedelta(30))
        load_seconds = time.perf_counter() - started
        wards = by_election_wards(database, args.rounds)
        queue = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION, **_keys())
        queue_url = queue.create_queue(
            QueueName="CurrentElectionsEventQueue.fifo",
            Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
        )["QueueUrl"]
        home, data_root, drops = work / "dagster_home", work / "data", work / "drops"
        for folder in (home, drops):
            folder.mkdir()
        shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        ballots = server.url(database.name, password=None)
        os.environ["PGPASSWORD"] = BAKER_PASSWORD
        print(f"EE loaded in {load_seconds:.1f} s; first bake of {inputs.folder.name} ...")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            first = bake(
                addressbase=str(inputs.drop_files[0].parent),
                settings=Settings(data_root=str(data_root), addressbase_drops=str(drops),
                                  ballots=ballots),
                instance=instance,
            )  # fmt: skip
        print(f"first bake: {first.seconds:.1f} s")
        environment = {
            **AWS,
            "AWS_ENDPOINT_URL_SQS": endpoint,
            "PGPASSWORD": BAKER_PASSWORD,
            "DATABAKER_DATA_ROOT": str(data_root),
            "DATABAKER_ADDRESSBASE_DROPS": str(drops),
            "DATABAKER_BALLOTS": ballots,
            "DATABAKER_EE_EVENTS_QUEUE": queue_url,
            "DATABAKER_EE_EVENTS_QUIET_SECONDS": "0",
            "DATABAKER_SENSOR_INTERVAL_SECONDS": str(args.sensor_interval),
        }
        rounds = []
        with dagster_dev(home, environment, work / "dagster-dev.log") as deployment:
            client = DeploymentClient(deployment)
            store = LocalLayerStore(root=str(data_root))
            for ballot, ward in wards:
                rounds.append(one_round(client, database, store, queue, queue_url, ballot, ward))
                print(json.dumps(rounds[-1].__dict__))
    report = render(spec, args, rounds, load_seconds, first.seconds)
    write_section(args.output, report)
    print(report)
    return 0


def by_election_wards(database: EveryElectionDb, rounds: int) -> list[tuple[str, str]]:
    """A ward with a ballot for each round, and the ID of a by-election to add in it."""
    rows = database.execute(
        "SELECT e.election_id, d.official_identifier FROM elections_election AS e"
        " JOIN organisations_divisiongeography AS g ON g.id = e.division_geography_id"
        " JOIN organisations_organisationdivision AS d ON d.id = g.division_id"
        " WHERE e.election_id LIKE 'local.%%' ORDER BY e.election_id LIMIT %s",
        (rounds,),
    )
    chosen = []
    for election_id, ward in rows:
        prefix, _, _ = election_id.rpartition(".")
        chosen.append((f"{prefix}.by.2027-03-04", ward))
    return chosen


def one_round(
    client: DeploymentClient,
    database: EveryElectionDb,
    store: LocalLayerStore,
    queue: Any,
    queue_url: str,
    ballot: str,
    ward: str,
) -> Round:
    database.add_ballot_in_division(ballot, ward, datetime.date(2027, 3, 4))
    before = {r["runId"] for r in runs(client)}
    sent = time.time()
    queue.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps({
            "version": "0", "id": str(uuid.uuid4()), "detail-type": ELECTIONS_CHANGED,
            "source": "everyelection-benchmark", "time": datetime.datetime.now(datetime.UTC)
            .isoformat(), "detail": {},
        }),
        MessageGroupId=ELECTIONS_CHANGED,
    )  # fmt: skip
    while True:
        manifest = published_manifest(store, CURRENT_ELECTIONS.prefix)
        if manifest is not None and ballot in manifest.addresses_per_id:
            published = time.time() - sent
            break
        if time.time() - sent > 1800:
            raise TimeoutError(f"{ballot} not published in 30 minutes")
        time.sleep(0.2)
    (run,) = [r for r in runs(client) if r["runId"] not in before]
    while run["status"] not in ("SUCCESS", "FAILURE"):
        time.sleep(0.5)
        (run,) = [r for r in runs(client) if r["runId"] == run["runId"]]
    steps = {
        step["stepKey"]: step["endTime"] - step["startTime"]
        for step in run["stepStats"]
        if step["startTime"] and step["endTime"]
    }
    return Round(
        ballot=ballot,
        addresses=manifest.addresses_per_id[ballot],
        requested=run["creationTime"] - sent,
        started=run["startTime"] - sent,
        steps=steps,
        published=published,
    )


def runs(client: DeploymentClient) -> list[dict[str, Any]]:
    data = client.deployment.graphql(
        RUNS, filter={"tags": [{"key": "dagster/sensor_name", "value": "every_election_events"}]}
    )
    return data["runsOrError"]["results"]


def render(
    spec: InputSpec, args: argparse.Namespace, rounds: list[Round], load: float, first: float
) -> str:
    machine = describe_machine()
    steps = sorted(
        {step for r in rounds for step in r.steps}, key=lambda s: -rounds[0].steps.get(s, 0)
    )
    lines = [
        f"<!-- {SECTION}:start -->",
        f"### From an EE event to the published layer, {spec.addresses:,} addresses x "
        f"{spec.divisions:,} divisions",
        "",
        f"`.venv/bin/python -m benchmarks.event_to_layer --addresses {spec.addresses} "
        f"--divisions {spec.divisions} --sensor-interval {args.sensor_interval}` on "
        f"{machine['cores']} cores ({machine['CPU']}, {machine['RAM']}), "
        f"{datetime.date.today().isoformat()}; quiet period 0, sensor interval "
        f"{args.sensor_interval} s. EE loaded with the generated ballots in {load:.0f} s; the "
        f"first bake (drop and EE export) took {first:.1f} s.",
        "",
        "| | " + " | ".join(f"round {n}" for n in range(1, len(rounds) + 1)) + " |",
        "|---|" + "---:|" * len(rounds),
        "| addresses with the new ballot | "
        + " | ".join(f"{r.addresses:,}" for r in rounds)
        + " |",
        "| event sent -> run requested (sensor tick) | "
        + " | ".join(f"{r.requested:.1f} s" for r in rounds)
        + " |",
        "| requested -> run started (queue, new process) | "
        + " | ".join(f"{r.started - r.requested:.1f} s" for r in rounds)
        + " |",
    ]
    for step in steps:
        lines.append(
            f"| step `{step}` | "
            + " | ".join(f"{r.steps.get(step, 0):.1f} s" for r in rounds)
            + " |"
        )
    lines += [
        "| **event sent -> the published layer names the ballot** | "
        + " | ".join(f"**{r.published:.1f} s**" for r in rounds)
        + " |",
        "",
        f"Median: {statistics.median(r.published for r in rounds):.1f} s.",
        f"<!-- {SECTION}:end -->",
    ]
    return "\n".join(lines)


def write_section(output: Path, section: str) -> None:
    """Replace this benchmark's section of ``output`` (or append it), atomically."""
    text = output.read_text() if output.exists() else ""
    start, end = f"<!-- {SECTION}:start -->", f"<!-- {SECTION}:end -->"
    if start in text and end in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    temporary = output.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(output)


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS["AWS_SECRET_ACCESS_KEY"],
    }


if __name__ == "__main__":
    sys.exit(main())
