"""The boundary-reviews layer as its consumers see it: baked from the bundled sample, read with
polars the way the aggregator API reads it, each address's reviews as the definition gives
them (computed here from the export's CSV files and the drop with shapely), and the layer's
versions, guard rails and rollback from the shared machinery.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import shapely

from databaker.bake import BakeFailed, bake
from databaker.cli import main
from databaker.definitions import Settings
from databaker.layers.diff import DIFF, LayerDiff
from databaker.layers.versions import published_manifest, version_prefix
from databaker.resources import LocalLayerStore
from databaker.sources import SAMPLE_ADDRESSBASE, SAMPLE_BOUNDARY_REVIEWS

LAYER = "current_boundary_reviews"
DETAILS = (
    "consultation_url",
    "legislation_title",
    "effective_date",
    "organisation_name",
    "organisation_official_name",
    "organisation_gss",
)
CHANGE_KEYS = [
    "division_type",
    "old_division_slug",
    "old_division_name",
    "old_division_official_identifier",
    "old_divisionset_pmtiles_url",
    "new_division_slug",
    "new_division_name",
    "new_division_official_identifier",
    "new_divisionset_pmtiles_url",
    "change_scenario",
]
COLUMNS = [
    "slug",
    "status",
    "latest_event",
    "consultation_url",
    "legislation_title",
    "effective_date",
    "review_created",
    "review_modified",
    "organisation_name",
    "organisation_official_name",
    "organisation_gss",
    "divisionset_id",
    "divisionset_pmtiles_url",
    "division_slug",
    "division_name",
    "division_official_identifier",
    "division_boundary_wkt",
    "boundary_review_id",
    "divisionset_generation",
    "division_type",
]


def read_addresses() -> dict[str, tuple[str, float, float]]:
    """UPRN: (postcode, lon, lat) of every address of the sample drop."""
    found = {}
    for part in sorted(SAMPLE_ADDRESSBASE.rglob("*.csv.gz")):
        with gzip.open(part, "rt", encoding="utf-8", newline="") as lines:
            for uprn, _, postcode, location, _ in csv.reader(lines):
                lon, lat = location.removeprefix("SRID=4326;POINT(").rstrip(")").split()
                found[uprn] = (postcode, float(lon), float(lat))
    return found


def read_export(folder: Path) -> list[dict[str, str]]:
    """Every row of the export, in file then line order, with its folder's values."""
    rows = []
    for part in sorted(folder.rglob("*.csv")):
        review, generation, kind = (p.split("=")[1] for p in part.relative_to(folder).parts[:3])
        with part.open(encoding="utf-8", newline="") as lines:
            for record in csv.reader(lines):
                row = dict(zip(COLUMNS, record, strict=True))
                assert (row["boundary_review_id"], row["divisionset_generation"]) == (
                    review,
                    generation,
                )
                assert row["division_type"] == kind
                rows.append(row)
    return rows


def expected_layer(folder: Path) -> dict[str, list[dict]]:
    """UPRN: its reviews, by the definition: for each (review, type), an address takes part
    when a piece of an old and a piece of a new division contain it; the scenario compares
    slugs and the sets of taking-part addresses of the two divisions."""
    addresses = read_addresses()
    uprns = list(addresses)
    x = np.array([addresses[u][1] for u in uprns])
    y = np.array([addresses[u][2] for u in uprns])
    rows = read_export(folder)
    inside: dict[tuple, set[str]] = defaultdict(set)
    first: dict[tuple, dict] = {}
    for row in rows:
        key = (
            int(row["boundary_review_id"]),
            row["division_type"],
            row["divisionset_generation"],
            row["division_slug"],
        )
        first.setdefault(key, row)
        shape = shapely.from_wkt(row["division_boundary_wkt"])
        hits = np.flatnonzero(shapely.contains_xy(shape, x, y))
        inside[key].update(uprns[i] for i in hits)
    per_address: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for review, kind in sorted({(k[0], k[1]) for k in inside}):
        old = {k[3]: inside[k] for k in inside if k[:3] == (review, kind, "old")}
        new = {k[3]: inside[k] for k in inside if k[:3] == (review, kind, "new")}
        pairs = {
            (o, n, u) for o, olds in old.items() for n, news in new.items() for u in olds & news
        }
        taking_old = defaultdict(set)
        taking_new = defaultdict(set)
        for o, n, u in pairs:
            taking_old[o].add(u)
            taking_new[n].add(u)
        for o, n, u in sorted(pairs):
            same_boundary = taking_old[o] == taking_new[n]
            same_name = o == n
            scenario = {
                (True, True): "NO_CHANGE",
                (True, False): "NAME_CHANGED",
                (False, True): "BOUNDARY_CHANGED",
                (False, False): "BOTH_CHANGED",
            }[(same_boundary, same_name)]
            was, now = first[(review, kind, "old", o)], first[(review, kind, "new", n)]
            per_address[u][review].append(
                {
                    "division_type": kind,
                    "old_division_slug": o,
                    "old_division_name": was["division_name"],
                    "old_division_official_identifier": was["division_official_identifier"],
                    "old_divisionset_pmtiles_url": was["divisionset_pmtiles_url"],
                    "new_division_slug": n,
                    "new_division_name": now["division_name"],
                    "new_division_official_identifier": now["division_official_identifier"],
                    "new_divisionset_pmtiles_url": now["divisionset_pmtiles_url"],
                    "change_scenario": scenario,
                }
            )
    details = {}
    for row in rows:
        details.setdefault(int(row["boundary_review_id"]), {k: row[k] for k in DETAILS})
    return {
        uprn: [
            {
                "boundary_review_id": review,
                "boundary_review_details": details[review],
                "changes": sorted(
                    changes,
                    key=lambda c: (
                        c["division_type"],
                        c["old_division_slug"],
                        c["new_division_slug"],
                    ),
                ),
            }
            for review, changes in sorted(reviews.items())
        ]
        for uprn, reviews in per_address.items()
    }


@pytest.fixture(scope="module")
def baked(tmp_path_factory) -> Path:
    """The sample's boundary-reviews layer, baked once."""
    root = tmp_path_factory.mktemp("reviews") / "data"
    bake(layer=LAYER, settings=Settings(data_root=str(root)))
    return root


def read_with_polars(layer: Path) -> dict[str, list[dict]]:
    """Every address of the layer as the aggregator API reads it: ``pl.read_parquet`` of the
    outcode file, a filter by postcode, then ``json.loads`` of each element."""
    found = {}
    for path in sorted(layer.glob("*.parquet")):
        frame = pl.read_parquet(path)
        if frame.width == 0:
            assert frame.height == 0  # the empty file: no address has a review here
            continue
        assert frame.schema == pl.Schema(
            {
                "uprn": pl.String,
                "address": pl.String,
                "postcode": pl.String,
                "addressbase_source": pl.String,
                "boundary_reviews": pl.List(pl.String),
                "outcode": pl.String,
            }
        )
        for postcode in frame["postcode"].unique().to_list():
            for row in frame.filter(pl.col("postcode") == postcode).iter_rows(named=True):
                found[row["uprn"]] = [json.loads(text) for text in row["boundary_reviews"]]
    return found


def test_the_aggregator_reads_each_address_with_the_reviews_the_definition_gives(baked):
    read = read_with_polars(baked / "current_boundary_reviews_parquet")
    expected = expected_layer(SAMPLE_BOUNDARY_REVIEWS)
    assert {u: r for u, r in read.items() if r} == expected
    scenarios = {
        change["change_scenario"]
        for reviews in read.values()
        for review in reviews
        for change in review["changes"]
    }
    assert scenarios == {"NO_CHANGE", "NAME_CHANGED", "BOUNDARY_CHANGED", "BOTH_CHANGED"}


def test_each_element_is_compact_json_with_the_contract_s_keys_in_order(baked):
    frame = pl.concat(
        [
            pl.read_parquet(path)
            for path in sorted((baked / "current_boundary_reviews_parquet").glob("*.parquet"))
            if pl.read_parquet_schema(path)
        ]
    )
    texts = frame["boundary_reviews"].explode().drop_nulls().to_list()
    assert texts
    for text in texts:
        review = json.loads(text)
        assert list(review) == ["boundary_review_id", "boundary_review_details", "changes"]
        assert isinstance(review["boundary_review_id"], int)
        assert list(review["boundary_review_details"]) == list(DETAILS)
        assert all(list(change) == CHANGE_KEYS for change in review["changes"])
        assert text == json.dumps(review, separators=(",", ":"), ensure_ascii=False)
    assert frame["boundary_reviews"].null_count() == 0
    assert frame.sort(["postcode", "uprn"])["uprn"].to_list() == frame["uprn"].to_list()


def test_lookup_prints_the_reviews_parsed(baked, capsys):
    read = read_with_polars(baked / "current_boundary_reviews_parquet")
    uprn = min(u for u, reviews in read.items() if reviews and len(reviews[0]["changes"]) > 1)
    postcode = read_addresses()[uprn][0]
    root = ["--data-root", str(baked)]
    assert main(["lookup", "--layer", LAYER, postcode, "--uprn", uprn, "--json", *root]) == 0
    answer = json.loads(capsys.readouterr().out)
    (address,) = answer["addresses"]
    assert address["boundary_reviews"] == read[uprn]
    assert answer["boundary_review_ids"] == [str(r["boundary_review_id"]) for r in read[uprn]]
    assert main(["lookup", "--layer", LAYER, postcode, *root]) == 0
    table = capsys.readouterr().out
    change = read[uprn][0]["changes"][0]
    assert f"{change['old_division_slug']} -> {change['new_division_slug']}" in table


def test_a_review_that_reaches_no_address_refuses_the_bake_unless_allowed(tmp_path):
    export = tmp_path / "export"
    shutil.copytree(SAMPLE_BOUNDARY_REVIEWS, export)
    # Review 955 loses its new divisionset: no address lies inside an old and a new division.
    shutil.rmtree(export / "boundary_review_id=955" / "divisionset_generation=new")
    settings = Settings(data_root=str(tmp_path / "data"))

    with pytest.raises(BakeFailed) as refused:
        bake(layer=LAYER, boundary_reviews=str(export), settings=settings)
    assert "check reviews_reach_addresses on current_boundary_reviews_version failed" in (
        refused.value.report
    )
    assert "reach no address" in refused.value.report and ": 955" in refused.value.report
    assert not (tmp_path / "data" / "current_boundary_reviews_parquet").exists()

    baked = bake(
        layer=LAYER,
        boundary_reviews=str(export),
        settings=settings,
        allow=["reviews_without_addresses"],
    )
    reviews = read_with_polars(Path(baked.layer))
    assert {r["boundary_review_id"] for rs in reviews.values() for r in rs} == {952}
    with pytest.raises(ValueError, match="no guard rail ballot_loss"):
        bake(layer=LAYER, settings=settings, allow=["ballot_loss"])


def test_a_withdrawn_review_is_a_diff_per_review_and_a_rollback_restores_it(tmp_path, capsys):
    settings = Settings(data_root=str(tmp_path / "data"))
    store = LocalLayerStore(root=str(tmp_path / "data"))
    first = bake(layer=LAYER, settings=settings)
    export = tmp_path / "export"
    shutil.copytree(SAMPLE_BOUNDARY_REVIEWS, export)
    shutil.rmtree(export / "boundary_review_id=952")
    second = bake(layer=LAYER, boundary_reviews=str(export), settings=settings)

    prefix = "current_boundary_reviews_parquet/"
    bake_id = second.metadata["current_boundary_reviews_version"]["bake_id"]
    diff = LayerDiff.from_json(store.read_bytes(version_prefix(prefix, bake_id) + DIFF))
    before = published_manifest(store, prefix)
    assert diff.ids_disappearing == ["952"]
    assert list(diff.ids) == ["952"]
    assert diff.ids["952"].before == diff.ids["952"].lost > 0
    assert before.addresses_per_id.keys() == {"955"}

    first_id = first.metadata["current_boundary_reviews_version"]["bake_id"]
    root = ["--data-root", str(tmp_path / "data")]
    assert main(["versions", "--layer", LAYER, *root]) == 0
    assert first_id in capsys.readouterr().out
    assert main(["rollback", "--layer", LAYER, "--to", first_id, *root]) == 0
    assert published_manifest(store, prefix).addresses_per_id.keys() == {"952", "955"}
