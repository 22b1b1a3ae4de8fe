"""The ``databaker`` command as a user runs it: exit codes and what it prints."""

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from databaker_tests.conftest import address_line, ballot_line, write_lines

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
