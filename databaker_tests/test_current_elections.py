"""The joined table and the published outcode files, on a hand-drawn map of ballots.

Map (lon, lat), all squares; expected ballots per address are worked out by hand below.
  D1 headingley  -1.60..-1.50 x 53.80..53.90, with a hole -1.56..-1.54 x 53.84..53.86
  D3 enclave     exactly the hole of D1
  D2 hyde-park   MULTIPOLYGON: -1.50..-1.40 x 53.80..53.90 and -1.30..-1.20 x 53.80..53.90
  O1 mayor       two overlapping pieces: -1.65..-1.45 and -1.50..-1.25, both x 53.75..53.95
"""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from databaker.assets.current_elections import LAYER
from databaker.layers.versions import published_manifest
from databaker.resources import LocalLayerStore
from databaker_tests.conftest import (
    address_line,
    asset_runner,
    ballot_line,
    failure_messages,
    materialization,
    write_lines,
)

DATE = "2027-05-06"
HEADINGLEY, ENCLAVE = f"local.leeds.headingley.{DATE}", f"local.leeds.enclave.{DATE}"
HYDE_PARK, MAYOR = f"local.leeds.hyde-park.{DATE}", f"mayor.west-yorkshire.{DATE}"


def square(x0, x1, y0, y1):
    return f"({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0})"


BALLOTS = [
    "election_id,geography_id,geography_text,source_table",
    ballot_line(
        HEADINGLEY,
        "E05001",
        f"SRID=4326;POLYGON({square(-1.60, -1.50, 53.80, 53.90)},"
        f"{square(-1.56, -1.54, 53.84, 53.86)})",
        "Division",
    ),
    ballot_line(ENCLAVE, "E05002", f"POLYGON({square(-1.56, -1.54, 53.84, 53.86)})", "Division"),
    ballot_line(
        HYDE_PARK,
        "E05003",
        f"MULTIPOLYGON(({square(-1.50, -1.40, 53.80, 53.90)}),"
        f"({square(-1.30, -1.20, 53.80, 53.90)}))",
        "Division",
    ),
    ballot_line(MAYOR, "E47001", f"POLYGON({square(-1.65, -1.45, 53.75, 53.95)})", "Organisation"),
    ballot_line(MAYOR, "E47001", f"POLYGON({square(-1.50, -1.25, 53.75, 53.95)})", "Organisation"),
]

# uprn, address, postcode, lon, lat, expected ballot IDs
ADDRESSES = [
    ("9", "9 Otley Road", "LS6 1AA", -1.58, 53.82, [HEADINGLEY, MAYOR]),
    ("10", 'Flat 1, "The Grange", Otley Road', "LS6 1AA", -1.59, 53.82, [HEADINGLEY, MAYOR]),
    ("11", "In The Hole", "LS6 1AB", -1.55, 53.85, [ENCLAVE, MAYOR]),  # hole of D1
    ("12", "Both Mayor Pieces", "LS6 2AA", -1.47, 53.85, [HYDE_PARK, MAYOR]),  # pieces overlap
    ("13", "Far Part", "LS7 1AA", -1.26, 53.85, [HYDE_PARK, MAYOR]),  # second polygon of D2
    ("14", "On The Boundary", "LS6 3AA", -1.50, 53.85, [MAYOR]),  # on D1/D2 edge: in neither
    ("15", "Outside Everything", "LS8 1AA", -1.10, 53.85, []),
    ("16", "Nowhere Near", "DL1 1AA", -2.0, 54.5, []),
]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("layer") / "data"


@pytest.fixture(scope="module")
def baked(tmp_path_factory, data_root):
    tmp_path = tmp_path_factory.mktemp("inputs")
    drop = write_lines(
        tmp_path / "drop.csv", [address_line(u, a, p, x, y) for u, a, p, x, y, _ in ADDRESSES]
    )
    ballots = write_lines(tmp_path / "ballots.csv", BALLOTS)
    stale = data_root / "current_elections_parquet" / "ZZ9.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left from an older AddressBase")
    result = asset_runner(data_root)(addressbase=drop, ballots=ballots)
    assert result.success
    return result


def test_joined_table_has_each_address_once_with_its_sorted_ballots(baked, data_root):
    joined = pq.read_table(
        data_root / "current_ballots_joined_to_address_base", partitioning="hive"
    ).to_pylist()
    assert sorted((r["uprn"], r["ballot_ids"]) for r in joined) == sorted(
        (u, ids) for u, *_, ids in ADDRESSES
    )
    assert {str(r["first_letter"]) for r in joined} == {"L", "D"}
    assert set(joined[0]) == {"uprn", "ballot_ids", "first_letter"}


def test_one_file_per_outcode_sorted_by_postcode_then_uprn(baked, data_root):
    layer = data_root / "current_elections_parquet"
    assert sorted(p.name for p in layer.iterdir()) == [
        "DL1.parquet",
        "LS6.parquet",
        "LS7.parquet",
        "LS8.parquet",
        "_manifest.json",
    ]
    ls6 = pq.read_table(layer / "LS6.parquet")
    assert ls6.schema == pa.schema(
        [
            ("uprn", pa.string()),
            ("address", pa.string()),
            ("postcode", pa.string()),
            ("addressbase_source", pa.string()),  # dictionary-encoded in the bake, not here
            ("ballot_ids", pa.list_(pa.string())),
            ("outcode", pa.string()),
        ]
    )
    assert [(r["postcode"], r["uprn"], r["ballot_ids"]) for r in ls6.to_pylist()] == [
        ("LS6 1AA", "10", [HEADINGLEY, MAYOR]),  # "10" < "9" as strings
        ("LS6 1AA", "9", [HEADINGLEY, MAYOR]),
        ("LS6 1AB", "11", [ENCLAVE, MAYOR]),
        ("LS6 2AA", "12", [HYDE_PARK, MAYOR]),
        ("LS6 3AA", "14", [MAYOR]),
    ]
    assert ls6.to_pylist()[0]["address"] == 'Flat 1, "The Grange", Otley Road'
    assert {r["outcode"] for r in ls6.to_pylist()} == {"LS6"}


def test_an_outcode_without_any_ballot_gets_an_empty_file(baked, data_root):
    for outcode in ("LS8", "DL1"):
        table = pq.read_table(data_root / "current_elections_parquet" / f"{outcode}.parquet")
        assert (table.num_columns, table.num_rows) == (0, 0)


def test_outcode_files_this_bake_did_not_write_are_deleted(baked, data_root):
    assert not (data_root / "current_elections_parquet" / "ZZ9.parquet").exists()
    metadata = materialization(baked, "current_elections_parquet")
    assert metadata["stale_outcodes_deleted"] == 1
    assert (metadata["outcodes"], metadata["empty_outcodes"]) == (4, 2)
    assert (metadata["addresses"], metadata["addresses_with_ballots"]) == (8, 6)


def test_ballots_with_many_pieces_count_once(baked):
    assert materialization(baked, "current_ballots")["ballots"] == 4
    assert materialization(baked, "current_ballots")["rows"] == 5


@pytest.mark.parametrize(
    ("lines", "rejected"),
    [
        ([], 0),
        ([f"parl.leeds-central.{DATE},,,None", f"{MAYOR},E47001,,None"], 0),
        ([ballot_line(HEADINGLEY, "E05001", "POINT(-1.58 53.82)", "Division")], 1),
    ],
    ids=["header only", "no geography", "every row rejected within the allowance"],
)
def test_an_export_without_any_ballot_area_bakes_every_outcode_empty(tmp_path, lines, rejected):
    """Once every ballot is past polling day, the export names none: the layer says "no
    elections here" for every outcode."""
    drop = write_lines(
        tmp_path / "drop.csv", [address_line(u, a, p, x, y) for u, a, p, x, y, _ in ADDRESSES]
    )
    ballots = write_lines(tmp_path / "ballots.csv", [BALLOTS[0], *lines])
    data_root = tmp_path / "data"
    result = asset_runner(data_root)(addressbase=drop, ballots=ballots, max_rejected_rows=1)
    assert result.success, failure_messages(result)
    outcodes = sorted({postcode.split()[0] for _, _, postcode, *_ in ADDRESSES})
    layer = data_root / "current_elections_parquet"
    assert sorted(p.stem for p in layer.glob("*.parquet")) == outcodes
    for path in layer.glob("*.parquet"):
        table = pq.read_table(path)
        assert (table.num_columns, table.num_rows) == (0, 0)
    manifest = published_manifest(LocalLayerStore(root=str(data_root)), LAYER)
    assert (manifest.rows, manifest.rows_with_ids) == (len(ADDRESSES), 0)
    assert (manifest.outcodes, manifest.empty_outcodes) == (len(outcodes), len(outcodes))
    assert manifest.addresses_per_id == {}
    assert manifest.rejected_rows == {"addressbase_cleaned_raw": 0, "current_ballots": rejected}
    assert materialization(result, "current_ballots")["rows"] == 0
