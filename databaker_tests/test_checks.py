"""Each blocking check shown failing on crafted bad data, and the layer left as it was."""

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.layers.build import layer_definitions
from databaker.staging import PartitionRecord, partition_record, write_partition_record
from databaker_tests.conftest import (
    address_line,
    check_evaluations,
    failure_messages,
    write_lines,
)

JOINED_CHECKS = dg.AssetSelection.checks_for_assets("current_ballots_joined_to_address_base")
LAYER_ONLY = dg.AssetSelection.assets("current_elections_version", "current_elections_parquet")


def layer_snapshot(data_root: Path) -> dict[str, bytes]:
    layer = data_root / "current_elections_parquet"
    return {p.name: p.read_bytes() for p in sorted(layer.iterdir())}


@pytest.fixture
def inputs(tmp_path):
    def drop(name: str, rows: list[tuple[str, str]]) -> Path:
        return write_lines(
            tmp_path / name / "part.csv",
            [address_line(uprn, f"{uprn} Road", pc, -1.5, 53.8) for uprn, pc in rows],
        )

    ballots = write_lines(
        tmp_path / "ballots.csv",
        [
            "election_id,division_id,geometry,source_table",
            'local.leeds.a.2027-05-06,E05001,"POLYGON((-2 53,-1 53,-1 54,-2 54,-2 53))",Division',
        ],
    )
    return drop, ballots


def test_a_joined_table_mixing_two_drops_stops_the_layer(inputs, data_root, run_assets):
    drop, ballots = inputs
    first = drop("first", [("1", "S1 1AA"), ("2", "B1 1AA")])
    assert run_assets(addressbase=first.parent, ballots=ballots).success
    before = layer_snapshot(data_root)
    second = drop("second", [("1", "S1 1AA"), ("3", "B1 1AB")])
    # Only letter S is rebuilt from the second drop: letter B still comes from the first.
    result = run_assets(
        [
            "addressbase_cleaned_raw",
            "addressbase_partitioned",
            "current_ballots_joined_to_address_base",
            "current_elections_parquet",
        ],
        addressbase=second.parent,
        partition_key="S",
    )
    assert not result.success
    check = check_evaluations(result)["single_addressbase_source"]
    assert not check.passed
    assert str(first.parent) in check.description and str(second.parent) in check.description
    assert check.metadata["addressbase_sources"].value == 2
    assert layer_snapshot(data_root) == before


def test_a_joined_table_out_of_step_with_addressbase_stops_the_layer(inputs, data_root, run_assets):
    drop, ballots = inputs
    first = drop("first", [("1", "S1 1AA"), ("2", "B1 1AA")])
    assert run_assets(addressbase=first.parent, ballots=ballots).success
    before = layer_snapshot(data_root)
    second = drop("second", [("1", "S1 1AA"), ("2", "B1 1AA"), ("5", "B1 1AA")])
    assert run_assets(
        ["addressbase_cleaned_raw", "addressbase_partitioned"], addressbase=second.parent
    ).success
    result = run_assets(JOINED_CHECKS | LAYER_ONLY)
    assert not result.success
    check = check_evaluations(result)["uprns_match_addressbase"]
    assert not check.passed
    assert check.metadata["addressbase_rows"].value == 3
    assert check.metadata["joined_rows"].value == 2
    assert check.metadata["missing_from_joined"].value == ["5"]
    assert check.metadata["addressbase_checksum"].value != check.metadata["joined_checksum"].value
    # The version would take the address columns from letters the lists were not made from.
    sources = check_evaluations(result)["single_addressbase_source"]
    assert not sources.passed
    assert sources.description == ("letters joined from an AddressBase letter since replaced: B, S")
    assert sources.metadata["letters_out_of_step"].value == ["B", "S"]
    assert layer_snapshot(data_root) == before


def test_an_addressbase_letter_without_its_record_stops_the_layer(inputs, data_root, run_assets):
    """A bake stopped while replacing an AddressBase letter leaves it without a record (its
    record goes first and comes back last): its rows may mix two drops, so nothing is joined
    or baked from it until a bake from the drop replaces it."""
    drop, ballots = inputs
    first = drop("d", [("1", "S1 1AA"), ("2", "B1 1AA")])
    assert run_assets(addressbase=first.parent, ballots=ballots).success
    before = layer_snapshot(data_root)
    (data_root / "addressbase_partitioned" / "first_letter=S" / "_partition.json").unlink()
    result = run_assets(JOINED_CHECKS | LAYER_ONLY)
    assert not result.success
    sources = check_evaluations(result)["single_addressbase_source"]
    assert not sources.passed
    assert sources.description == (
        "AddressBase letters with no record, as a bake stopped while replacing them leaves "
        "them (bake from the drop again): S"
    )
    assert sources.metadata["letters_out_of_step"].value == ["S"]
    assert layer_snapshot(data_root) == before


def test_a_uprn_twice_in_the_joined_table_fails_the_uprn_check(
    inputs, data_root, run_assets, engine, store
):
    """As a join that wrote a UPRN twice would leave letter S: the rows, then a new record
    (the check read S when the bake ran, and reads a letter again once its token changed)."""
    drop, ballots = inputs
    assert run_assets(addressbase=drop("d", [("1", "S1 1AA")]).parent, ballots=ballots).success
    partition = data_root / "current_ballots_joined_to_address_base" / "first_letter=S"
    (path,) = partition.glob("*.parquet")
    table = pq.read_table(path)
    pq.write_table(pa.concat_tables([table, table]), path)
    record = partition_record(store, CURRENT_ELECTIONS.joined.prefix, "S")
    rewritten = PartitionRecord.new(2, record.built_from)
    write_partition_record(store, CURRENT_ELECTIONS.joined.prefix, "S", rewritten)
    _, joined_uprns_match_addressbase = layer_definitions(CURRENT_ELECTIONS).joined_checks
    result = joined_uprns_match_addressbase(engine=engine, store=store)
    assert not result.passed
    metadata = {key: value.value for key, value in result.metadata.items()}
    assert (metadata["joined_rows"], metadata["addressbase_rows"]) == (2, 1)
    assert metadata["addressbase_checksum"] != metadata["joined_checksum"]
    assert metadata["letters_differing"] == ["S"]


def test_the_layer_alone_is_not_published_from_a_table_whose_checks_failed(
    inputs, data_root, run_assets, instance
):
    drop, ballots = inputs
    first = drop("first", [("1", "S1 1AA"), ("2", "B1 1AA")])
    assert run_assets(addressbase=first.parent, ballots=ballots, instance=instance).success
    before = layer_snapshot(data_root)
    second = drop("second", [("1", "S1 1AA")])
    rebuild_s = ["addressbase_cleaned_raw", "addressbase_partitioned"]
    rebuild_s.append("current_ballots_joined_to_address_base")
    assert not run_assets(
        rebuild_s, addressbase=second.parent, partition_key="S", instance=instance
    ).success
    result = run_assets(LAYER_ONLY, instance=instance)
    assert not result.success
    assert (
        "not baking: current_ballots_joined_to_address_base / single_addressbase_source "
        "failed: 2 AddressBase sources"
    ) in failure_messages(result)
    assert layer_snapshot(data_root) == before


def test_the_layer_alone_waits_for_checks_on_a_changed_table(
    inputs, data_root, run_assets, instance
):
    drop, ballots = inputs
    assert run_assets(
        addressbase=drop("d", [("1", "S1 1AA")]).parent, ballots=ballots, instance=instance
    ).success
    joined_alone = dg.AssetSelection.assets("current_ballots_joined_to_address_base")
    assert run_assets(joined_alone.without_checks(), instance=instance).success
    result = run_assets(LAYER_ONLY, instance=instance)
    assert "uprns_match_addressbase has not run since the asset was last materialised" in (
        failure_messages(result)
    )
    assert run_assets(JOINED_CHECKS | LAYER_ONLY, instance=instance).success


def test_the_layer_alone_is_not_baked_from_addressbase_letters_replaced_since_the_join(
    inputs, data_root, run_assets, instance
):
    """The joined table's checks passed, then a new drop was partitioned with the same UPRNs
    (one address moved to another postcode): the version, which takes the address columns
    from the partitioned AddressBase, refuses to pair them with lists made from the old drop.
    (A letter the published bake read under the same token is not read again: its files are
    the old drop's, whole.)"""
    drop, ballots = inputs
    first = drop("first", [("1", "S1 1AA")])
    joined = ["addressbase_cleaned_raw", "addressbase_partitioned", "current_ballots"]
    joined.append("current_ballots_joined_to_address_base")
    assert run_assets(joined, addressbase=first.parent, ballots=ballots, instance=instance).success
    moved = drop("moved", [("1", "S2 9ZZ")])
    assert run_assets(
        ["addressbase_cleaned_raw", "addressbase_partitioned"],
        addressbase=moved.parent,
        instance=instance,
    ).success
    result = run_assets(LAYER_ONLY, instance=instance)
    assert not result.success
    message = failure_messages(result)
    assert "not baking: addressbase_partitioned/first_letter=S/: the joined letter S was " in (
        message
    )
    assert "materialise the joined table again" in message
    assert not (data_root / "current_elections_parquet").exists()
