"""The joined table's checks read a letter once per token: what they compare is kept beside the
joined table with the token of each letter's record, and read again only once it changed."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.assets.current_elections import CURRENT_ELECTIONS
from databaker.layers.letter_summaries import (
    KEPT,
    LetterSummary,
    addressbase_summaries,
    joined_summaries,
)
from databaker.resources import DuckDBQueryEngine, QueryEngine
from databaker.staging import PARTITION_RECORD, PartitionRecord, partition_record
from databaker_tests.conftest import address_line, write_lines

JOINED = CURRENT_ELECTIONS.joined
ROWS = [("1", "B1 1AA"), ("2", "B1 1AB"), ("3", "S1 1AA"), ("4", "S2 2AA"), ("5", "S2 2AB")]


@dataclass
class ReadingEngine:
    """The embedded engine, noting the letters each query is asked to read."""

    engine: QueryEngine
    functions_version: str
    letters: list[list[str]] = field(default_factory=list)

    def run(self, query: Any, params: dict) -> Any:
        self.letters.append(list(params["letters"]))
        return self.engine.run(query, params)


@pytest.fixture
def baked(tmp_path, run_assets, store):
    """A bake of letters B and S; its checks have summarised both tables."""
    drop = write_lines(
        tmp_path / "drop" / "part.csv",
        [address_line(uprn, f"{uprn} Road", pc, -1.5, 53.8) for uprn, pc in ROWS],
    )
    ballots = write_lines(
        tmp_path / "ballots.csv",
        [
            "election_id,division_id,geometry,source_table",
            'local.leeds.a.2027-05-06,E05001,"POLYGON((-2 53,-1 53,-1 54,-2 54,-2 53))",Division',
        ],
    )
    assert run_assets(addressbase=drop.parent, ballots=ballots).success
    return store


def uprn_checksum(data_root: Path, table: str, letter: str) -> int:
    """The letter's checksum computed directly: the sum of DuckDB's hashes of its UPRNs."""
    files = str(data_root / table / f"first_letter={letter}" / "*.parquet")
    (total,) = duckdb.sql(f"SELECT sum(hash(uprn)) FROM read_parquet('{files}')").fetchone()
    return int(total)


def test_the_checks_keep_each_letter_of_both_tables_with_its_token(baked, data_root):
    kept = (data_root / JOINED.prefix / KEPT).read_text()
    engine = ReadingEngine(DuckDBQueryEngine(), DuckDBQueryEngine().functions_version)
    summaries = {
        "addressbase_partitioned": addressbase_summaries(engine, baked, JOINED.prefix),
        JOINED.name: joined_summaries(engine, baked, JOINED),
    }
    assert engine.letters == []
    for table, by_letter in summaries.items():
        assert by_letter == {
            letter: LetterSummary(
                token=partition_record(baked, f"{table}/", letter).token,
                rows=rows,
                checksum=uprn_checksum(data_root, table, letter),
                sources=[str(data_root.parent / "drop")] if table != JOINED.name else [],
            )
            for letter, rows in (("B", 2), ("S", 3))
        }
    assert (data_root / JOINED.prefix / KEPT).read_text() == kept


def test_a_letter_is_read_again_once_its_token_changed_and_no_other(baked):
    engine = ReadingEngine(DuckDBQueryEngine(), DuckDBQueryEngine().functions_version)
    record = partition_record(baked, JOINED.prefix, "S")
    baked.write_bytes(
        f"{JOINED.prefix}first_letter=S/{PARTITION_RECORD}",
        PartitionRecord.new(record.rows, record.built_from).to_json(),
    )
    assert joined_summaries(engine, baked, JOINED)["S"].rows == 3
    assert addressbase_summaries(engine, baked, JOINED.prefix)["S"].rows == 3
    assert engine.letters == [["S"]]
    assert joined_summaries(engine, baked, JOINED)["S"].rows == 3
    assert engine.letters == [["S"]]


def test_a_letter_without_a_record_is_read_every_time(baked):
    engine = ReadingEngine(DuckDBQueryEngine(), DuckDBQueryEngine().functions_version)
    baked.delete([f"{ADDRESSBASE_PARTITIONED_TABLE.prefix}first_letter=B/{PARTITION_RECORD}"])
    for _ in range(2):
        summary = addressbase_summaries(engine, baked, JOINED.prefix)["B"]
        assert (summary.token, summary.rows) == (None, 2)
    assert engine.letters == [["B"], ["B"]]


def test_summaries_another_engine_kept_are_not_used(baked):
    other = ReadingEngine(DuckDBQueryEngine(), "duckdb 0.0.1")
    addressbase_summaries(other, baked, JOINED.prefix)
    joined_summaries(other, baked, JOINED)
    assert other.letters == [["B", "S"], ["B", "S"]]
    same = ReadingEngine(DuckDBQueryEngine(), DuckDBQueryEngine().functions_version)
    addressbase_summaries(same, baked, JOINED.prefix)
    assert same.letters == [["B", "S"]]
