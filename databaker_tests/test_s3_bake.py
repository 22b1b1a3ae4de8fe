"""The same bake on S3: inputs, tables and the layer on a real S3 server (SeaweedFS, loopback).

The bundled sample is uploaded to a bucket, then baked twice from there: once into a local
data root, once through ``databaker bake`` with the data root on S3. Every outcode file must
come out byte for byte the same.
"""

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from databaker.bake import BakeFailed, bake
from databaker.definitions import Settings
from databaker.layers.diff import DIFF, LayerDiff
from databaker.layers.versions import kept_versions, published_manifest, version_prefix
from databaker.resources import LayerStoreError, LocalLayerStore, S3LayerStore
from databaker.sources import (
    SAMPLE_ADDRESSBASE,
    SAMPLE_BALLOTS,
    SAMPLE_BOUNDARY_REVIEWS,
    drop_files,
    export_file,
)

pytestmark = pytest.mark.slow_module

DATABAKER = str(Path(sys.executable).with_name("databaker"))
LAYER = "current_elections_parquet/"
DROP = "drops/2026-02-02/addressbase_cleaned/"


@pytest.fixture
def bucket(s3_env) -> str:
    """A bucket holding the sample drop and ballots export, as producers would deliver them."""
    name = s3_env.new_bucket()
    client = s3_env.client()
    for part in sorted(SAMPLE_ADDRESSBASE.rglob("*.csv.gz")):
        client.upload_file(str(part), name, DROP + part.name)
    client.upload_file(str(SAMPLE_BALLOTS), name, "ballots/ballots.csv")
    client.put_object(Bucket=name, Key=DROP + "_SUCCESS", Body=b"")
    return name


def test_a_bake_with_everything_on_s3_matches_the_local_bake_byte_for_byte(bucket, tmp_path):
    addressbase, ballots = f"s3://{bucket}/{DROP}", f"s3://{bucket}/ballots/ballots.csv"
    local = bake(
        addressbase=addressbase,
        ballots=ballots,
        settings=Settings(data_root=str(tmp_path / "local")),
    )
    result = subprocess.run(
        [DATABAKER, "bake", "--addressbase", addressbase, "--ballots", ballots,
         "--data-root", f"s3://{bucket}/layers", "--engine", "duckdb"],
        capture_output=True, text=True, timeout=600, env=os.environ,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"Layer: s3://{bucket}/layers/{LAYER}"

    on_disk = LocalLayerStore(root=str(tmp_path / "local"))
    on_s3 = S3LayerStore(root=f"s3://{bucket}/layers")
    keys = [key for key in on_disk.list_keys(LAYER) if key.endswith(".parquet")]
    assert len(keys) == local.metadata["current_elections_parquet"]["outcodes"] == 168
    assert on_s3.list_keys(LAYER) == [*keys, f"{LAYER}_manifest.json"]
    assert all(on_s3.read_bytes(key) == on_disk.read_bytes(key) for key in keys)
    assert on_s3.list_keys("_staging/") == []
    (version,) = kept_versions(on_s3, LAYER)
    assert published_manifest(on_s3, LAYER) == version
    assert version.files == published_manifest(on_disk, LAYER).files
    assert local.metadata["addressbase_cleaned_raw"]["addressbase_source"] == addressbase


def test_a_drop_on_s3_is_its_csv_files_in_order(bucket):
    source, files = drop_files(f"s3://{bucket}/{DROP.rstrip('/')}")
    assert source == f"s3://{bucket}/{DROP}"
    assert files == [
        f"s3://{bucket}/{DROP}addressbase_cleaned_000.csv.gz",
        f"s3://{bucket}/{DROP}addressbase_cleaned_001.csv.gz",
    ]


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("drops/2026-03-03/", "AddressBase drop not found"),
        ("drops/2026-02", "AddressBase drop not found"),
        ("drops/2026-04-04/", "holds no .csv or .csv.gz files"),
    ],
)
def test_a_missing_or_empty_drop_on_s3_is_named(bucket, s3_env, location, message):
    s3_env.client().put_object(Bucket=bucket, Key="drops/2026-04-04/_SUCCESS", Body=b"")
    with pytest.raises(Exception, match=message):
        drop_files(f"s3://{bucket}/{location}")


def test_the_ballots_export_on_s3_must_be_one_object(bucket):
    assert export_file(f"s3://{bucket}/ballots/ballots.csv").endswith("ballots.csv")
    with pytest.raises(Exception, match="is a folder"):
        export_file(f"s3://{bucket}/ballots")
    with pytest.raises(Exception, match="ballots export not found"):
        export_file(f"s3://{bucket}/ballots/2027.csv")


def test_a_bad_drop_on_s3_fails_naming_the_object_and_line_and_keeps_the_layer(bucket, s3_env):
    root = f"s3://{bucket}/layers"
    settings = Settings(data_root=root)
    ballots = f"s3://{bucket}/ballots/ballots.csv"
    bake(addressbase=f"s3://{bucket}/{DROP}", ballots=ballots, settings=settings)
    store = S3LayerStore(root=root)
    published = {key: store.read_bytes(key) for key in store.list_keys(LAYER)}
    bad = "drops/2026-02-09/addressbase_cleaned/part.csv"
    s3_env.client().put_object(
        Bucket=bucket,
        Key=bad,
        Body=b'1,"1 Briggate, Leeds",LS1 6AA,SRID=4326;POINT(-1.54 53.797),RD04\n2,oops\n',
    )
    with pytest.raises(Exception, match=rf"s3://{bucket}/{bad}:2: not a CSV record of 5 fields"):
        bake(addressbase=f"s3://{bucket}/{bad}", ballots=ballots, settings=settings)
    assert {key: store.read_bytes(key) for key in store.list_keys(LAYER)} == published
    with pytest.raises(LayerStoreError, match="does not exist"):
        store.read_bytes("rejected/none.csv")
    assert b"not a CSV record" in store.read_bytes("rejected/addressbase_cleaned_raw.csv")


def test_wrong_credentials_stop_the_bake_without_showing_them(bucket, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "a-wrong-secret-key")
    with pytest.raises(BakeFailed) as raised:
        bake(
            addressbase=f"s3://{bucket}/{DROP}",
            ballots=f"s3://{bucket}/ballots/ballots.csv",
            settings=Settings(data_root=str(tmp_path / "data")),
        )
    assert "addressbase_cleaned_raw failed" in str(raised.value)
    assert "a-wrong-secret-key" not in str(raised.value)


def test_a_rebake_on_s3_publishes_only_what_changed_with_the_same_diff_as_on_disk(
    bucket, s3_env, tmp_path
):
    """A layer published, then one ballot withdrawn from the export: the rebake's diff kept
    beside its manifest on S3 is the one the same rebake gives on local files, and only the
    changed outcodes are rewritten. (The first bake is made on disk and uploaded: an S3 bake
    takes several times longer.)"""
    lines = SAMPLE_BALLOTS.read_text(encoding="utf-8").splitlines(keepends=True)
    withdrawn = next(line.split(",")[0] for line in lines if line.startswith("local."))
    kept = [line for line in lines if not line.startswith(withdrawn + ",")]
    (tmp_path / "withdrawn.csv").write_text("".join(kept), encoding="utf-8")
    first, local = tmp_path / "first", tmp_path / "local"
    bake(settings=Settings(data_root=str(first)))
    shutil.copytree(first, local)
    for path in sorted(p for p in first.rglob("*") if p.is_file()):
        key = f"layers/{path.relative_to(first).as_posix()}"
        s3_env.client().upload_file(str(path), bucket, key)
    stores = {
        "local": LocalLayerStore(root=str(local)),
        "s3": S3LayerStore(root=f"s3://{bucket}/layers"),
    }
    diffs, rebakes = {}, {}
    for name, store in stores.items():
        done = bake(
            ballots=str(tmp_path / "withdrawn.csv"),
            settings=Settings(data_root=store.root),
            allow=["upcoming_ballots_gone"],  # its polling day is still ahead: a guard rail
        )
        bake_id = done.metadata["current_elections_version"]["bake_id"]
        found = LayerDiff.from_json(store.read_bytes(version_prefix(LAYER, bake_id) + DIFF))
        diffs[name] = replace(found, bake_id="")
        rebakes[name] = done.metadata["current_elections_parquet"]
    assert diffs["s3"] == diffs["local"]
    assert diffs["s3"].ids_disappearing == [withdrawn] and diffs["s3"].addresses_changed > 0
    changed = len(diffs["s3"].outcodes_changed) + len(diffs["s3"].outcodes_added)
    assert rebakes["s3"]["outcode_files_written"] == changed > 0
    assert rebakes["s3"]["outcode_files_unchanged"] == 168 - changed


def test_the_boundary_reviews_layer_bakes_on_s3_as_it_does_locally(bucket, s3_env, tmp_path):
    """Its export, its tables (the join's scratch table included) and its layer on S3."""
    client = s3_env.client()
    for part in sorted(SAMPLE_BOUNDARY_REVIEWS.rglob("*.csv")):
        key = f"boundary_reviews/{part.relative_to(SAMPLE_BOUNDARY_REVIEWS).as_posix()}"
        client.upload_file(str(part), bucket, key)
    inputs = {
        "layer": "current_boundary_reviews",
        "addressbase": f"s3://{bucket}/{DROP}",
        "boundary_reviews": f"s3://{bucket}/boundary_reviews/",
    }
    bake(**inputs, settings=Settings(data_root=str(tmp_path / "local")))
    done = bake(**inputs, settings=Settings(data_root=f"s3://{bucket}/layers"))

    prefix = "current_boundary_reviews_parquet/"
    assert done.layer == f"s3://{bucket}/layers/{prefix}"
    on_disk = LocalLayerStore(root=str(tmp_path / "local"))
    on_s3 = S3LayerStore(root=f"s3://{bucket}/layers")
    keys = [key for key in on_disk.list_keys(prefix) if key.endswith(".parquet")]
    assert len(keys) == 168
    assert all(on_s3.read_bytes(key) == on_disk.read_bytes(key) for key in keys)
    assert published_manifest(on_s3, prefix).addresses_per_id.keys() == {"952", "955"}
    assert on_s3.list_keys("_staging/") == []
