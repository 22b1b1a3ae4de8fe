"""The benchmark harnesses end to end at a tiny size: they run, the engines agree, they report.

Timings are not asserted: at this size they measure start-up, and on a shared CI machine
they would only make the test flaky. The tests share one cache, so the inputs are generated
once and the read benchmark reuses the layer it baked.
"""

import csv
import importlib.metadata
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from benchmarks import latency_proxy, layouts, rebake, rebake_report, s3_store, s3_store_report
from benchmarks.changed_ballots import changed_export
from benchmarks.floors import outcode_parts
from benchmarks.inputs import MARKER, Inputs, InputSpec, ensure_inputs
from benchmarks.layers import stage_of_step
from benchmarks.layers_report import PUBLISHED_HEADER, RUNS_HEADER
from benchmarks.our_bake import parse_bake, run_bake
from benchmarks.peers import PEERS
from benchmarks.postgis import Installation, PostgisMissing
from benchmarks.process import Measurement
from benchmarks.read_report import RESULTS_HEADER
from benchmarks.report import METHOD_HEADER
from benchmarks.s3_store import exit_status, rollback_restored
from benchmarks.s3_store_report import StoreRun, over_target, parse_rollback, round_table
from databaker.assets import layer_named
from databaker.bake import bake
from databaker.definitions import Settings
from databaker.layers.outcode_files import _parquet_bytes
from databaker.layers.versions import (
    MANIFEST,
    Manifest,
    content_hash,
    kept_versions,
    publish,
    published_manifest,
    version_prefix,
    write_manifest,
)
from databaker.progress import silent
from databaker.resources import LocalLayerStore

pytestmark = pytest.mark.slow_module

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--addresses", "3000", "--divisions", "40", "--files", "2"]


@pytest.fixture(scope="module")
def cache() -> Iterator[Path]:
    """A cache folder that PostgreSQL's server, run as ``nobody`` when the tests run as root,
    can reach (pytest's temporary folders are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="databaker-benchmark-cache-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


HANG = 900
"""Seconds after which a benchmark run as a subprocess is taken for hung: a guard, not a
measure. Alone, each takes well under a minute; on the suite's four workers sharing two cores,
the read benchmark (which builds a polars environment with pip when none is cached) once took
over 300 s."""


def run_benchmark(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *TINY, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=HANG,
    )  # fmt: skip


def postgis_installed() -> bool:
    try:
        Installation.find(None)
    except PostgisMissing:
        return False
    return True


def table_rows(markdown: str, header: str) -> list[list[str]]:
    """The body rows of the markdown table whose header line starts with ``header``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_a_tiny_benchmark_runs_every_method_and_they_all_agree(tmp_path, cache):
    output = tmp_path / "benchmarks.md"
    result = run_benchmark(
        "benchmarks.bake", "--sample", "200", "--cache", str(cache), "--output", str(output)
    )
    assert result.returncode == 0, result.stderr
    text = output.read_text()
    assert "<!-- bake-benchmark:a3000-d40:start -->" in text
    assert "<!-- bake-benchmark:a3000-d40:end -->" in text
    methods = table_rows(text, "| " + " | ".join(METHOD_HEADER))
    labels = [row[0] for row in methods]
    assert labels == ["databaker bake (ours)", *(peer.label for peer in PEERS.values())]
    mismatches = METHOD_HEADER.index("mismatches")
    assert [row[mismatches] for row in methods] == ["0"] * len(methods)
    assert all(row[1] == "3,000" for row in methods)
    stages = {row[0]: row[1] for row in table_rows(text, "| stage | seconds |")}
    assert {"read/parse", "partition", "join+group", "write", "checks", "wall"} <= stages.keys()
    assert "| method | addresses |" in result.stdout
    assert (cache / "inputs" / "a3000-d40-s1-f2" / "ballots.csv").is_file()


def read_results(output: Path) -> dict[tuple[str, str], list[str]]:
    """The read benchmark's results table, by engine and case."""
    text = output.read_text()
    assert "<!-- read-benchmark:a3000-d40:start -->" in text
    assert "<!-- read-benchmark:a3000-d40:end -->" in text
    rows = table_rows(text, "| " + " | ".join(RESULTS_HEADER))
    return {(row[0], row[1]): row for row in rows}


READER_CASES = [
    ("layer reader", "cold, from disk"),
    ("layer reader", "cold, in page cache"),
    ("layer reader", "warm"),
]


def test_the_read_benchmark_times_the_reader_without_postgis(tmp_path, cache):
    output = tmp_path / "benchmarks.md"
    result = run_benchmark(
        "benchmarks.read", "--lookups", "10", "--warm-lookups", "300", "--rounds", "2",
        "--no-postgis", "--polars", "--no-clients",
        "--cache", str(cache), "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = read_results(output)
    assert list(results) == READER_CASES
    assert [row[2] for row in results.values()] == ["20", "20", "600"], "two rounds pooled"
    assert "PostGIS was not run" in output.read_text()
    assert "warm p99 under 0.5 ms: " in output.read_text()


def test_the_layouts_benchmark_times_the_same_rows_in_every_layout(tmp_path, cache):
    """Each layout holds the layer's rows, in the layer's order, and is timed for each case;
    the polars version given is the one installed here, so no environment is made."""
    output = tmp_path / "benchmarks.md"
    result = run_benchmark(
        "benchmarks.layouts", "--lookups", "6", "--warm-lookups", "40", "--rounds", "1",
        "--polars", importlib.metadata.version("polars"),
        "--cache", str(cache), "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = output.read_text()
    assert "<!-- layouts-benchmark:a3000-d40:start -->" in text
    rows = table_rows(text, "| layout | MiB |")
    assert [row[0] for row in rows] == list(layouts.LAYOUTS)
    assert all(len(row) == 7 for row in rows), "size, encoding and four cases"
    layer = cache / "read" / "a3000-d40-s1-f2" / "data" / "current_elections_parquet"
    folders = sorted((cache / "layouts" / "a3000-d40-s1-f2").iterdir())
    assert len(folders) == len(layouts.LAYOUTS)
    for folder in folders:
        files = sorted(folder.glob("*.parquet"))
        assert len(files) == 6
        for file in files:
            rows_read = pq.read_table(file).to_pylist()
            assert rows_read == pq.read_table(layer / file.name).to_pylist(), file


@pytest.mark.skipif(
    not postgis_installed(), reason="PostGIS is not installed (postgresql-15-postgis-3)"
)
def test_the_read_benchmark_asks_postgis_the_same_questions_and_gets_the_same_answers(
    tmp_path, cache
):
    """And times the consumers' lookup with polars (the version installed here) on the
    layer's files and on the original's layout, from disk, the page cache and SeaweedFS; and
    both engines from several clients at once, threads and processes."""
    output = tmp_path / "benchmarks.md"
    version = importlib.metadata.version("polars")
    result = run_benchmark(
        "benchmarks.read", "--lookups", "10", "--warm-lookups", "300", "--rounds", "2",
        "--polars", version,
        "--cache", str(cache), "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = read_results(output)
    postgis = [("PostGIS", case) for _, case in READER_CASES]
    consumers = [
        (f"polars {version}, {layout}", case)
        for case in ("cold, from disk", "cold, in page cache", "from S3, get_object")
        for layout in ("our files", "the original's layout")
    ]
    clients = [
        (engine, case)
        for engine in (
            "layer reader, 8 threads", "layer reader, 4 processes",
            "PostGIS, 8 connections from threads", "PostGIS, 4 connections from processes",
        )
        for case in ("cold, in page cache", "warm")
    ]  # fmt: skip
    assert list(results) == READER_CASES + postgis + consumers + clients
    assert [results[key][2] for key in postgis] == ["20", "20", "600"]
    assert {results[key][2] for key in consumers} == {"20"}
    assert [results[key][2] for key in clients] == ["20", "600"] * 4, "every client's lookups"
    text = output.read_text()
    assert "Both engines gave the same addresses and ballot IDs for all 10 cold postcodes" in text
    assert "holding 3,000 addresses" in text
    assert "warm throughput at least 10x PostGIS's: " in text
    assert f"polars {version}, from S3, get_object: our files read as fast" in text
    assert not (cache / "read" / "a3000-d40-s1-f2" / "seaweedfs").exists()


LAYERS_SPEC = InputSpec(3000, 60, seed=1, files=2, boundary_reviews=2, organisations_divisions=40)
LAYERS_SIZE = [
    "--addresses", "3000", "--divisions", "60", "--boundary-reviews", "2", "--files", "2",
    "--organisations-divisions", "40",
]  # fmt: skip
LAYERS_MARKERS = (
    "<!-- layers-benchmark:a3000-d60-r2-o40:start -->",
    "<!-- layers-benchmark:a3000-d60-r2-o40:end -->",
)


@pytest.fixture(scope="module")
def layers_inputs(cache: Path) -> Inputs:
    """The layers benchmark's tiny inputs, generated once into the shared cache."""
    return ensure_inputs(LAYERS_SPEC, cache)


def run_layers_benchmark(cache: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.layers", *LAYERS_SIZE, "--runs", "1",
         "--cache", str(cache), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=HANG,
    )  # fmt: skip


def published_figures(layer: Path) -> list[str]:
    """Addresses with an ID, outcode files and empty ones, read from the published files."""
    files = sorted(layer.glob("*.parquet"))
    tables = [pq.read_table(f) for f in files]
    with_ids = sum(
        pc.sum(pc.greater(pc.list_value_length(t.column(4)), 0)).as_py()
        for t in tables
        if t.num_rows
    )
    return [f"{with_ids:,}", f"{len(files):,}", f"{sum(t.num_rows == 0 for t in tables):,}"]


def test_the_layers_benchmark_bakes_every_layer_and_reports_the_verdicts(
    tmp_path, cache, layers_inputs
):
    output, work = tmp_path / "benchmarks.md", tmp_path / "work"
    start, end = LAYERS_MARKERS
    output.write_text(f"# Benchmarks\n\nKept.\n\n{start}\nAn older run.\n{end}\n\nKept too.\n")
    result = run_layers_benchmark(cache, "--keep", "--work", str(work), "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert "generating inputs" not in result.stderr
    text = output.read_text()
    assert (text.count(start), text.count(end), text.count("Kept")) == (1, 1, 2)
    assert "An older run." not in text
    assert text.index("Kept.") < text.index(start) < text.index(end) < text.index("Kept too.")
    assert start in result.stdout

    runs = table_rows(text, "| " + " | ".join(RUNS_HEADER))
    assert [row[:2] for row in runs] == [
        ["1", "current_elections"],
        ["1", "current_boundary_reviews"],
        ["1", "current_organisations"],
    ]
    walls = {row[1]: float(row[2]) for row in runs}
    assert all(float(cell) >= 0 for row in runs for cell in row[4:])

    published = table_rows(text, "| " + " | ".join(PUBLISHED_HEADER))
    assert [row[1] for row in published] == list(walls)
    for row in published:
        layer = work / "round1" / row[1] / f"{row[1]}_parquet"
        assert row[2] == "3,000"
        assert [row[3].split(" (")[0], row[4], row[5]] == published_figures(layer)

    exports = layers_inputs.boundary_reviews
    rows = sum(len(list(csv.reader(io.StringIO(p.read_text())))) for p in exports.rglob("*.csv"))
    assert f"boundary-reviews export: 2 reviews, 3 division types each, {rows:,} rows" in text
    with layers_inputs.organisations.open(newline="") as lines:
        pieces = sum(1 for _ in csv.reader(lines)) - 1
    assert re.search(rf"organisations generated: [0-9,]+ organisations, [0-9,]+ divisions, "
                     rf"{pieces:,} rows", text)  # fmt: skip
    assert re.search(r"as the organisations bake read it: [0-9,]+ organisations and [0-9,]+ "
                     r"divisions current on [0-9-]{10}, in [0-9,]+ pieces", text)  # fmt: skip

    verdict = re.search(
        r"\*\*Verdict: the boundary-reviews bake costs not more than the current-elections bake: "
        r"(held|NOT held)\.\*\* Best of each: `current_boundary_reviews` ([0-9.]+) s against "
        r"`current_elections` ([0-9.]+) s",
        text,
    )
    assert verdict, text
    reviews, elections = float(verdict[2]), float(verdict[3])
    assert (reviews, elections) == (walls["current_boundary_reviews"], walls["current_elections"])
    if reviews != elections:
        assert verdict[1] == ("held" if reviews < elections else "NOT held")
    verdict = re.search(
        r"\*\*Verdict: the organisations bake costs not more than the current-elections bake: "
        r"(held|NOT held)\.\*\* Best of each: `current_organisations` ([0-9.]+) s against "
        r"`current_elections` ([0-9.]+) s",
        text,
    )
    assert verdict, text
    organisations = float(verdict[2])
    assert organisations == walls["current_organisations"]
    if organisations != elections:
        assert verdict[1] == ("held" if organisations < elections else "NOT held")


def test_the_layers_benchmark_exits_1_when_a_bake_fails(tmp_path, layers_inputs):
    cache = tmp_path / "cache"
    shutil.copytree(layers_inputs.folder, cache / "inputs" / LAYERS_SPEC.key)
    (cache / "inputs" / LAYERS_SPEC.key / "boundary_reviews" / "stray.csv").write_text("x\n")
    output = tmp_path / "benchmarks.md"
    result = run_layers_benchmark(cache, "--output", str(output))
    assert result.returncode == 1
    assert "failed: current_boundary_reviews (round 1)" in result.stderr
    text = output.read_text()
    assert "**Verdict: not measured: a bake failed (see the notes).**" in text
    walls = [row[2] for row in table_rows(text, "| " + " | ".join(RUNS_HEADER))]
    assert walls[1].endswith("(FAILED, exit 1)") and "FAILED" not in walls[0]
    assert "outside its layout" in text


def bake_output(layer: str, id_label: str, input_step: str, joined: str) -> str:
    return f"""\
addressbase_cleaned_raw ...
addressbase_cleaned_raw done (2.0 s)
{input_step} ...
{input_step} done (3.0 s)
addressbase_cleaned_raw_uprns_are_unique ...
  check uprns_are_unique: passed
addressbase_cleaned_raw_uprns_are_unique done (0.5 s)
addressbase_partitioned ...
addressbase_partitioned done (0.25 s)
{joined} ...
{joined} done (5.0 s)
{joined}_uprns_match_addressbase ...
  check uprns_match_addressbase: passed
{joined}_uprns_match_addressbase done (0.75 s)
{layer}_version ...
  check addresses_kept: passed
{layer}_version done (7.0 s)
{layer}_parquet ...
{layer}_parquet done (1.0 s)

Baked {layer} in 21.5 s
  addresses:          3,000 (1,274 with a {id_label})
  outcodes written:   1,025 (8 empty)
Layer: /tmp/x/{layer}_parquet/
"""


@pytest.mark.parametrize(
    ("layer", "id_label", "input_step", "joined"),
    [
        ("current_elections", "ballot", "current_ballots",
         "current_ballots_joined_to_address_base"),
        ("current_boundary_reviews", "boundary review", "boundary_review_divisions",
         "current_boundary_reviews_joined_to_address_base"),
    ],
)  # fmt: skip
def test_a_bake_report_is_read_for_either_layer(layer, id_label, input_step, joined):
    out = bake_output(layer, id_label, input_step, joined)
    measured = Measurement(30.0, 1, 0, False, None, out, "", "proc")
    bake = parse_bake(measured, Path("unused"), stage_of_step(layer_named(layer)))
    assert bake.baked_seconds == 21.5
    assert (bake.addresses, bake.with_ids, bake.outcodes, bake.empty_outcodes) == (
        3000, 1274, 1025, 8,
    )  # fmt: skip
    assert bake.layer == Path(f"/tmp/x/{layer}_parquet/")
    assert bake.stage_seconds == {
        "drop": 2.0, "input": 3.0, "partition": 0.25, "join": 5.0, "version": 7.0,
        "publish": 1.0, "checks": 1.25, "other": 0.0,
    }  # fmt: skip


def test_inputs_generated_before_boundary_reviews_are_still_reused(tmp_path):
    """A cache folder whose marker predates the reviews' fields is complete for a spec without
    reviews (no 30-million-address generation again), and a spec with reviews has its own."""
    spec = InputSpec(3000, 40, 1, 2)
    folder = tmp_path / "inputs" / "a3000-d40-s1-f2"
    files = [f"addressbase_cleaned/addressbase_cleaned_00{i}.csv.gz" for i in range(2)]
    files.append("ballots.csv")
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    old = {"spec": {"addresses": 3000, "divisions": 40, "seed": 1, "files": 2}, "files": files}
    (folder / MARKER).write_text(json.dumps(old))
    inputs = ensure_inputs(spec, tmp_path)
    assert (inputs.folder, inputs.generated) == (folder, False)
    assert InputSpec(3000, 40, 1, 2, boundary_reviews=2).key == "a3000-d40-s1-f2-r2-t3"


FLOORS = [
    "inflate (zlib)", "inflate (ISA-L)", "parse", "inflate + parse (Arrow gzip)",
    "inflate + parse (ISA-L)", "encode outcode files", "write outcode files",
    "encode AddressBase letters", "decode the join's columns", "encode the joined table",
    "ballots WKT",
]  # fmt: skip


def test_the_floors_command_measures_a_floor_for_every_stage(tmp_path, cache):
    inputs = ensure_inputs(InputSpec(3000, 40, 1, 2), cache)
    bake = run_bake(inputs, tmp_path / "data")
    assert bake.measurement.ok, bake.measurement.stderr
    result = run_benchmark(
        "benchmarks.floors", "--cache", str(cache), "--data-root", str(tmp_path / "data"),
        "--scratch", str(tmp_path / "scratch"), "--repeat", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout, "| floor | what it does | wall s | CPU s | MB/s or rows/s |")
    assert [row[0] for row in rows] == FLOORS
    for name, _, wall, cpu, rate in rows:
        assert float(wall) > 0 and float(cpu) > 0, name
        assert float(rate.split(" MB/s")[0].replace(",", "")) > 0, name
    parsed = {row[0]: row[4] for row in rows}
    assert parsed["parse"].endswith(" rows/s") and parsed["ballots WKT"].endswith(" geometries/s")
    assert list((tmp_path / "scratch").iterdir()) == [], "the written files are removed"


def test_the_encode_floor_of_a_layer_of_records_encodes_the_files_its_bake_wrote(tmp_path):
    """The organisations layer's floor encodes that layer's own files: every part it cuts
    from the joined table reads back as the published file of its outcode."""
    root = tmp_path / "data"
    bake(layer="current_organisations", on="2026-12-06", settings=Settings(data_root=str(root)))
    layer = root / "current_organisations_parquet"
    published = sorted(layer.glob("*.parquet"))
    parts = [part for letter in outcode_parts(root, "current_organisations") for part in letter]
    assert len(parts) == len(published) > 100
    ids = layer_named("current_organisations").ids_column
    for part in (part for part in parts if part.num_columns):
        written = pq.read_table(pa.py_buffer(_parquet_bytes(part, ids)))
        outcode = part["outcode"][0].as_py()
        assert written.equals(pq.read_table(layer / f"{outcode}.parquet"))


S3_STORE_MARKERS = (
    "<!-- s3-store-benchmark:a3000-d40-b1:start -->",
    "<!-- s3-store-benchmark:a3000-d40-b1:end -->",
)
LAYER = "current_elections_parquet/"


def seconds_in(cell: str) -> float:
    """The first ``<x> s`` of a cell."""
    return float(re.search(r"([0-9.]+) s\b", cell)[1])


def test_with_a_wait_the_s3_commands_reach_the_server_through_the_proxy(tmp_path, monkeypatch):
    """``--delay-ms``: the S3 commands' endpoint is the latency proxy's, which answers for the
    server at least the delay late; the local commands' environment has no S3 endpoint."""
    seen = {}

    def commands_of(number, store, root, inputs, changed, env, work):
        endpoint = env.get("AWS_ENDPOINT_URL_S3")
        seen[store] = endpoint
        if endpoint:
            client = boto3.client(
                "s3", endpoint_url=endpoint, region_name="eu-west-2",
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            )  # fmt: skip
            started = time.perf_counter()
            seen["buckets"] = [b["Name"] for b in client.list_buckets()["Buckets"]]
            seen["waited"] = time.perf_counter() - started
            seen["server"] = os.environ["AWS_ENDPOINT_URL_S3"]
        return crafted_run(store, 1.0, "", "", "")

    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setattr(s3_store, "run_store", commands_of)
    s3_store.run_rounds(1, None, None, tmp_path, keep=False, delay_ms=30)
    assert seen["local"] is None
    assert seen["S3"] != seen["server"]
    assert any(name.startswith("test-") for name in seen["buckets"])
    assert seen["waited"] >= 0.030


def test_a_run_with_a_wait_is_a_section_of_its_own_that_says_so(tmp_path, cache):
    inputs = ensure_inputs(InputSpec(3000, 40, 1, 2), cache)
    changed = changed_export(inputs.ballots, tmp_path / "changed.csv", 1)
    runs = [crafted_run(store, 1.0, "", "", "") for store in ("local", "S3")]
    section = s3_store_report.Section(
        size="a3000-d40-b1-w20", command="python -m benchmarks.s3_store --delay-ms 20",
        date="today", seaweedfs="4", inputs=inputs, changed=changed, runs=runs, delay_ms=20,
    )  # fmt: skip
    text = s3_store_report.render(section)
    assert text.startswith("<!-- s3-store-benchmark:a3000-d40-b1-w20:start -->")
    assert ", 20 ms a request\n" in text
    assert "reached them 20 ms late" in text


def test_the_s3_store_benchmark_runs_each_step_on_both_stores_and_the_rollback_restores(
    tmp_path, cache
):
    output, work = tmp_path / "benchmarks.md", tmp_path / "work"
    result = run_benchmark(
        "benchmarks.s3_store", "--rounds", "1", "--keep", "--work", str(work),
        "--cache", str(cache), "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = output.read_text()
    start, end = S3_STORE_MARKERS
    assert (text.count(start), text.count(end)) == (1, 1)
    assert start in result.stdout
    rows = {row[0]: row[1:] for row in table_rows(text, "| " + " | ".join(s3_store_report.HEADER))}
    assert list(rows) == list(s3_store_report.STEPS)

    # What the local store holds after the rollback, read here: the first bake, published
    # again byte for byte, and the rebake's version beside it.
    store = LocalLayerStore(root=str(work / "round1" / "local"))
    first, rebake = kept_versions(store, LAYER)
    assert published_manifest(store, LAYER) == first
    published = (work / "round1" / "local" / LAYER).glob("*.parquet")
    assert {path.name: content_hash(path.read_bytes()) for path in published} == first.files
    rebaked = sum(first.files.get(name) != digest for name, digest in rebake.files.items())
    rolled_back = sum(rebake.files.get(name) != digest for name, digest in first.files.items())
    assert rebaked and rolled_back

    files = len(first.files)
    for local_or_s3 in (0, 1):
        assert rows["first bake: publish"][local_or_s3].startswith(f"{files:,} files in ")
        assert rows["rebake: publish"][local_or_s3].startswith(f"{rebaked:,} file")
        assert f"; {rolled_back:,} file" in rows["rollback: wall"][local_or_s3]
    for step in ("first bake: wall", "rebake: wall", "rollback: wall"):
        local, s3, ratio = rows[step]
        assert float(ratio) == pytest.approx(seconds_in(s3) / seconds_in(local), rel=0.05)
    local, s3, ratio = rows["first bake: publish"]
    if seconds_in(local) > 0:
        assert float(ratio) == pytest.approx(seconds_in(s3) / seconds_in(local))
    else:
        assert ratio == "— (local under 0.1 s)"

    assert "round 1, local: the rollback restored the first bake's published files: yes" in text
    assert "round 1, S3: the rollback restored the first bake's published files: yes" in text
    assert (
        f"round 1: the first bakes published the same {files:,} files (names and SHA-256) on "
        "both stores: yes"
    ) in text
    changed = (work / "ballots-changed.csv").read_text()
    assert (
        changed.startswith("election_id,")
        and len(changed) < (cache / "inputs" / "a3000-d40-s1-f2" / "ballots.csv").stat().st_size
    )


BALLOTS = """\
election_id,division_id,geometry,source_table
local.b.y.2027-05-06,E3,"SRID=4326;POLYGON((0 0,3 0,3 3,0 0))",Division
local.a.x.2027-05-06,E1,"SRID=4326;POLYGON((0 0,1 0,1 1,0 0))",Division
parl.c.2027-05-06,,,None
local.c.z.2027-05-06,E4,"SRID=4326;POLYGON((0 0,4 0,4 4,0 0))",Division
local.a.x.2027-05-06,E2,"SRID=4326;POLYGON((0 0,2 0,2 2,0 0))",Division
mayor.d.2027-05-06,E5,"SRID=4326;POLYGON((0 0,5 0,5 5,0 0))",Organisation
"""


def test_the_changed_ballots_export_leaves_out_whole_ballots_evenly_spaced_by_id(tmp_path):
    ballots = tmp_path / "ballots.csv"
    ballots.write_text(BALLOTS)
    lines = BALLOTS.splitlines(keepends=True)

    # Four ballots with an area (parl.c has none), in ID order: local.a.x, local.b.y,
    # local.c.z, mayor.d. Two of them evenly spaced: the first and the third.
    two = changed_export(ballots, tmp_path / "two.csv", 2)
    assert two.left_out == ("local.a.x.2027-05-06", "local.c.z.2027-05-06")
    assert (two.ballots, two.rows, two.rows_kept) == (4, 6, 3)
    assert two.path.read_text() == "".join(lines[i] for i in (0, 1, 3, 6))

    one = changed_export(ballots, tmp_path / "one.csv")
    assert one.left_out == ("local.a.x.2027-05-06",), "one in 50, at least one"
    assert one.path.read_text() == "".join(lines[i] for i in (0, 1, 3, 4, 6))

    # Halfway between those: the second and the fourth.
    other = changed_export(ballots, tmp_path / "other.csv", 2, between=True)
    assert other.left_out == ("local.b.y.2027-05-06", "mayor.d.2027-05-06")
    assert other.path.read_text() == "".join(lines[i] for i in (0, 2, 3, 4, 5))

    with pytest.raises(SystemExit, match="--drop-ballots must be from 1 to 3"):
        changed_export(ballots, tmp_path / "all.csv", 4)


def crafted_version(store: LocalLayerStore, bake_id: str, files: dict[str, bytes]) -> Manifest:
    for name, data in files.items():
        store.write_bytes(version_prefix(LAYER, bake_id) + name, data)
    manifest = Manifest(bake_id=bake_id, files={n: content_hash(d) for n, d in files.items()})
    write_manifest(store, LAYER, manifest)
    return manifest


def test_the_rollback_check_says_yes_only_for_the_first_bakes_files_byte_for_byte(tmp_path):
    store = LocalLayerStore(root=str(tmp_path / "data"))
    first = crafted_version(
        store, "20260101T000000Z-aaaaaaaa", {"AB1.parquet": b"a1", "CD2.parquet": b"c2"}
    )
    crafted_version(
        store, "20260102T000000Z-bbbbbbbb", {"AB1.parquet": b"b1", "CD2.parquet": b"c2"}
    )
    publish(store, LAYER, "20260101T000000Z-aaaaaaaa", silent)
    publish(store, LAYER, "20260102T000000Z-bbbbbbbb", silent)
    assert (
        rollback_restored(store, LAYER, first) == "no: bake 20260102T000000Z-bbbbbbbb is published"
    )

    publish(store, LAYER, "20260101T000000Z-aaaaaaaa", silent)
    assert rollback_restored(store, LAYER, first) == "yes"

    store.write_bytes(LAYER + "EF3.parquet", b"stray")
    assert rollback_restored(store, LAYER, first) == "no: 0 file(s) missing, 1 not the first bake's"
    store.delete([LAYER + "EF3.parquet", LAYER + "CD2.parquet"])
    assert rollback_restored(store, LAYER, first) == "no: 1 file(s) missing, 0 not the first bake's"

    store.write_bytes(LAYER + "CD2.parquet", b"c2")
    store.write_bytes(LAYER + "AB1.parquet", b"b1")
    assert rollback_restored(store, LAYER, first) == (
        "no: 1 file(s) differ from the first bake's (AB1.parquet first)"
    )


def crafted_bake(writing: float, diff: float | None, files: int, publishing: float) -> str:
    bake_id = "20260101T000000Z-aaaaaaaa"
    compared = (
        f"  current_elections_version: comparing with the published layer: 26 of 26 letters "
        f"(100%, {diff} s)\n"
        if diff is not None
        else ""
    )
    return (
        "current_elections_version ...\n"
        "  current_elections_version: writing outcode files: 13 of 26 letters (50%, 0.3 s)\n"
        "  current_elections_version: writing outcode files: 26 of 26 letters "
        f"(100%, {writing} s)\n"
        f"{compared}"
        "current_elections_version done (9.0 s)\n"
        "current_elections_parquet ...\n"
        f"  current_elections_parquet: publishing bake {bake_id}: {files} of {files} files copied "
        f"(100%, {publishing} s)\n"
        "current_elections_parquet done (1.0 s)\n\n"
        "Baked current_elections in 20.0 s\n"
        f"  published:          bake {bake_id}, {files:,} files changed, 0 unchanged\n"
    )


def crafted_run(store: str, wall: float, first: str, rebake: str, rollback: str) -> StoreRun:
    def measured(stdout: str = "", stderr: str = "", code: int = 0) -> Measurement:
        return Measurement(wall, 1, code, False, None, stdout, stderr, "proc")

    return StoreRun(
        round=1,
        store=store,
        root="unused",
        first=s3_store_report.parse_bake(measured(first)),
        rebake=s3_store_report.parse_bake(measured(rebake, code=0 if rebake else 1)),
        rollback=parse_rollback(measured(stderr=rollback)),
    )


def test_the_s3_store_report_puts_each_step_beside_the_other_stores_and_names_those_over_2x():
    rollback = "publishing bake x: 7 of 7 files copied (100%, 0.2 s)\n"
    local = crafted_run("local", 10.0, crafted_bake(1.0, None, 2000, 0.2),
                        crafted_bake(1.0, 0.5, 7, 0.0), rollback)  # fmt: skip
    s3 = crafted_run("S3", 15.0, crafted_bake(1.5, None, 2000, 3.9),
                     "", rollback)  # fmt: skip
    assert local.first.bake_id == "20260101T000000Z-aaaaaaaa"
    assert (local.first.writing_seconds, local.first.diff_seconds) == (1.0, None)
    assert local.rebake.diff_seconds == 0.5

    rows = {row[0]: row[1:] for row in table_rows(round_table(local, s3), "| step |")}
    assert rows["first bake: wall"] == ["10.0 s", "15.0 s", "1.50"]
    assert rows["first bake: writing outcode files"] == ["1.0 s", "1.5 s", "1.50"]
    assert rows["first bake: publish"] == [
        "2,000 files in 0.2 s, 10,000 files/s",
        "2,000 files in 3.9 s, 513 files/s",
        "19.50",
    ]
    assert rows["rebake: wall"] == ["10.0 s", "FAILED (exit 1)", "—"]
    assert rows["rebake: diff"] == ["0.5 s", "—", "—"]
    assert rows["rebake: publish"][0] == "7 files in 0.0 s"
    assert rows["rollback: wall"] == [
        "10.0 s; 7 files copied back in 0.2 s, 35 files/s",
        "15.0 s; 7 files copied back in 0.2 s, 35 files/s",
        "1.50",
    ]
    assert over_target([local, s3]) == [
        "round 1, first bake: publish: 19.50x (S3 3.9 s, local 0.2 s), over the 2x target"
    ]


def test_the_s3_store_benchmark_fails_on_a_failed_command_or_a_wrong_layer(tmp_path, capsys):
    bake, files = crafted_bake(1.0, None, 2, 0.1), {"AB1.parquet": "1", "CD2.parquet": "2"}
    rebake, rollback = crafted_bake(1.0, 0.1, 1, 0.1), "publishing bake x: 1 of 1 files copied"
    local = replace(
        crafted_run("local", 5.0, bake, rebake, rollback), restored="yes", first_files=files
    )
    s3 = replace(crafted_run("S3", 6.0, bake, rebake, rollback), restored="yes", first_files=files)
    assert exit_status([local, s3], tmp_path) == 0
    assert capsys.readouterr().err == ""

    failed = replace(crafted_run("S3", 6.0, bake, "", rollback), rollback=None, restored=None)
    assert exit_status([local, failed], tmp_path) == 1
    assert capsys.readouterr().err == f"failed: S3 (round 1) (logs under {tmp_path})\n"

    wrong = replace(s3, restored="no: bake 20260102T000000Z-bbbbbbbb is published")
    assert exit_status([local, wrong], tmp_path) == 1
    assert capsys.readouterr().err == (
        "check failed: round 1, S3: the rollback restored the first bake's published files: "
        "no: bake 20260102T000000Z-bbbbbbbb is published\n"
    )

    other = replace(s3, first_files={**files, "CD2.parquet": "3"})
    assert exit_status([local, other], tmp_path) == 1
    assert "on both stores: NO" in capsys.readouterr().err


REBAKE_MARKERS = (
    "<!-- rebake-benchmark:a3000-d40-b1:start -->",
    "<!-- rebake-benchmark:a3000-d40-b1:end -->",
)


def ballots_by_uprn(data_root: Path, bake_id: str) -> dict[str, tuple[str, ...]]:
    """Every address of a kept bake with ballots, read from its outcode files, wherever the
    versions hold them (an address in none of them, as in an empty file, has none)."""
    found = {}
    store = LocalLayerStore(root=str(data_root))
    manifest = Manifest.from_json(store.read_bytes(version_prefix(LAYER, bake_id) + MANIFEST))
    for name in manifest.files:
        table = pq.read_table(data_root / manifest.file_key(LAYER, name))
        if table.num_rows:
            found.update(
                zip(
                    table["uprn"].to_pylist(),
                    map(tuple, table["ballot_ids"].to_pylist()),
                    strict=True,
                )
            )
    return found


def test_the_rebake_benchmark_rebakes_on_the_kept_drop_and_reports_each_round(tmp_path, cache):
    output, work = tmp_path / "benchmarks.md", tmp_path / "work"
    result = run_benchmark(
        "benchmarks.rebake", "--rounds", "2", "--keep", "--work", str(work),
        "--cache", str(cache), "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = output.read_text()
    start, end = REBAKE_MARKERS
    assert (text.count(start), text.count(end)) == (1, 1)
    assert start in result.stdout
    rows = {row[0]: row[1:] for row in table_rows(text, "|  | first bake (reference) |")}
    assert rows["ballots export"] == ["generated", "A", "B"]

    # The first bake read the drop; each rebake kept it and read the ballots again.
    logs = [(work / "logs" / name / "stdout.txt").read_text()
            for name in ("first-bake", "round-1", "round-2")]  # fmt: skip
    assert "addressbase_cleaned_raw done" in logs[0]
    for log in logs[1:]:
        assert "addressbase_cleaned_raw" not in log and "addressbase_partitioned" not in log
        assert "current_ballots done" in log
    assert rows["drop"] == [rows["drop"][0], "not run", "not run"]
    assert float(rows["drop"][0]) >= 0

    # Each rebake against the bake before it, read here from the kept versions.
    root = work / "data"
    store = LocalLayerStore(root=str(root))
    versions = kept_versions(store, LAYER)
    assert published_manifest(store, LAYER) == versions[-1]
    pairs = list(itertools.pairwise(versions))
    assert len(pairs) == 2
    encoded = [sum(a.files.get(n) != d for n, d in b.files.items()) for a, b in pairs]
    outcodes = len(versions[0].files)
    assert all(0 < n < outcodes for n in encoded)
    assert rows["files encoded"] == [f"{outcodes:,}", *(f"{n:,}" for n in encoded)]
    assert rows["files reused"] == ["0", *(f"{outcodes - n:,}" for n in encoded)]
    joined = root / layer_named("current_elections").joined.prefix
    letters = len(list(joined.glob("first_letter=*")))
    split = [tuple(map(int, cell.split(", "))) for cell in rows["letters kept, in part, whole"]]
    assert split[0] == (0, 0, letters)
    assert all(sum(kept_in_part_whole) == letters for kept_in_part_whole in split)
    assert rows["addresses joined in part"][0] == "0"
    changed = []
    for before, after in pairs:
        old, new = ballots_by_uprn(root, before.bake_id), ballots_by_uprn(root, after.bake_id)
        changed.append(sum(old.get(u, ()) != new.get(u, ()) for u in old.keys() | new.keys()))
    assert all(changed)
    assert rows["addresses changed"] == ["0", *(f"{n:,}" for n in changed)]
    for number, (before, after) in enumerate(pairs, start=1):
        assert (
            f"- round {number}: published bake {after.bake_id}, this rebake's; kept the drop; "
            f"compared with bake {before.bake_id}, published before it; "
            f"{outcodes - encoded[number - 1]:,} files reused + {encoded[number - 1]:,} encoded "
            f"= {outcodes:,} outcodes"
        ) in text
    walls = [float(cell) for cell in rows["wall s"][1:]]
    assert f"best {min(walls):.1f} s, worst {max(walls):.1f} s, against 25 s" in text


def crafted_rebake(*, drop: bool = False, copied: int = 22, baked: float = 24.0) -> str:
    read = "addressbase_cleaned_raw ...\naddressbase_cleaned_raw done (2.0 s)\n" if drop else ""
    return (
        f"{read}current_ballots ...\ncurrent_ballots done (3.4 s)\n"
        "current_ballots_joined_to_address_base ...\n"
        "current_ballots_joined_to_address_base done (8.2 s)\n"
        "current_ballots_joined_to_address_base_uprns_match_addressbase ...\n"
        "  check uprns_match_addressbase: passed\n"
        "current_ballots_joined_to_address_base_uprns_match_addressbase done (0.5 s)\n"
        "current_elections_version ...\n"
        "  current_elections_version: writing outcode files: 26 of 26 letters (100%, 4.0 s)\n"
        "  current_elections_version: comparing with the published layer: 26 of 26 letters "
        "(100%, 2.0 s)\n"
        "  current_elections_version: bake 20260102T000000Z-bbbbbbbb: 25 outcode files (12 "
        f"empty, {copied} unchanged since the published bake, left where it holds them); 41 "
        "addresses' ballot_ids changed against 20260101T000000Z-aaaaaaaa; pruned 0 old version(s)\n"
        "  current_elections_version: pictures of the bake drawn in 3.5 s\n"
        "  check addresses_kept: passed\n"
        "current_elections_version done (14.5 s)\n"
        "current_elections_parquet ...\n"
        "current_elections_parquet done (0.3 s)\n\n"
        f"Baked current_elections in {baked} s\n"
        "  published:          bake 20260102T000000Z-bbbbbbbb, 3 files changed, 22 unchanged\n"
        "  changed:            41 addresses' ballots, against bake 20260101T000000Z-aaaaaaaa\n"
    )


TWENTY_FIVE = {f"O{i}.parquet": "old" for i in range(25)}
BEFORE = Manifest(bake_id="20260101T000000Z-aaaaaaaa", files=TWENTY_FIVE)
AFTER = Manifest(
    bake_id="20260102T000000Z-bbbbbbbb", files={**TWENTY_FIVE, **dict.fromkeys(
        ["O1.parquet", "O2.parquet", "O3.parquet"], "new")},
)  # fmt: skip


def crafted_rebakes(
    out: str, *, wall: float = 25.0, code: int = 0, after: Manifest = AFTER
) -> list[rebake_report.Bake]:
    def measured(stdout: str, seconds: float, returncode: int = 0) -> Measurement:
        return Measurement(seconds, 1, returncode, False, None, stdout, "the last line", "proc")

    first = rebake_report.parse("first bake", None, measured("", 60.0), None, BEFORE)
    rebaked = rebake_report.parse("round 1", None, measured(out, wall, code), BEFORE, after)
    return [first, rebaked]


def test_a_rebake_is_read_stage_by_stage_and_checked_against_the_manifests(tmp_path, capsys):
    bakes = crafted_rebakes(crafted_rebake())
    bake = bakes[1]
    assert bake.run.stage_seconds == {
        "drop": 0.0, "input": 3.4, "partition": 0.0, "join": 8.2, "version": 14.5,
        "publish": 0.3, "checks": 0.5, "other": 0.0,
    }  # fmt: skip
    assert (bake.run.baked_seconds, bake.pictures_seconds) == (24.0, 3.5)
    assert (bake.progress.writing_seconds, bake.progress.diff_seconds) == (4.0, 2.0)
    assert (bake.copied, bake.encoded, bake.addresses_changed) == (22, 3, 41)
    assert rebake_report.problems(bake) == []
    assert rebake.exit_status(bakes, tmp_path) == 0
    assert capsys.readouterr().err == ""
    cells = {row[0]: row[2] for row in table_rows(rebake_report.round_table(bakes), "|  |")}
    assert (cells["drop"], cells["input"], cells["- pictures"], cells["wall s"]) == (
        "not run", "3.4", "3.5", "25.0",
    )  # fmt: skip
    assert cells["outside the steps"] == f"{25.0 - 3.4 - 8.2 - 0.5 - 14.5 - 0.3:.1f}"
    assert rebake_report.verdict(bakes) == (
        "**Met by every rebake: best 25.0 s, worst 25.0 s, against 25 s.**"
    )


@pytest.mark.parametrize(
    ("out", "after", "problem"),
    [
        (crafted_rebake(drop=True), AFTER,
         "it did not keep the drop: it ran addressbase_cleaned_raw"),
        (crafted_rebake(copied=20), AFTER, "20 files reused + 3 encoded is not 25 outcodes"),
        (crafted_rebake(), replace(AFTER, bake_id="20260103T000000Z-cccccccc"),
         "bake 20260103T000000Z-cccccccc is published, not this rebake's "
         "(20260102T000000Z-bbbbbbbb)"),
    ],
)  # fmt: skip
def test_the_rebake_benchmark_fails_on_a_rebake_that_is_wrong(
    tmp_path, capsys, out, after, problem
):
    bakes = crafted_rebakes(out, after=after)
    assert rebake.exit_status(bakes, tmp_path) == 1
    assert capsys.readouterr().err == f"check failed: round 1: {problem}\n"


def test_the_rebake_benchmark_fails_on_a_failed_command_and_reports_the_target_missed(
    tmp_path, capsys
):
    failed = crafted_rebakes(crafted_rebake(), code=1, after=BEFORE)
    assert rebake.exit_status(failed, tmp_path) == 1
    assert capsys.readouterr().err == f"failed: round 1 (logs under {tmp_path / 'logs'})\n"
    assert rebake_report.verdict(failed) == (
        "**Not measured: no rebake finished (see the failed commands).**"
    )
    slow = crafted_rebakes(crafted_rebake(), wall=25.06)
    assert rebake_report.verdict(slow) == (
        "**Not met: 1 of 1 rebakes over the target; best 25.1 s, worst 25.1 s, against 25 s.**"
    )


def test_the_latency_proxy_holds_back_each_answer_and_passes_it_whole(s3_env):
    bucket = s3_env.new_bucket()
    body = bytes(range(256)) * 400
    s3_env.client().put_object(Bucket=bucket, Key="object", Body=body)
    with latency_proxy.delayed(urlsplit(s3_env.endpoint).port, 300) as port:
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name=os.environ["AWS_REGION"],
        )
        started = time.perf_counter()
        answer = client.get_object(Bucket=bucket, Key="object")["Body"].read()
        waited = time.perf_counter() - started
    assert answer == body
    assert waited >= 0.3


def test_the_s3_requests_benchmark_times_each_request_at_each_delay(tmp_path):
    output = tmp_path / "benchmarks.md"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.s3_requests", "--objects", "30", "--object-kib", "2",
         "--delays", "0,10", "--rounds", "2", "--work", str(tmp_path / "work"),
         "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=HANG,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = table_rows(output.read_text(), "| delay per answer |")
    assert [row[:3] for row in rows] == [
        [delay, request, in_flight]
        for delay in ("0 ms", "10 ms")
        for request in ("PUT (writes)", "GET (read_all)", "COPY (copy_all)")
        for in_flight in ("25", "50", "100")
    ]
    assert all(len(row[4].split(", ")) == 2 for row in rows)
    assert not (tmp_path / "work").exists()
