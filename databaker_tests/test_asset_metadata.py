"""What an operator reads on the asset pages: every table's columns described before its first
materialisation, owners and code references, each letter partition telling of its own rows,
row counts that match the files, links to a bake's files, and guard rails that show their
threshold and how to override them."""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import Counter
from datetime import date
from pathlib import Path
from string import ascii_uppercase

import dagster as dg
import pyarrow.parquet as pq
import pytest

from databaker.assets import LAYERS, assets_of
from databaker.assets.current_elections.guard_rails import RAILS, GuardRails
from databaker.definitions import Settings, build_defs, build_resources
from databaker.layers.diff import IdChange, LayerDiff
from databaker.layers.guard_rails import RailInputs, rail_results
from databaker.layers.published import _rows_in_files
from databaker.layers.versions import published_manifest
from databaker.markdown import markdown_table
from databaker.partitions import ALL_LETTERS
from databaker.resources import LocalLayerStore
from databaker.sources import SAMPLE_ADDRESSBASE
from databaker_tests.conftest import materialization, partition_materializations

REST = re.compile(r"``|:(mod|class|func|meth|attr|data|exc|obj|ref|doc):`")


@pytest.fixture(scope="module")
def graph() -> dg.AssetGraph:
    return build_defs().resolve_asset_graph()


@pytest.fixture(scope="module")
def baked(tmp_path_factory) -> tuple[Path, dg.ExecuteInProcessResult]:
    """The bundled sample baked into both layers, once for the module."""
    data_root = tmp_path_factory.mktemp("metadata") / "data"
    assets, checks = assets_of(LAYERS)
    result = dg.materialize(
        [*assets, *checks],
        resources=build_resources(Settings(data_root=str(data_root))),
        tags=ALL_LETTERS,
    )
    assert result.success
    return data_root, result


def sample_rows_per_letter() -> Counter:
    """Addresses of the sample drop by their postcode's first letter, read from its CSV files."""
    letters: Counter = Counter()
    for part in Path(SAMPLE_ADDRESSBASE).rglob("*.csv.gz"):
        with gzip.open(part, "rt", newline="", encoding="utf-8") as lines:
            letters.update(row[2][0].upper() for row in csv.reader(lines))
    return letters


def test_every_asset_declares_its_columns_each_described(graph):
    for key in graph.get_all_asset_keys():
        schema = graph.get(key).metadata.get("dagster/column_schema")
        assert isinstance(schema, dg.TableSchema), key
        assert schema.columns, key
        for column in schema.columns:
            assert column.description and column.description.strip(), (key, column.name)


def test_a_layers_outcode_files_are_declared_with_the_layers_columns(graph):
    for layer in LAYERS:
        for name in (layer.version_asset_name, layer.published_asset_name):
            schema = graph.get(dg.AssetKey(name)).metadata["dagster/column_schema"]
            assert [column.name for column in schema.columns] == layer.columns
        list_column = schema.columns[layer.columns.index(layer.ids_column)]
        assert list_column.description == layer.ids_column_description


def test_column_lineage_names_columns_the_tables_declare(graph):
    """From the partitioned AddressBase to the joined table, to the version, to the published
    layer: every column a lineage names is a declared column of an asset of the graph."""
    declared = {
        key: {c.name for c in graph.get(key).metadata["dagster/column_schema"].columns}
        for key in graph.get_all_asset_keys()
    }
    with_lineage = []
    for key in graph.get_all_asset_keys():
        lineage = graph.get(key).metadata.get("dagster/column_lineage")
        if lineage is None:
            continue
        with_lineage.append(key.to_user_string())
        for column, deps in lineage.deps_by_column.items():
            assert column in declared[key], (key, column)
            for dep in deps:
                assert dep.column_name in declared[dep.asset_key], (key, column, dep)
    for layer in LAYERS:
        assert {layer.joined.name, layer.version_asset_name, layer.published_asset_name} <= set(
            with_lineage
        )
        published = graph.get(dg.AssetKey(layer.published_asset_name)).metadata
        deps = published["dagster/column_lineage"].deps_by_column[layer.ids_column]
        assert [dep.asset_key.to_user_string() for dep in deps] == [layer.version_asset_name]
    assert "addressbase_partitioned" in with_lineage


def test_every_asset_has_owners_and_a_code_reference(graph):
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners, key
        references = node.metadata["dagster/code_references"].code_references
        assert references and all(Path(r.file_path).is_file() for r in references), key


def test_descriptions_are_markdown_without_rest_roles_or_double_backticks(graph):
    described = [
        (key.to_user_string(), graph.get(key).description) for key in graph.get_all_asset_keys()
    ]
    for key in graph.asset_check_keys:
        described.append((key.to_user_string(), graph.get_check_spec(key).description))
    assert all(description for _, description in described)
    for name, description in described:
        assert not REST.search(description), (name, description)


def test_each_letter_partition_reports_its_own_rows_and_folder(baked):
    data_root, result = baked
    expected = sample_rows_per_letter()
    assert sum(expected.values()) == 20_000 and len(expected) > 1
    for layer in LAYERS:
        for table in ("addressbase_partitioned", layer.joined.name):
            partitions = partition_materializations(result, table)
            assert sorted(partitions) == list(ascii_uppercase)
            for letter, metadata in partitions.items():
                assert metadata["dagster/row_count"] == expected.get(letter, 0), (table, letter)
                assert metadata["path"] == f"{data_root}/{table}/first_letter={letter}/"


def test_a_published_layer_reports_the_rows_of_its_files(baked):
    """An outcode where no address has an ID is an empty file: the files hold fewer rows than
    the layer has addresses (all of them in the organisations layer, where every sample
    address has a council), and the row count is the files'."""
    data_root, result = baked
    fewer = set()
    for layer in LAYERS:
        version = materialization(result, layer.version_asset_name)
        published = materialization(result, layer.published_asset_name)
        for metadata, folder in ((published, data_root / layer.prefix), (version, None)):
            files = sorted(Path(folder or metadata["version"]).glob("*.parquet"))
            rows = sum(pq.read_table(file).num_rows for file in files)
            assert 0 < rows <= metadata["addresses"] == 20_000
            assert metadata["dagster/row_count"] == rows
            if rows < metadata["addresses"]:
                fewer.add(layer.name)
    assert fewer == {"current_elections", "current_boundary_reviews"}


def test_rows_of_a_bake_whose_count_was_not_recorded_are_read_from_the_files(baked):
    """A version materialised by an older release recorded no row count: the published layer
    counts the rows in its files' footers instead."""
    data_root, result = baked
    store = LocalLayerStore(root=str(data_root))
    for layer in LAYERS:
        manifest = published_manifest(store, layer.prefix)
        counted = materialization(result, layer.published_asset_name)["dagster/row_count"]
        assert _rows_in_files(store, layer, manifest, None) == counted
        assert _rows_in_files(store, layer, manifest, 7) == 7


def test_a_bake_links_its_manifest_diff_and_reports_and_shortens_the_input_hash(baked):
    _, result = baked
    for layer in LAYERS:
        version = materialization(result, layer.version_asset_name)
        published = materialization(result, layer.published_asset_name)
        manifest = json.loads(Path(version["manifest"]).read_text())
        assert manifest["bake_id"] == version["bake_id"] == published["bake_id"]
        whole = manifest["input_version"]
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", whole)
        assert version[layer.input_version_key] == whole[: len("sha256:") + 12]
        assert json.loads(Path(published["manifest"]).read_text()) == manifest
        for metadata in (version, published):
            assert (
                json.loads(Path(metadata["diff_json"]).read_text())["bake_id"]
                == manifest["bake_id"]
            )
            reports = {k for k in metadata if k.startswith("rejected_report_")}
            assert reports == {f"rejected_report_{asset}" for asset in manifest["rejected_rows"]}
            assert "rejected_report_addressbase_cleaned_raw" in reports
            for key in reports:
                assert Path(metadata[key]).read_text().startswith("file,line,")


def test_a_rails_description_names_its_threshold_and_both_ways_to_override_it(graph):
    for layer in LAYERS:
        asset = layer.version_asset_name
        for rail in layer.rails:
            description = graph.get_check_spec(rail.key(asset)).description
            assert f"`databaker bake --allow {rail.short_override}`" in description
            assert f"`ops: {asset}: config: {rail.override}: true`" in description
            if rail.threshold is not None:
                default = layer.config.model_fields[rail.threshold].default
                assert f"`{rail.threshold}`, {default} unless configured" in description


def test_a_rails_verdict_shows_its_threshold_beside_the_measure_and_how_to_override():
    diff = LayerDiff(
        bake_id="2",
        baseline="1",
        addresses_before=1000,
        addresses_after=900,
        with_ids_before=800,
        with_ids_after=720,
        ids={"local.a.2027-05-06": IdChange(before=100, after=40, gained=0, lost=60)},
    )
    inputs = RailInputs(
        diff=diff, ids_named={"local.a.2027-05-06"}, input_changed=False, today=date(2026, 11, 27)
    )
    found = {
        check.check_name: check
        for check in rail_results(
            RAILS, inputs, GuardRails(max_address_drop=0.05), asset="current_elections_version"
        )
    }
    kept = found["addresses_kept"]
    assert not kept.passed
    assert kept.metadata["max_address_drop"].value == 0.05
    assert kept.metadata["drop"].value == pytest.approx(0.10)
    override = "`ops: current_elections_version: config: allow_address_drop: true`"
    assert "`databaker bake --allow address_drop`" in kept.description
    assert override in kept.description
    assert override in kept.metadata["how_to_override"].value
    losing = found["ballots_keep_their_addresses"]
    assert losing.metadata["max_ballot_loss"].value == 0.05
    assert "| local.a.2027-05-06 | 100 | 60 | 60.0% |" in losing.metadata["worst"].value
    passing = found["upcoming_ballots_kept"]
    assert passing.passed and passing.description is None
    assert passing.metadata["max_upcoming_ballots_gone"].value == 0
    assert "--allow upcoming_ballots_gone" in passing.metadata["how_to_override"].value


def test_a_markdown_table_keeps_a_cell_holding_a_bar_whole():
    table = markdown_table(["ID", "addresses"], [["a|b", 1234]]).value
    assert table.splitlines() == ["| ID | addresses |", "|---|---:|", "| a\\|b | 1,234 |"]
    assert markdown_table(["ID"], []).value == "none"


def test_the_table_keys_are_dagsters_own():
    """The keys the UI shows in their places are those of Dagster's `TableMetadataSet` (not
    exported at the top level in this release, hence read from where it is defined)."""
    from dagster._core.definitions.metadata import TableMetadataSet

    from databaker.catalog import COLUMN_LINEAGE, COLUMN_SCHEMA, PARTITION_ROW_COUNT, ROW_COUNT

    dagsters = TableMetadataSet(
        row_count=1,
        partition_row_count=1,
        column_schema=dg.TableSchema(columns=[]),
        column_lineage=dg.TableColumnLineage(deps_by_column={}),
    )
    assert set(dict(dagsters)) == {ROW_COUNT, PARTITION_ROW_COUNT, COLUMN_SCHEMA, COLUMN_LINEAGE}


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_the_published_layer_shows_the_coverage_map_of_the_bake_it_published(baked, layer):
    _, result = baked
    version = materialization(result, layer.version_asset_name)
    published = materialization(result, layer.published_asset_name)
    assert "data:image/png;base64," in published["coverage_map"]
    assert published["coverage_map"] == version["coverage_map"]
