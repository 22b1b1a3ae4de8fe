"""Checks on the AddressBase drop."""

import dagster as dg

from databaker.assets.addressbase.assets import ADDRESSBASE_RAW_TABLE, addressbase_cleaned_raw
from databaker.resources import LayerStore, QueryEngine, SqlQuery

DUPLICATES_QUERY = SqlQuery.beside(__file__, "duplicate_uprns")
SAMPLE_SIZE = 20


@dg.asset_check(asset=addressbase_cleaned_raw, name="uprns_are_unique", blocking=True)
def addressbase_uprns_are_unique(engine: QueryEngine, store: LayerStore) -> dg.AssetCheckResult:
    """Each UPRN once: identical repeated rows only warn (they are dropped), differing ones fail."""
    found = engine.run(
        DUPLICATES_QUERY,
        {
            "addressbase_cleaned_raw": ADDRESSBASE_RAW_TABLE.in_store(store),
            "sample_size": SAMPLE_SIZE,
        },
    ).to_pylist()[0]
    differing = [_describe(d) for d in found["differing_sample"]]
    identical = [_describe(d) for d in found["identical_sample"]]
    metadata = {
        "identical_duplicate_uprns": found["identical_uprns"],
        "identical_rows_dropped": found["identical_rows_dropped"],
        "differing_duplicate_uprns": found["differing_uprns"],
        "differing_sample": dg.MetadataValue.json(differing),
        "identical_sample": dg.MetadataValue.json(identical),
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


def _describe(duplicate: dict) -> dict:
    return {
        "uprn": duplicate["uprn"],
        "letters": list(duplicate["letters"]),
        "files": list(duplicate["files"]),
    }
