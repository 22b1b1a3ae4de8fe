"""A bake step on the production engine: Athena (moto on loopback) over S3 (SeaweedFS).

moto does not execute SQL, so these tests follow what the step sends and what it does when
Athena fails or takes too long; the SQL's meaning is held to the DuckDB version's by
``test_athena_queries`` and the data path on S3 by ``test_s3_bake``.
"""

import io
import re

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databaker.assets import assets_of
from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.definitions import Settings, build_resources
from databaker.partitions import ALL_LETTERS
from databaker.resources import AthenaQueryEngine, S3LayerStore
from databaker_tests.athena_emulator import (
    SECRET_ACCESS_KEY,
    athena_emulator_fixture,  # noqa: F401
    moto_server_fixture,  # noqa: F401
    no_result,
    result_set,
)

PUBLISHED = "addressbase_partitioned/first_letter=L/data_0.parquet"
RAW_L = "addressbase_cleaned_raw/first_letter=L/data_0.parquet"
REASON = "TABLE_NOT_FOUND: line 3:10: Table 'awsdatacatalog.databaker.x' does not exist"


@pytest.fixture
def store(s3_env) -> S3LayerStore:
    """A data root on S3 with a raw drop (a UPRN repeated in letter L) and one published
    partition."""
    store = S3LayerStore(root=f"s3://{s3_env.new_bucket()}/layers")
    sink = io.BytesIO()
    pq.write_table(pa.table({"uprn": ["1", "1"], "postcode": ["LS1 1AA"] * 2}), sink)
    store.write_bytes(RAW_L, sink.getvalue())
    store.write_bytes(PUBLISHED, sink.getvalue())
    return store


@pytest.fixture(autouse=True)
def workgroup(athena_emulator) -> None:
    athena_emulator.client().create_work_group(Name="bakes")


def partition_the_drop(
    store: S3LayerStore, athena_emulator, **engine: float
) -> dg.ExecuteInProcessResult:
    """Run addressbase_partitioned on Athena, which finds letter L to hold a repeated UPRN."""
    declaration = [no_result(), no_result()]
    athena_emulator.queue_results(
        *declaration,
        result_set([("first_letter", "varchar")], [["L"]]),
        *declaration,
        no_result(),
    )
    athena = AthenaQueryEngine(
        database="databaker",
        workgroup="bakes",
        output_location="s3://athena-results/databaker/",
        poll_interval_seconds=0.01,
        **{"timeout_seconds": 10.0, **engine},
    )
    with dg.DagsterInstance.ephemeral() as instance:
        _record_raw_table_with_a_repeated_row(instance)
        return dg.materialize(
            [asset for part in assets_of((CURRENT_ELECTIONS,)) for asset in part],
            selection=["addressbase_partitioned"],
            resources={
                **build_resources(Settings(data_root=store.root)),
                "engine": athena,
            },
            tags=ALL_LETTERS,
            instance=instance,
            raise_on_error=False,
        )


def _record_raw_table_with_a_repeated_row(instance: dg.DagsterInstance) -> None:
    """What a bake of the raw table leaves in the instance: the table, then its uniqueness
    check warning of an identically repeated row (so the partitioned table may be built)."""
    instance.report_runless_asset_event(dg.AssetMaterialization("addressbase_cleaned_raw"))
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("addressbase_cleaned_raw"),
            check_name="uprns_are_unique",
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
        )
    )


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return failure.event_specific_data.error.to_string()


def test_the_step_finds_letters_with_repeated_uprns_then_unloads_them_into_staging(
    store, s3_env, athena_emulator
):
    athena_emulator.fail_next_query(REASON, containing="UNLOAD")
    partition_the_drop(store, athena_emulator)
    sent = [e["Query"] for e in athena_emulator.executions()]
    location = store.uri("addressbase_cleaned_raw/")
    assert sent[0].startswith("CREATE EXTERNAL TABLE IF NOT EXISTS addressbase_cleaned_raw")
    assert f"LOCATION '{location}'" in sent[0]
    assert sent[1] == f"ALTER TABLE addressbase_cleaned_raw SET LOCATION '{location}'"
    assert "SELECT DISTINCT first_letter" in sent[2]
    assert "contains(ARRAY['A', 'B', 'C'," in sent[2]
    assert sent[5].startswith("UNLOAD (")
    assert 'FROM "addressbase_cleaned_raw"' in sent[5]
    assert "contains(ARRAY['L'], first_letter)" in sent[5]
    assert re.search(rf"TO '{store.uri('_staging/')}[^/]+/addressbase_partitioned/'", sent[5])
    execution = athena_emulator.executions()[5]
    assert execution["WorkGroup"] == "bakes"
    assert execution["QueryExecutionContext"]["Database"] == "databaker"


def test_a_failed_athena_query_stops_the_bake_naming_it_and_keeps_the_layer(
    store, s3_env, athena_emulator
):
    before = store.read_bytes(PUBLISHED)
    athena_emulator.fail_next_query(REASON, containing="UNLOAD")
    result = partition_the_drop(store, athena_emulator)
    assert not result.success
    message = failure_message(result)
    unload = athena_emulator.executions()[-1]
    assert f"Athena query {unload['QueryExecutionId']}" in message
    assert "FAILED" in message and REASON in message
    assert SECRET_ACCESS_KEY not in message
    assert store.read_bytes(PUBLISHED) == before
    assert store.list_keys("addressbase_partitioned/") == [PUBLISHED]
    assert store.list_keys("_staging/") == []


def test_an_athena_query_that_times_out_is_cancelled_and_keeps_the_layer(
    store, s3_env, athena_emulator
):
    before = store.read_bytes(PUBLISHED)
    athena_emulator.hold_queries()
    result = partition_the_drop(store, athena_emulator, timeout_seconds=0.3)
    assert not result.success
    message = failure_message(result)
    (held,) = athena_emulator.executions()
    assert f"Athena query {held['QueryExecutionId']}" in message
    assert "timed out" in message
    assert held["Status"]["State"] == "CANCELLED"
    assert store.read_bytes(PUBLISHED) == before
