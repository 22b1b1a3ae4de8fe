"""The layer pattern: a layer declared here, in the test, and nowhere in the package, gets
versions, a diff, guard rails, publishing, rollback and lookups from the shared machinery.

The toy layer answers "how big is this address's postcode?": each address's list holds one
element, ``small`` (fewer than three addresses share its postcode) or ``large``. Its join is a
SQL file of its own, written beside the test's data, over ``addressbase_partitioned``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.bake import BakeFailed, bake
from databaker.definitions import Settings, build_defs
from databaker.layer_reader import Found, LayerReader
from databaker.layers import JoinRun, Layer
from databaker.layers.guard_rails import LayerConfig, addresses_kept
from databaker.layers.versions import kept_versions, publish, published_manifest
from databaker.resources import LocalLayerStore, SqlQuery, Table
from databaker_tests.conftest import address_line, write_lines

TOY_SQL = """
-- Every address with the size of its postcode: small (under three addresses) or large.
COPY (
    SELECT
        uprn, address, postcode, addressbase_source,
        [CASE WHEN count(*) OVER (PARTITION BY postcode) < 3 THEN 'small' ELSE 'large' END]
            AS postcode_sizes,
        first_letter
    FROM read_parquet(
        $addressbase_partitioned || 'first_letter=*/*.parquet', hive_partitioning = true
    )
    WHERE list_contains($letters, first_letter)
) TO $output (FORMAT parquet, PARTITION_BY (first_letter));
"""

POSTCODES = {"LS1 1AA": 4, "LS1 2BB": 2, "LS2 7QQ": 1, "YO1 7HH": 3}
"""Addresses per postcode in the first drop."""


def toy_layer(sql_folder: Path) -> Layer:
    (sql_folder / "postcode_sizes_joined.duckdb.sql").write_text(TOY_SQL)
    query = SqlQuery(sql_folder, "postcode_sizes_joined")

    def join(run: JoinRun) -> None:
        run.engine.run(
            query,
            {
                "addressbase_partitioned": run.table(ADDRESSBASE_PARTITIONED_TABLE),
                "letters": run.letters,
                "output": run.output,
            },
        )

    return Layer(
        name="postcode_sizes",
        description="whether the address's postcode is small or large.",
        ids_column="postcode_sizes",
        id_label="size",
        joined=Table.beside(str(sql_folder / "x.py"), "postcode_sizes_joined"),
        join=join,
        config=LayerConfig,
        rails=(addresses_kept(),),
        nightly_cron=None,
    )


KNOWN = sorted([*POSTCODES, "LS2 8ZZ"])


def drop(folder: Path, postcodes: dict[str, int]) -> Path:
    """The ``n``-th address of a postcode keeps its UPRN from drop to drop."""
    lines = []
    for postcode, count in postcodes.items():
        for n in range(count):
            uprn = 1000 * (KNOWN.index(postcode) + 1) + n
            lines.append(address_line(str(uprn), f"{n + 1} Some Street", postcode, -1.5, 53.8))
    return write_lines(folder / "part.csv", lines).parent


def expected_sizes(postcodes: dict[str, int]) -> dict[str, str]:
    """Each postcode's element, computed from the counts."""
    return {postcode: "small" if count < 3 else "large" for postcode, count in postcodes.items()}


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Layer:
    return toy_layer(tmp_path_factory.mktemp("toy_sql"))


def test_a_layer_declared_outside_the_package_is_baked_published_and_looked_up(toy, tmp_path):
    settings = Settings(data_root=str(tmp_path / "data"))
    result = bake(layer=toy, addressbase=str(drop(tmp_path / "d1", POSTCODES)), settings=settings)

    layer = tmp_path / "data" / "postcode_sizes_parquet"
    assert result.layer == f"{layer}/"
    assert sorted(p.name for p in layer.glob("*.parquet")) == [
        "LS1.parquet",
        "LS2.parquet",
        "YO1.parquet",
    ]
    table = pq.read_table(layer / "LS1.parquet")
    assert table.column_names == toy.columns
    assert table["postcode"].to_pylist() == ["LS1 1AA"] * 4 + ["LS1 2BB"] * 2
    reader = LayerReader(str(layer), ids_column="postcode_sizes")
    for postcode, size in expected_sizes(POSTCODES).items():
        found = reader.addresses(postcode)
        assert found.found == Found.ADDRESSES
        assert {address.ids for address in found.addresses} == {(size,)}
    manifest = published_manifest(LocalLayerStore(root=str(tmp_path / "data")), toy.prefix)
    assert manifest.addresses_per_id == {"large": 7, "small": 3}


def test_the_toy_layer_gets_a_diff_guard_rails_versions_and_rollback(toy, tmp_path):
    settings = Settings(data_root=str(tmp_path / "data"))
    store = LocalLayerStore(root=str(tmp_path / "data"))
    first = bake(layer=toy, addressbase=str(drop(tmp_path / "d1", POSTCODES)), settings=settings)
    # One address more in LS1 2BB (small to large: three addresses change), one more postcode.
    grown = {**POSTCODES, "LS1 2BB": 3, "LS2 8ZZ": 1}
    second = bake(layer=toy, addressbase=str(drop(tmp_path / "d2", grown)), settings=settings)

    version = second.metadata["postcode_sizes_version"]
    assert version["baseline"] == first.metadata["postcode_sizes_version"]["bake_id"]
    before, after = expected_sizes(POSTCODES), expected_sizes(grown)
    changed = sum(
        count for postcode, count in grown.items() if before.get(postcode) != after[postcode]
    )
    assert version["addresses_changed"] == changed == 4
    per_size: Counter[str] = Counter()
    for postcode, count in grown.items():
        per_size[after[postcode]] += count
    assert published_manifest(store, toy.prefix).addresses_per_id == dict(per_size)

    # Half the addresses gone: the shared rail refuses, and the layer stays the second bake.
    with pytest.raises(BakeFailed, match="addresses_kept"):
        bake(layer=toy, addressbase=str(drop(tmp_path / "d3", {"LS1 1AA": 4})), settings=settings)
    second_id = second.metadata["postcode_sizes_version"]["bake_id"]
    assert published_manifest(store, toy.prefix).bake_id == second_id
    assert len(kept_versions(store, toy.prefix)) == 3

    publish(store, toy.prefix, first.metadata["postcode_sizes_version"]["bake_id"])
    reader = LayerReader(
        str(tmp_path / "data" / "postcode_sizes_parquet"), ids_column="postcode_sizes"
    )
    assert reader.addresses("LS1 2BB").addresses[0].ids == ("small",)
    assert reader.addresses("LS2 8ZZ").found == Found.UNKNOWN_POSTCODE


def test_the_toy_layer_sits_beside_the_real_ones_in_one_code_location(toy):
    defs = build_defs(Settings(), layers=(CURRENT_ELECTIONS, toy))
    jobs = {job.name for job in defs.resolve_all_job_defs()}
    assert {"current_elections_layer", "postcode_sizes_layer"} <= jobs
    job = defs.resolve_job_def("postcode_sizes_layer")
    assert job.tags["databaker/layer"] == "postcode_sizes"
    assets = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"postcode_sizes_joined", "postcode_sizes_version", "postcode_sizes_parquet"} <= assets
