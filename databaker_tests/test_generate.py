"""The synthetic data generator, checked by reading its files back with the csv module."""

from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path

import numpy as np
import pytest
import shapely
from uk_election_ids.election_ids import IdBuilder

from databaker.generate import GeneratedData, generate
from databaker.generate.addresses import address_lines

ADDRESSES = 12_000
DIVISIONS = 40
SEED = 11
POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$")
LOCATION = re.compile(r"^SRID=4326;POINT\((-?\d+\.\d{6}) (-?\d+\.\d{6})\)$")
COORD = re.compile(r"-?\d+\.\d+")
csv.field_size_limit(1 << 30)


def _make(root: Path, **overrides: object) -> GeneratedData:
    args: dict = {"addresses": ADDRESSES, "divisions": DIVISIONS, "seed": SEED, "files": 3}
    args.update(overrides)
    return generate(root, **args)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    return _make(tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def rows(plain: GeneratedData) -> list[list[str]]:
    out = []
    for part in _parts(plain):
        with open(part, newline="", encoding="utf-8") as handle:
            out.extend(csv.reader(handle))
    return out


@pytest.fixture(scope="module")
def ballots(plain: GeneratedData) -> list[list[str]]:
    with open(plain.ballots_csv, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def shapes(ballots: list[list[str]]) -> dict[str, np.ndarray]:
    mapped = [r for r in ballots[1:] if r[2]]
    geoms = shapely.from_wkt([r[2].removeprefix("SRID=4326;") for r in mapped])
    kinds = np.array([r[3] for r in mapped])
    return {kind: geoms[kinds == kind] for kind in ("Division", "Organisation")}


@pytest.fixture(scope="module")
def points(rows: list[list[str]]) -> np.ndarray:
    return np.array([[float(v) for v in LOCATION.match(r[3]).groups()] for r in rows])


def _parts(data: GeneratedData) -> list[Path]:
    return sorted(data.addressbase_dir.glob("addressbase_cleaned_*"))


def _inside(geoms: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Boolean matrix: point i inside (or on) geometry j."""
    return np.column_stack([shapely.intersects_xy(g, pts[:, 0], pts[:, 1]) for g in geoms])


def test_address_rows_are_well_formed(rows: list[list[str]], points: np.ndarray) -> None:
    assert len(rows) == ADDRESSES
    assert all(len(r) == 5 for r in rows)
    uprns = [r[0] for r in rows]
    assert all(u.isdigit() and 6 <= len(u) <= 12 and u[0] != "0" for u in uprns)
    assert len(set(uprns)) == ADDRESSES
    assert [int(u) for u in uprns] != list(range(1, ADDRESSES + 1))
    assert all(POSTCODE.match(r[2]) for r in rows)
    assert all(r[1] and "\n" not in r[1] for r in rows)
    assert all(re.fullmatch(r"[A-Z]{2}\d{2}", r[4]) for r in rows)
    assert {"RD02", "RD03", "RD04", "RD06"} <= {r[4] for r in rows}
    assert ((points[:, 0] >= -5.7) & (points[:, 0] <= 1.7)).all()
    assert ((points[:, 1] >= 50.0) & (points[:, 1] <= 58.6)).all()


def test_addresses_need_quoting_sometimes(rows: list[list[str]], plain: GeneratedData) -> None:
    with_comma = sum("," in r[1] for r in rows)
    with_quote = [r[1] for r in rows if '"' in r[1]]
    assert 0.3 * ADDRESSES < with_comma < ADDRESSES
    assert with_quote
    raw = _parts(plain)[0].read_text(encoding="utf-8")
    assert '""' in raw and raw.endswith("\n") and "\r" not in raw
    assert any(line.count(",") == 4 and '"' not in line for line in raw.splitlines())


def test_postcode_units_are_small_and_tight(rows: list[list[str]], points: np.ndarray) -> None:
    postcodes = np.array([r[2] for r in rows])
    _, unit, counts = np.unique(postcodes, return_inverse=True, return_counts=True)
    assert counts.min() >= 5 and counts.max() <= 30
    centre = np.column_stack([np.bincount(unit, points[:, i]) / counts for i in (0, 1)])
    assert np.abs(points - centre[unit]).max() < 0.01
    outcodes = {p.split()[0] for p in postcodes}
    assert len(outcodes) > 12


def test_parts_split_rows_evenly(plain: GeneratedData) -> None:
    parts = _parts(plain)
    assert [p.name for p in parts] == [f"addressbase_cleaned_00{i}.csv" for i in range(3)]
    sizes = [len(p.read_bytes().splitlines()) for p in parts]
    assert sum(sizes) == ADDRESSES and max(sizes) - min(sizes) <= 1


def test_gzip_single_part_equals_plain_parts(tmp_path: Path, plain: GeneratedData) -> None:
    packed = _make(tmp_path, files=1, compress=True)
    (part,) = _parts(packed)
    assert part.name == "addressbase_cleaned_000.csv.gz"
    joined = b"".join(p.read_bytes() for p in _parts(plain))
    assert gzip.decompress(part.read_bytes()) == joined
    assert packed.ballots_csv.read_bytes() == plain.ballots_csv.read_bytes()


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path, plain: GeneratedData) -> None:
    again = _make(tmp_path / "again")
    for a, b in zip(_parts(plain), _parts(again), strict=True):
        assert a.read_bytes() == b.read_bytes()
    assert again.ballots_csv.read_bytes() == plain.ballots_csv.read_bytes()
    other = _make(tmp_path / "other", seed=SEED + 1)
    assert _parts(other)[0].read_bytes() != _parts(plain)[0].read_bytes()
    assert other.ballots_csv.read_bytes() != plain.ballots_csv.read_bytes()


def test_rerun_replaces_outputs(tmp_path: Path) -> None:
    _make(tmp_path, addresses=3000, divisions=6, files=3)
    again = _make(tmp_path, addresses=3000, divisions=6, files=2, compress=True)
    names = sorted(p.name for p in again.addressbase_dir.iterdir())
    assert names == ["addressbase_cleaned_000.csv.gz", "addressbase_cleaned_001.csv.gz"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_too_few_divisions_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="divisions"):
        _make(tmp_path, divisions=3)


def test_ballot_ids_and_counts(ballots: list[list[str]], plain: GeneratedData) -> None:
    header, body = ballots[0], ballots[1:]
    assert header == ["election_id", "division_id", "geometry", "source_table"]
    assert all(len(r) == 4 for r in body)
    for election_id, *_ in body:
        assert IdBuilder.from_id(election_id).ballot_id == election_id
    kinds = [r[3] for r in body]
    assert set(kinds) == {"Division", "Organisation", "None"}
    assert kinds.count("Division") == DIVISIONS == plain.divisions
    assert len(body) == plain.ballot_rows
    assert len({r[0] for r in body}) == plain.ballots
    assert all(re.fullmatch(r"[EWS]\d{8}", r[1]) for r in body)
    unmapped = [r for r in body if r[3] == "None"]
    assert unmapped and all(r[2] == "" for r in unmapped)
    assert all(r[2] for r in body if r[3] != "None")
    orgs = [r[0] for r in body if r[3] == "Organisation"]
    assert len(set(orgs)) == plain.organisations and len(orgs) > len(set(orgs))
    assert all(o.startswith(("mayor.", "pcc.")) for o in orgs)


def test_ballot_geometry_text(ballots: list[list[str]]) -> None:
    texts = [r[2] for r in ballots[1:] if r[2]]
    assert any(t.startswith("SRID=4326;") for t in texts)
    assert any(t.startswith(("POLYGON", "MULTIPOLYGON")) for t in texts)
    raw = io.StringIO()
    csv.writer(raw, lineterminator="\n").writerow(["x", texts[0]])
    assert raw.getvalue().startswith('x,"')
    for text in texts[:20]:
        assert all(len(c.split(".")[1]) == 6 for c in COORD.findall(text.split(";")[-1]))


def test_divisions_are_valid_and_tessellate(shapes: dict[str, np.ndarray]) -> None:
    divisions, orgs = shapes["Division"], shapes["Organisation"]
    assert shapely.is_valid(divisions).all() and shapely.is_valid(orgs).all()
    assert set(shapely.get_type_id(orgs)) == {3}
    vertices = shapely.get_num_coordinates(divisions)
    assert vertices.min() >= 50 and vertices.max() <= 200
    assert shapely.coverage_is_valid(divisions)
    multi = divisions[shapely.get_type_id(divisions) == 6]
    assert any(shapely.get_num_geometries(m) == 2 for m in multi)
    polygons = shapely.get_parts(divisions)
    assert (shapely.get_num_interior_rings(polygons) > 0).any()


def test_ballots_nest_and_leave_gaps(
    rows: list[list[str]], points: np.ndarray, shapes: dict[str, np.ndarray]
) -> None:
    in_division = _inside(shapes["Division"], points)
    in_org = _inside(shapes["Organisation"], points)
    assert (in_division.sum(axis=1) <= 1).all()
    assert (in_division.any(axis=1) & in_org.any(axis=1)).any()
    assert (~in_division.any(axis=1)).sum() > 0
    covered = in_division.any(axis=1) | in_org.any(axis=1)
    outcodes = np.array([r[2].split()[0] for r in rows])
    with_ballot = set(outcodes[covered])
    assert set(outcodes) - with_ballot


def test_failed_run_leaves_no_partial_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _make(tmp_path, addresses=3000, divisions=6, files=2)
    before = {p.name: p.read_bytes() for p in [*_parts(first), first.ballots_csv]}
    calls = []

    def broken(*args: object) -> object:
        calls.append(1)
        if len(calls) > 2:
            raise OSError("disk full")
        return address_lines(*args)

    monkeypatch.setattr("databaker.generate.address_lines", broken)
    with pytest.raises(OSError, match="disk full"):
        _make(tmp_path, addresses=3000, divisions=6, files=2, seed=SEED + 5)
    assert {p.name: p.read_bytes() for p in [*_parts(first), first.ballots_csv]} == before
    leftovers = [*first.addressbase_dir.iterdir(), *tmp_path.iterdir()]
    assert not [p for p in leftovers if p.name.startswith(".")]


def test_bundled_sample_is_complete() -> None:
    sample = Path(__file__).parents[1] / "databaker" / "sample"
    drop = sample / "addressbase" / "2026-01-05"
    assert (drop / "_SUCCESS").is_file()
    parts = sorted((drop / "addressbase_cleaned").glob("addressbase_cleaned_*.csv.gz"))
    assert [p.name for p in parts] == [f"addressbase_cleaned_00{i}.csv.gz" for i in range(2)]
    lines = sum(len(gzip.decompress(p.read_bytes()).splitlines()) for p in parts)
    assert lines == 20_000
    with open(sample / "ballots.csv", newline="", encoding="utf-8") as handle:
        kinds = [r[3] for r in csv.reader(handle)][1:]
    assert kinds.count("Division") == 60 and "Organisation" in kinds and "None" in kinds
