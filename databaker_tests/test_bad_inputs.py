"""Bad input stops a bake with file, line and reason, and the published layer stays as it was."""

import gzip
import shutil
from pathlib import Path

import pytest

from databaker.bake import BakeFailed, bake
from databaker.definitions import Settings
from databaker_tests.conftest import address_line, ballot_line, write_lines

GOOD_ADDRESSES = [
    address_line("1", "1 Briggate, Leeds", "LS1 6AA", -1.54, 53.797),
    address_line("2", '"Rose Court", 2 Kirkgate', "LS2 7AA", -1.53, 53.797),
]
GOOD_BALLOTS = [
    "election_id,division_id,geometry,source_table",
    ballot_line(
        "local.leeds.city.2027-05-06",
        "E05001",
        "POLYGON((-1.6 53.7,-1.5 53.7,-1.5 53.9,-1.6 53.9,-1.6 53.7))",
        "Division",
    ),
]


def snapshot(data_root: Path) -> dict[str, bytes]:
    layer = data_root / "current_elections_parquet"
    return {p.name: p.read_bytes() for p in sorted(layer.iterdir())}


@pytest.fixture(scope="module")
def good_bake(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The good inputs and a data root where their bake is published, baked once."""
    base = tmp_path_factory.mktemp("good")
    good_drop = write_lines(base / "drop.csv", GOOD_ADDRESSES)
    good_ballots = write_lines(base / "ballots.csv", GOOD_BALLOTS)
    bake(
        addressbase=str(good_drop),
        ballots=str(good_ballots),
        settings=Settings(data_root=str(base / "data")),
    )
    return good_drop, good_ballots, base / "data"


@pytest.fixture
def published(good_bake, data_root):
    """A good bake already published; returns a function to bake again from other inputs."""
    good_drop, good_ballots, template = good_bake
    shutil.copytree(template, data_root)
    before = snapshot(data_root)
    assert set(before) == {"LS1.parquet", "LS2.parquet", "_manifest.json"}

    def rebake(addressbase: Path = good_drop, ballots: Path = good_ballots) -> str:
        with pytest.raises(BakeFailed) as failure:
            bake(
                addressbase=str(addressbase),
                ballots=str(ballots),
                settings=Settings(data_root=str(data_root)),
            )
        assert snapshot(data_root) == before
        return str(failure.value)

    return rebake


def test_a_malformed_row(tmp_path, published):
    drop = write_lines(
        tmp_path / "drop.csv",
        [*GOOD_ADDRESSES, '3,"Unclosed quote,LS1 6AB,SRID=4326;POINT(-1.5 53.8),RD04'],
    )
    message = published(addressbase=drop)
    assert f"{drop}:3: not a CSV record of 5 fields" in message


def test_a_bad_location(tmp_path, published):
    drop = write_lines(
        tmp_path / "drop.csv", ["3,3 Road,LS1 6AB,SRID=4326;POINT(-1.5;53.8),RD04", *GOOD_ADDRESSES]
    )
    message = published(addressbase=drop)
    assert f'{drop}:1: location "SRID=4326;POINT(-1.5;53.8)" is not SRID=4326;POINT' in message


def test_bad_wkt(tmp_path, published):
    ballots = write_lines(
        tmp_path / "ballots.csv",
        [
            *GOOD_BALLOTS,
            ballot_line("local.leeds.east.2027-05-06", "E05002", "POLYGON((oops))", "Division"),
        ],
    )
    message = published(ballots=ballots)
    assert f'{ballots}:3: geometry is not valid WKT: "POLYGON((oops))..."' in message


def test_a_missing_drop(tmp_path, published):
    message = published(addressbase=tmp_path / "no-such-drop")
    assert f"AddressBase drop not found: {tmp_path / 'no-such-drop'}" in message


def test_a_missing_ballots_export(tmp_path, published):
    message = published(ballots=tmp_path / "no-such.csv")
    assert f"ballots export not found: {tmp_path / 'no-such.csv'}" in message


def test_a_drop_that_is_not_utf8_stops_at_its_first_bad_line(tmp_path, published):
    """A wrong encoding is a wrong file, not a bad row: the whole drop is refused."""
    drop = tmp_path / "latin1.csv"
    lines = [GOOD_ADDRESSES[0], "3,3 Caf\xe9 Row,LS1 6AB,SRID=4326;POINT(-1.5 53.8),RD04"]
    drop.write_bytes("\n".join(lines).encode("latin-1"))
    message = published(addressbase=drop)
    assert f"AddressBase drop {drop} refused: {drop}:2: not UTF-8 encoded" in message


def test_a_drop_of_empty_files_stops_at_the_raw_table(tmp_path, published):
    """Empty parts and blank lines hold no address: the bake stops at once, naming the drop."""
    folder = tmp_path / "empty_drop"
    folder.mkdir()
    (folder / "part-0.csv").write_bytes(b"")
    (folder / "part-1.csv.gz").write_bytes(gzip.compress(b""))
    (folder / "part-2.csv").write_bytes(b"\n\r\n\n")
    message = published(addressbase=folder)
    assert (
        f"addressbase_cleaned_raw failed: AddressBase drop {folder} holds no address rows"
    ) in message.splitlines()
    assert "materialised" not in message


@pytest.mark.parametrize("with_a_bad_line", [False, True])
def test_a_truncated_gzip_part_refuses_the_drop_naming_the_file(
    tmp_path, published, with_a_bad_line
):
    """Cut at a line's end, a truncated part would read as a shorter, valid file."""
    lines = [address_line(str(n), f"{n} Briggate", "LS1 6AA", -1.54, 53.797) for n in range(900)]
    if with_a_bad_line:
        lines[1] = "not an address"
    part = write_lines(tmp_path / "drop" / "part-0.csv.gz", lines)
    part.write_bytes(part.read_bytes()[:-20])
    message = published(addressbase=part.parent)
    assert f"AddressBase drop {part.parent} refused: {part}: " in message
