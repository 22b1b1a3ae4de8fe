"""The bundled sample baked through the whole graph with the UI's default configuration,
compared with an independent brute-force computation in plain Python and shapely."""

import csv
import gzip
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely

from databaker.sources import SAMPLE_ADDRESSBASE, SAMPLE_BALLOTS
from databaker_tests.conftest import asset_runner, check_evaluations

POINT = re.compile(r"SRID=4326;POINT\((\S+) (\S+)\)")


def brute_force_layer(drop: Path, ballots: Path) -> dict[str, list[tuple]]:
    """Expected outcode files: every address tested against every ballot polygon."""
    addresses = []
    for part in sorted(p for p in drop.rglob("*") if p.name.endswith((".csv", ".csv.gz"))):
        opener = gzip.open if part.name.endswith(".gz") else open
        with opener(part, "rt", newline="", encoding="utf-8") as file:
            for uprn, address, postcode, location, _type in csv.reader(file):
                lon, lat = map(float, POINT.fullmatch(location).groups())
                addresses.append((uprn, address, postcode, lon, lat))
    xs = np.array([a[3] for a in addresses])
    ys = np.array([a[4] for a in addresses])
    ids: list[set[str]] = [set() for _ in addresses]
    with open(ballots, newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            if row["source_table"] == "None":
                continue
            shape = shapely.from_wkt(re.sub(r"^SRID=\d+;", "", row["geometry"]))
            shape = shape if shape.is_valid else shapely.make_valid(shape)
            for index in np.flatnonzero(shapely.contains_xy(shape, xs, ys)):
                ids[index].add(row["election_id"])
    outcodes: dict[str, list[tuple]] = defaultdict(list)
    for (uprn, address, postcode, _lon, _lat), found in zip(addresses, ids, strict=True):
        outcode = postcode.split(" ")[0]
        outcodes[outcode].append((uprn, address, postcode, str(drop), sorted(found), outcode))
    return {
        outcode: sorted(rows, key=lambda r: (r[2], r[0])) if any(r[4] for r in rows) else []
        for outcode, rows in outcodes.items()
    }


@pytest.fixture(scope="module")
def sample_bake(tmp_path_factory):
    data_root = tmp_path_factory.mktemp("sample") / "data"
    result = asset_runner(data_root)()  # no run config: the defaults the Dagster UI uses
    return data_root, result


def test_the_sample_bakes_with_default_configuration_and_every_check_passes(sample_bake):
    _, result = sample_bake
    assert result.success
    checks = check_evaluations(result)
    assert set(checks) == {
        "uprns_are_unique",
        "single_addressbase_source",
        "uprns_match_addressbase",
        "addresses_kept",
        "ballots_keep_their_addresses",
        "coverage_steady",
        "upcoming_ballots_kept",
    }
    assert all(check.passed for check in checks.values())


def test_the_baked_layer_matches_a_brute_force_computation(sample_bake):
    data_root, _ = sample_bake
    expected = brute_force_layer(SAMPLE_ADDRESSBASE, SAMPLE_BALLOTS)
    layer = data_root / "current_elections_parquet"
    baked = {}
    for path in sorted(layer.glob("*.parquet")):
        table = pq.read_table(path)
        baked[path.stem] = [tuple(row.values()) for row in table.to_pylist()]
    assert baked.keys() == expected.keys()
    mismatched = [outcode for outcode in expected if baked[outcode] != expected[outcode]]
    assert mismatched == []


def test_the_sample_exercises_what_the_layer_must_handle(sample_bake):
    """Guards the sample itself: a bake of it covers the cases the contract names."""
    expected = brute_force_layer(SAMPLE_ADDRESSBASE, SAMPLE_BALLOTS)
    rows = [row for rows in expected.values() for row in rows]
    assert any("," in r[1] for r in rows) and any('"' in r[1] for r in rows)
    assert any(not rows for rows in expected.values()), "an outcode without ballots"
    assert any(not r[4] for r in rows), "an address outside every ballot"
    assert any(len(r[4]) >= 2 for r in rows), "nested or overlapping ballots"
