"""Checks on the AddressBase drop."""

from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from databaker.assets.addressbase.assets import ADDRESSBASE_RAW_TABLE, addressbase_cleaned_raw
from databaker.concurrency import ADDRESSBASE_POOL, threads_for
from databaker.markdown import markdown_table
from databaker.resources import LayerStore, QueryEngine, SqlQuery

DUPLICATES_QUERY = SqlQuery.beside(__file__, "duplicate_uprns")
SAMPLE_SIZE = 20


@dg.asset_check(
    asset=addressbase_cleaned_raw, name="uprns_are_unique", blocking=True, pool=ADDRESSBASE_POOL
)
def addressbase_uprns_are_unique(engine: QueryEngine, store: LayerStore) -> dg.AssetCheckResult:
    """Each UPRN once: identical repeated rows only warn (they are dropped), differing ones fail.

    A drop without any repeat, the usual case, is recognised on whole columns of integers;
    the engine's query, which compares rows, runs only when some UPRN may repeat.
    """
    if uprns_certainly_unique(store):
        found = {
            "identical_uprns": 0,
            "identical_rows_dropped": 0,
            "differing_uprns": 0,
            "differing_sample": [],
            "identical_sample": [],
        }
    else:
        found = _duplicates(engine, store)
    return _result(found)


def uprns_certainly_unique(store: LayerStore) -> bool:
    """True when no two rows of the raw table share a UPRN's value as an integer.

    Sorting integers is several times cheaper than grouping text. Both readings of the drop
    write a UPRN in one text form (no leading zeros), so equal integers are the same UPRN; a
    repeat found here sends the table to the query, which tells identical rows from differing.
    Each file's UPRNs are sorted by the thread that reads them, and the sorted runs merged by
    a stable sort (Timsort, which merges runs rather than sorting again): half the time of one
    sort of them all on one core. Files are read a core each, or as many at once as the store
    keeps requests in flight where each waits on a network.
    """
    prefix = ADDRESSBASE_RAW_TABLE.prefix
    keys = [k for k in store.list_keys(prefix) if not k.rpartition("/")[2].startswith(("_", "."))]

    def uprns(key: str) -> np.ndarray | None:
        with store.open_input(key) as source:
            text = pq.read_table(source, columns=["uprn"], use_threads=False)["uprn"]
        try:
            return np.sort(pc.cast(text, pa.int64()).to_numpy())
        except pa.ArrowInvalid:
            return None

    with ThreadPoolExecutor(threads_for(store.in_flight(), len(keys))) as pool:
        parts = list(pool.map(uprns, keys))
    if any(part is None for part in parts):
        return False
    values = np.sort(np.concatenate([np.empty(0, np.int64), *parts]), kind="stable")
    return not np.any(values[1:] == values[:-1])


def _duplicates(engine: QueryEngine, store: LayerStore) -> dict:
    return engine.run(
        DUPLICATES_QUERY,
        {
            "addressbase_cleaned_raw": ADDRESSBASE_RAW_TABLE.in_store(store),
            "sample_size": SAMPLE_SIZE,
        },
    ).to_pylist()[0]


def _result(found: dict) -> dg.AssetCheckResult:
    differing = [_describe(d) for d in found["differing_sample"]]
    identical = [_describe(d) for d in found["identical_sample"]]
    metadata = {
        "identical_duplicate_uprns": found["identical_uprns"],
        "identical_rows_dropped": found["identical_rows_dropped"],
        "differing_duplicate_uprns": found["differing_uprns"],
        "differing_sample": _table(differing),
        "identical_sample": _table(identical),
    }
    if found["differing_uprns"]:
        listed = "; ".join(
            f"UPRN {d['uprn']} (letters {', '.join(d['letters'])}; in {', '.join(d['files'])})"
            for d in differing
        )
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{found['differing_uprns']} UPRN(s) appear on rows that differ: {listed}",
            metadata=metadata,
        )
    if found["identical_uprns"]:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{found['identical_uprns']} UPRN(s) repeated on identical rows; "
                f"{found['identical_rows_dropped']} duplicate row(s) dropped"
            ),
            metadata=metadata,
        )
    return dg.AssetCheckResult(passed=True, metadata=metadata)


def _table(duplicates: list[dict]) -> dg.MarkdownMetadataValue:
    return markdown_table(
        ["UPRN", "letters", "files"],
        ([d["uprn"], ", ".join(d["letters"]), ", ".join(d["files"])] for d in duplicates),
    )


def _describe(duplicate: dict) -> dict:
    return {
        "uprn": duplicate["uprn"],
        "letters": list(duplicate["letters"]),
        "files": list(duplicate["files"]),
    }
