"""The ``databaker`` command as a user runs it: exit codes and what it prints."""

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databaker.cli import main
from databaker.layers.outcode_files import _parquet_bytes
from databaker.layers.versions import publish
from databaker.resources import LocalLayerStore
from databaker.resources.lease import LeaseHolder
from databaker_tests.conftest import address_line, ballot_line, write_lines
from databaker_tests.test_layer_versions import LAYER, bake_version

pytestmark = pytest.mark.slow_module

DATABAKER = str(Path(sys.executable).with_name("databaker"))


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([DATABAKER, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def inputs(folder: Path, extra_address: str | None = None) -> tuple[Path, Path]:
    lines = [address_line("1", "1 Briggate, Leeds", "LS1 6AA", -1.54, 53.797)]
    drop = write_lines(
        folder / "drop" / "part.csv", lines + ([extra_address] if extra_address else [])
    )
    ballots = write_lines(
        folder / "ballots.csv",
        [
            "election_id,division_id,geometry,source_table",
            ballot_line(
                "local.leeds.city.2027-05-06",
                "E05001",
                "POLYGON((-1.6 53.7,-1.5 53.7,-1.5 53.9,-1.6 53.9,-1.6 53.7))",
                "Division",
            ),
        ],
    )
    return drop.parent, ballots


def test_bake_prints_progress_a_summary_and_where_the_layer_is(tmp_path):
    drop, ballots = inputs(tmp_path)
    result = run(
        "bake", "--addressbase", str(drop), "--ballots", str(ballots), "--data-root", "out",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    layer = tmp_path / "out" / "current_elections_parquet"
    assert result.stdout.strip().splitlines()[-1] == f"Layer: {layer}/"
    assert "addressbase_cleaned_raw done" in result.stdout
    assert "addresses:          1 (1 with a ballot)" in result.stdout
    assert not re.search(r"\b[A-Z][a-z]\w*Warning\b", result.stderr), result.stderr
    assert pq.read_table(layer / "LS1.parquet").column("ballot_ids").to_pylist() == [
        ["local.leeds.city.2027-05-06"]
    ]


def test_bake_exits_non_zero_naming_the_bad_line(tmp_path):
    drop, ballots = inputs(tmp_path, extra_address="2,2 Road,LS1 6AB,POINT(x y),RD04")
    result = run(
        "bake", "--addressbase", str(drop), "--ballots", str(ballots), "--data-root", "out",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert f'{drop / "part.csv"}:2: location "POINT(x y)" is not' in result.stderr
    assert "The published layer was not changed (nothing is published)" in result.stderr
    assert not (tmp_path / "out" / "current_elections_parquet").exists()


def test_a_bake_that_keeps_the_addressbase_reads_no_drop_and_takes_the_new_ballots(tmp_path):
    """The nightly case from the command line: only the ballots changed, so the drop is not
    read again. Its file is changed on disk here; the layer shows the drop as first baked."""
    drop, ballots = inputs(tmp_path)
    root = ["--data-root", "out"]
    first = run("bake", "--addressbase", str(drop), "--ballots", str(ballots), *root, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    write_lines(drop / "part.csv", [address_line("1", "1 Briggate", "LS1 6AA", -1.0, 52.0)])
    ward = "POLYGON((-1.55 53.79,-1.53 53.79,-1.53 53.8,-1.55 53.8,-1.55 53.79))"
    with ballots.open("a") as export:
        export.write(ballot_line("local.leeds.ward.2027-05-06", "E05002", ward, "Division") + "\n")
    again = run("bake", "--keep-addressbase", "--ballots", str(ballots), *root, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "addressbase_cleaned_raw" not in again.stdout
    assert f"AddressBase:        kept as baked, {drop}" in again.stdout
    assert "changed:            1 addresses' ballots" in again.stdout
    layer = pq.read_table(tmp_path / "out" / "current_elections_parquet" / "LS1.parquet")
    assert layer.column("ballot_ids").to_pylist() == [
        ["local.leeds.city.2027-05-06", "local.leeds.ward.2027-05-06"]
    ]


def test_keeping_the_addressbase_needs_one_baked_and_no_drop_named(tmp_path, capsys):
    assert main(["bake", "--keep-addressbase", "--data-root", str(tmp_path / "none")]) == 2
    assert "no AddressBase is baked in" in capsys.readouterr().err
    assert main(["bake", "--keep-addressbase", "--addressbase", str(tmp_path)]) == 2
    assert "reads an AddressBase drop or keeps the one baked, not both" in capsys.readouterr().err


def test_generate_writes_a_drop_and_an_export_that_bake_accepts(tmp_path):
    made = run(
        "generate", "--addresses", "3000", "--divisions", "12", "--seed", "7", "--out", "gen",
        cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    baked = run(
        "bake", "--addressbase", "gen/addressbase_cleaned", "--ballots", "gen/ballots.csv",
        "--data-root", "out", cwd=tmp_path,
    )  # fmt: skip
    assert baked.returncode == 0, baked.stderr
    assert "addresses:          3,000" in baked.stdout


def test_bake_on_athena_without_its_settings_names_what_is_missing(tmp_path):
    result = run("bake", "--engine", "athena", "--data-root", "out", cwd=tmp_path)
    assert result.returncode == 2
    assert "DATABAKER_ATHENA_DATABASE is required with DATABAKER_ENGINE=athena" in result.stderr
    assert "DATABAKER_DATA_ROOT must be an s3:// URL with DATABAKER_ENGINE=athena" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_bad_setting_in_the_environment_is_named_not_a_traceback(tmp_path):
    env = {**os.environ, "DATABAKER_SENSOR_INTERVAL_SECONDS": "often"}
    result = subprocess.run(
        [DATABAKER, "bake"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    assert "DATABAKER_SENSOR_INTERVAL_SECONDS must be a whole number" in result.stderr
    assert "Traceback" not in result.stderr


BALLOT = "local.leeds.city.2027-05-06"


def outcode_file() -> bytes:
    """LS1 as the bake writes it: two addresses of LS1 6AA in one ballot."""
    table = pa.table(
        {
            "uprn": ["1", "2"],
            "address": ["1 Briggate, Leeds", "2 Briggate, Leeds"],
            "postcode": ["LS1 6AA", "LS1 6AA"],
            "addressbase_source": ["/drops/2026-11", "/drops/2026-11"],
            "ballot_ids": [[BALLOT], [BALLOT]],
            "outcode": ["LS1", "LS1"],
        }
    )
    return _parquet_bytes(table, "ballot_ids")


def published(data_root: Path, *, manifest: bool = True) -> Path:
    """A data root whose layer holds LS1 (and its manifest, unless a first publish is under
    way: then the marker only); the layer's folder."""
    layer = data_root / "current_elections_parquet"
    layer.mkdir(parents=True)
    (layer / "LS1.parquet").write_bytes(outcode_file())
    marker = "_manifest.json" if manifest else "_publishing.json"
    (layer / marker).write_text('{"bake_id": "20261127T014500Z-abcdefgh"}')
    return layer


def lookup(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["lookup", *args])
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def test_lookup_answers_from_a_published_layer(tmp_path, capsys):
    published(tmp_path)
    code, out, err = lookup(capsys, "ls16aa", "--data-root", str(tmp_path))
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"LS1 6AA: 2 address(es), 1 ballot(s): {BALLOT}"
    code, out, _ = lookup(capsys, "LS2 7AA", "--data-root", str(tmp_path))
    assert code == 1
    assert out == f"LS2 7AA: no such outcode in this layer: {tmp_path}/current_elections_parquet/\n"


@pytest.mark.parametrize("first_publish", [False, True], ids=["nothing there", "first publish"])
def test_lookup_without_a_published_layer_exits_4(tmp_path, capsys, first_publish):
    """Not "no such outcode": nothing is published there (yet). A first publish under way has
    copied some outcode files in but not written the manifest."""
    if first_publish:
        published(tmp_path, manifest=False)
    code, out, err = lookup(capsys, "LS2 7AA", "--data-root", str(tmp_path))
    assert (code, out) == (4, "")
    assert err == (
        f"databaker: no published layer at {tmp_path}/current_elections_parquet: there is no "
        "_manifest.json (nothing published there yet, or its first publish is under way)\n"
    )


def damage_a_page(data: bytes) -> bytes:
    """The file with its address column's first page header overwritten: the footer reads."""
    column = pq.ParquetFile(pa.BufferReader(data)).metadata.row_group(0).column(1)
    assert column.path_in_schema == "address"
    start = column.data_page_offset
    return data[:start] + b"\xff" * 12 + data[start + 12 :]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda path: path.write_bytes(b""), "empty (0 bytes), not a parquet file"),
        (lambda path: path.unlink() or path.mkdir(), "a directory, not an outcode file"),
        (
            lambda path: path.write_bytes(path.read_bytes()[:-20]),
            "Parquet magic bytes not found in footer. Either the file is corrupted or this is "
            "not a parquet file.",
        ),
        (
            lambda path: path.write_bytes(damage_a_page(path.read_bytes())),
            "Deserializing page header failed.",
        ),
        (
            lambda path: path.write_bytes(pq_bytes(pa.table({"uprn": ["1"]}))),
            "not an outcode file: it has no address, postcode, ballot_ids column",
        ),
    ],
    ids=["zero bytes", "a directory", "truncated", "a damaged page", "other columns"],
)
def test_lookup_of_an_unreadable_outcode_file_exits_5_naming_it(tmp_path, capsys, damage, reason):
    layer = published(tmp_path)
    damage(layer / "LS1.parquet")
    code, out, err = lookup(capsys, "LS1 6AA", "--data-root", str(tmp_path))
    assert (code, out) == (5, "")
    assert err.startswith(f"databaker: cannot read the layer: {layer / 'LS1.parquet'}: ")
    assert err.endswith(f"{reason}\n")
    assert err.count("\n") == 1


def pq_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def test_lookup_of_an_outcode_file_it_may_not_read_exits_5_without_a_traceback(tmp_path):
    """A real permission error, in a process of its own: root reads any file, so a root test
    run drops the capabilities that let it (as a service's user would not have them)."""
    layer = published(tmp_path)
    (layer / "LS1.parquet").chmod(0)
    drop = ["--bounding-set=-dac_override,-dac_read_search"]
    as_user = [shutil.which("setpriv") or "setpriv", *drop] if os.geteuid() == 0 else []
    result = subprocess.run(
        [*as_user, DATABAKER, "lookup", "LS1 6AA", "--data-root", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (5, "")
    assert result.stderr == (
        f"databaker: cannot read the layer: {layer / 'LS1.parquet'}: permission denied\n"
    )


def test_lookup_on_s3_that_s3_refuses_exits_5_naming_the_file(capsys, s3_env, monkeypatch):
    bucket = s3_env.new_bucket()
    s3_env.client().put_object(
        Bucket=bucket, Key="data/current_elections_parquet/LS1.parquet", Body=outcode_file()
    )
    root = f"s3://{bucket}/data"
    assert lookup(capsys, "LS1 6AA", "--data-root", root)[0] == 0
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    code, out, err = lookup(capsys, "LS1 6AA", "--data-root", root)
    assert (code, out) == (5, "")
    assert err.startswith(
        f"databaker: cannot read the layer: {root}/current_elections_parquet/LS1.parquet: "
    )
    assert "ACCESS_DENIED" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["bake", "--max-rejected-rows", "-1"], "--max-rejected-rows: -1 is less than 0"),
        (["bake", "--max-rejected-share", "1.5"], "--max-rejected-share: 1.5 is more than 1"),
        (["bake", "--max-rejected-share", "-0.1"], "--max-rejected-share: -0.1 is less than 0"),
        (["bake", "--lease-wait", "-1"], "--lease-wait: -1 is less than 0"),
        (["rollback", "--to", "1", "--lease-wait", "-1"], "--lease-wait: -1 is less than 0"),
    ],
    ids=["negative rows", "share over 1", "negative share", "negative wait", "rollback wait"],
)
def test_an_option_out_of_its_range_is_a_usage_error(tmp_path, capsys, args, error):
    """Refused before anything runs (exit 2, the usage and one line naming the option), not
    after a bake has started with a value its configuration then rejects."""
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--data-root", str(tmp_path / "data")])
    printed = capsys.readouterr()
    assert (stopped.value.code, printed.out) == (2, "")
    assert printed.err.startswith(f"usage: databaker {args[0]} ")
    assert printed.err.splitlines()[-1] == f"databaker {args[0]}: error: argument {error}"
    assert not (tmp_path / "data").exists()


def kept_bakes(data_root: Path) -> Path:
    """A data root with bake 1 published and bake 2 kept beside it; the layer's folder."""
    store = LocalLayerStore(root=str(data_root))
    bake_version(store, "1", {"LS1.parquet": outcode_file()})
    publish(store, LAYER, "1")
    bake_version(store, "2", {"LS1.parquet": b"bake 2's LS1"})
    return data_root / LAYER


@contextmanager
def read_only(*folders: Path) -> Iterator[None]:
    """The folders' entries cannot be added, removed or renamed while the block runs."""
    for folder in folders:
        folder.chmod(0o555)
    try:
        yield
    finally:
        for folder in folders:
            folder.chmod(0o755)


def as_unprivileged(*command: str) -> subprocess.CompletedProcess:
    """Run ``command`` so that permissions bind it: root keeps its user but loses the
    capabilities that let it write anywhere (as a service's user would not have them)."""
    drop = ["--bounding-set=-dac_override,-dac_read_search"]
    as_user = [shutil.which("setpriv") or "setpriv", *drop] if os.geteuid() == 0 else []
    return subprocess.run([*as_user, *command], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("whole_root", [True, False], ids=["read-only root", "read-only layer"])
def test_rollback_where_it_may_not_write_exits_5_in_one_line(tmp_path, whole_root):
    """Refused where it takes the data root's lease (a read-only root), or where it begins to
    publish (the layer's folder only): one line naming where, the layer as it was."""
    data_root = tmp_path / "data"
    layer = kept_bakes(data_root)
    before = {path.name: path.read_bytes() for path in layer.iterdir()}
    everywhere = [data_root, *(path for path in data_root.rglob("*") if path.is_dir())]
    folders = everywhere if whole_root else [layer]
    with read_only(*folders):
        result = as_unprivileged(DATABAKER, "rollback", "--to", "2", "--data-root", str(data_root))
    assert (result.returncode, result.stdout) == (5, ""), result.stderr
    (line,) = result.stderr.splitlines()
    where = f"cannot take the lease on {data_root}: " if whole_root else f"'{layer}/.tmp-"
    assert line.startswith("databaker: ") and where in line
    assert "Permission denied" in line
    assert {path.name: path.read_bytes() for path in layer.iterdir()} == before


def test_a_bake_on_a_root_it_may_not_write_exits_5_having_touched_nothing(tmp_path):
    data_root = tmp_path / "data"
    layer = kept_bakes(data_root)
    before = {path.name: path.read_bytes() for path in layer.iterdir()}
    everywhere = [data_root, *(path for path in data_root.rglob("*") if path.is_dir())]
    with read_only(*everywhere):
        result = as_unprivileged(DATABAKER, "bake", "--data-root", str(data_root))
    assert result.returncode == 5, result.stderr
    assert "Traceback" not in result.stderr
    outcome, reason, *_ = result.stderr.strip().splitlines()
    assert outcome == f"Bake failed. Nothing was baked; the layer at {layer}/ was not touched."
    assert reason.startswith(f"cannot take the lease on {data_root}: [Errno 13] Permission")
    assert {path.name: path.read_bytes() for path in layer.iterdir()} == before


def test_a_bake_or_rollback_while_another_holds_the_data_root_exits_3_naming_it(tmp_path, capsys):
    """With ``--lease-wait 0`` they refuse at once, naming the holder, and touch nothing."""
    data_root = tmp_path / "data"
    layer = kept_bakes(data_root)
    before = {path.name: path.read_bytes() for path in layer.iterdir()}
    holder = LeaseHolder("run 1a2b3c4d of current_elections_layer")
    with LocalLayerStore(root=str(data_root)).leased(holder) as held:
        baked = main(["bake", "--data-root", str(data_root), "--lease-wait", "0"])
        bake_printed = capsys.readouterr()
        rolled_back = main(
            ["rollback", "--to", "2", "--data-root", str(data_root), "--lease-wait", "0"]
        )
        rollback_printed = capsys.readouterr()
    busy = f"another bake holds the data root {data_root}: {held.describe()}"
    assert baked == 3
    assert bake_printed.err.splitlines()[1:3] == [
        f"Bake failed. Nothing was baked; the layer at {layer}/ was not touched.",
        f"{busy}; one bake at a time per data root",
    ]
    assert "Traceback" not in bake_printed.err
    assert (rolled_back, rollback_printed.out) == (3, "")
    assert rollback_printed.err == f"databaker: {busy}; one bake at a time per data root\n"
    assert {path.name: path.read_bytes() for path in layer.iterdir()} == before
