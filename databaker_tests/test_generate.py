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


# The boundary-reviews export (``--boundary-reviews N``).

REVIEWS = 3
REVIEW_COLUMNS = 20
REVIEW_FOLDER = re.compile(
    r"^boundary_review_id=(\d+)/divisionset_generation=(old|new)/division_type=([A-Z]+)"
    r"/part-\d{5}\.csv$"
)
SCENARIOS = {"NO_CHANGE", "NAME_CHANGED", "BOUNDARY_CHANGED", "BOTH_CHANGED"}
SAMPLE = Path(__file__).parents[1] / "databaker" / "sample"


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    return _make(tmp_path_factory.mktemp("reviewed"), boundary_reviews=REVIEWS)


@pytest.fixture(scope="module")
def review_rows(reviewed: GeneratedData) -> dict[tuple[str, str, str], list[list[str]]]:
    return _review_rows(reviewed.boundary_reviews_dir)


def _review_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _review_rows(root: Path) -> dict[tuple[str, str, str], list[list[str]]]:
    """(review id, division type, generation) -> rows, checking each row's folder keys."""
    out: dict[tuple[str, str, str], list[list[str]]] = {}
    for name in sorted(_review_files(root)):
        review, generation, division_type = REVIEW_FOLDER.match(name).groups()
        with open(root / name, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert rows and all(len(r) == REVIEW_COLUMNS for r in rows)
        assert all(r[17:] == [review, generation, division_type] for r in rows)
        out.setdefault((review, division_type, generation), []).extend(rows)
    return out


def _division_of(points: np.ndarray, rows: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Per point the index of the division (of ``rows``) one of whose pieces contains it,
    or -1, and the divisions' slugs; no point may be in two divisions of one set."""
    slugs, owner = np.unique([r[13] for r in rows], return_inverse=True)
    pieces = shapely.from_wkt([r[16] for r in rows])
    inside = np.column_stack([shapely.contains_xy(p, points[:, 0], points[:, 1]) for p in pieces])
    per_division = np.zeros((len(points), len(slugs)), dtype=bool)
    for column, division in enumerate(owner):
        per_division[:, division] |= inside[:, column]
    assert (per_division.sum(axis=1) <= 1).all()
    return np.where(per_division.any(axis=1), per_division.argmax(axis=1), -1), slugs


def _scenarios(points: np.ndarray, old: list[list[str]], new: list[list[str]]) -> dict:
    """Scenario -> addresses, for the addresses inside an old and a new division:
    ``name_same`` when the two divisions' slugs are equal, ``boundary_same`` when both
    divisions hold exactly the same taking-part addresses."""
    before, old_slugs = _division_of(points, old)
    after, new_slugs = _division_of(points, new)
    part = (before >= 0) & (after >= 0)
    before, after = before[part], after[part]
    name_same = old_slugs[before] == new_slugs[after]
    in_old = np.bincount(before)[before]
    in_new = np.bincount(after)[after]
    _, pair, in_both = np.unique(
        before * len(new_slugs) + after, return_inverse=True, return_counts=True
    )
    boundary_same = (in_old == in_new) & (in_new == in_both[pair])
    labels = np.where(
        name_same,
        np.where(boundary_same, "NO_CHANGE", "BOUNDARY_CHANGED"),
        np.where(boundary_same, "NAME_CHANGED", "BOTH_CHANGED"),
    )
    found = dict(zip(*np.unique(labels, return_counts=True), strict=True))
    return {str(k): int(v) for k, v in found.items()} | {"taking_part": int(part.sum())}


def _review_scenarios(
    points: np.ndarray, rows: dict[tuple[str, str, str], list[list[str]]]
) -> dict[tuple[str, str], dict]:
    pairs = sorted({key[:2] for key in rows})
    return {k: _scenarios(points, rows[(*k, "old")], rows[(*k, "new")]) for k in pairs}


def _sample_points() -> np.ndarray:
    drop = SAMPLE / "addressbase" / "2026-01-05" / "addressbase_cleaned"
    text = "".join(gzip.decompress(p.read_bytes()).decode() for p in sorted(drop.glob("*.gz")))
    return np.array(
        [[float(v) for v in LOCATION.match(r[3]).groups()] for r in csv.reader(io.StringIO(text))]
    )


def test_boundary_reviews_leave_the_other_outputs_unchanged(
    plain: GeneratedData, reviewed: GeneratedData
) -> None:
    for a, b in zip(_parts(plain), _parts(reviewed), strict=True):
        assert a.read_bytes() == b.read_bytes()
    assert reviewed.ballots_csv.read_bytes() == plain.ballots_csv.read_bytes()
    assert plain.boundary_reviews_dir is None and plain.boundary_review_rows == 0
    assert not (plain.addressbase_dir.parent / "boundary_reviews").exists()
    assert reviewed.boundary_reviews == REVIEWS


def test_boundary_reviews_are_deterministic(tmp_path: Path, reviewed: GeneratedData) -> None:
    again = _make(tmp_path / "again", boundary_reviews=REVIEWS, files=1, compress=True)
    files = _review_files(reviewed.boundary_reviews_dir)
    assert _review_files(again.boundary_reviews_dir) == files
    other = _make(tmp_path / "other", seed=SEED + 1, boundary_reviews=REVIEWS)
    assert _review_files(other.boundary_reviews_dir) != files


def test_boundary_reviews_layout_and_rows(
    reviewed: GeneratedData, review_rows: dict[tuple[str, str, str], list[list[str]]]
) -> None:
    reviews = {key[0] for key in review_rows}
    assert len(reviews) == REVIEWS and all(r.isdigit() and r[0] != "0" for r in reviews)
    for review in reviews:
        types = {key[1:] for key in review_rows if key[0] == review}
        assert len({t for t, _ in types}) == 3
        assert types == {(t, g) for t, _ in types for g in ("old", "new")}
    every = [r for rows in review_rows.values() for r in rows]
    assert len(every) == reviewed.boundary_review_rows
    for review in reviews:
        mine = [r for r in every if r[17] == review]
        assert len({tuple(r[:11]) for r in mine}) == 1
    slugs = {r[0] for r in every}
    assert len(slugs) == REVIEWS and all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", s) for s in slugs)
    assert {r[1] for r in every} <= {"CURRENT", "COMPLETED"}
    assert all(re.fullmatch(r"[EWS]\d{8}", r[10]) for r in every)
    assert all(re.fullmatch(r"gss:[EWS]\d{8}|unit_id:\d+", r[15]) for r in every)
    assert all(re.fullmatch(r"|https://[^/]+/pmtiles/\d+\.pmtiles", r[12]) for r in every)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", r[13]) and r[14] for r in every)
    assert all(r[12].endswith(f"/{r[11]}.pmtiles") for r in every if r[12])
    assert "" in {r[4] for r in every}
    for rows in review_rows.values():
        assert len({r[11] for r in rows}) == 1
    shapes = shapely.from_wkt([r[16] for r in every])
    assert shapely.is_valid(shapes).all()
    assert set(shapely.get_type_id(shapes)) == {3, 6}


def test_boundary_review_divisions_come_in_pieces(
    review_rows: dict[tuple[str, str, str], list[list[str]]],
) -> None:
    several = 0
    for rows in review_rows.values():
        pieces = shapely.from_wkt([r[16] for r in rows])
        assert shapely.coverage_is_valid(pieces)
        per_division = np.unique([r[13] for r in rows], return_counts=True)[1]
        several += int((per_division > 1).sum())
    assert several > 0


def test_kept_divisions_are_the_old_ones_and_the_old_wards_are_the_ballots(
    review_rows: dict[tuple[str, str, str], list[list[str]]], ballots: list[list[str]]
) -> None:
    kept = renamed = 0
    for (review, division_type, generation), rows in review_rows.items():
        if generation == "new":
            continue
        old: dict[tuple[str, str], list[str]] = {}
        for r in rows:
            old.setdefault((r[13], r[15]), []).append(r[16])
        new: dict[tuple[str, str], list[str]] = {}
        for r in review_rows[(review, division_type, "new")]:
            new.setdefault((r[13], r[15]), []).append(r[16])
        kept += sum(old.get(key) == text for key, text in new.items())
        by_code = {code: text for (_, code), text in old.items()}
        renamed += sum(key not in old and by_code.get(key[1]) == text for key, text in new.items())
        assert all(by_code.get(code, text) == text for (_, code), text in new.items())
    assert kept and renamed
    areas = {r[1]: r[2].removeprefix("SRID=4326;") for r in ballots[1:] if r[3] == "Division"}
    wards: dict[str, list[str]] = {}
    for key, rows in review_rows.items():
        for r in rows:
            if key[2] == "old" and r[15].removeprefix("gss:") in areas:
                wards.setdefault(r[15].removeprefix("gss:"), []).append(r[16])
    assert wards
    for code, texts in wards.items():
        whole = shapely.union_all(shapely.from_wkt(texts))
        assert shapely.equals(whole, shapely.from_wkt(areas[code]))


def test_every_scenario_and_coverage_change(
    points: np.ndarray, review_rows: dict[tuple[str, str, str], list[list[str]]]
) -> None:
    found = _review_scenarios(points, review_rows)
    assert set().union(*found.values()) >= SCENARIOS
    for review in {key[0] for key in review_rows}:
        assert sum(v["taking_part"] for k, v in found.items() if k[0] == review) > 0
    inside = {key: (_division_of(points, rows)[0] >= 0).sum() for key, rows in review_rows.items()}
    assert any(inside[(*k, "old")] != inside[(*k, "new")] for k in found)


def test_too_many_boundary_reviews_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="councils"):
        _make(tmp_path, addresses=3000, divisions=6, boundary_reviews=50)


def test_rerun_replaces_or_removes_the_reviews(tmp_path: Path) -> None:
    first = _make(tmp_path, addresses=3000, divisions=6, boundary_reviews=1)
    stale = tmp_path / "boundary_reviews" / "stale.csv"
    stale.write_text("x\n")
    again = _make(tmp_path, addresses=3000, divisions=6, boundary_reviews=1, seed=SEED + 2)
    assert again.boundary_reviews_dir == first.boundary_reviews_dir and not stale.exists()
    none = _make(tmp_path, addresses=3000, divisions=6)
    assert none.boundary_reviews_dir is None
    assert not (tmp_path / "boundary_reviews").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_failed_run_keeps_the_earlier_reviews(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _make(tmp_path, addresses=3000, divisions=6, boundary_reviews=1)
    before = _review_files(first.boundary_reviews_dir)

    def broken(*args: object) -> object:
        raise OSError("disk full")

    monkeypatch.setattr("databaker.generate.address_lines", broken)
    with pytest.raises(OSError, match="disk full"):
        _make(tmp_path, addresses=3000, divisions=6, boundary_reviews=1, seed=SEED + 5)
    assert _review_files(first.boundary_reviews_dir) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bundled_sample_boundary_reviews() -> None:
    root = SAMPLE / "boundary_reviews"
    files = _review_files(root)
    assert sum(len(b) for b in files.values()) < 400_000
    rows = _review_rows(root)
    assert len({key[0] for key in rows}) == 2
    assert all(len({k[1] for k in rows if k[0] == review}) >= 2 for review, *_ in rows)
    found = _review_scenarios(_sample_points(), rows)
    assert set().union(*found.values()) >= SCENARIOS
    for review in {key[0] for key in rows}:
        assert sum(v["taking_part"] for k, v in found.items() if k[0] == review) > 0
