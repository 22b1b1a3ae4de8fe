"""The generated organisations export, read back with the csv module and shapely as the
current-organisations layer's input reader would read it.

A small map is generated once; every check below is about that file (or the bundled
sample's), with the expectations worked out here from the rows themselves.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import shapely

from databaker.generate import GeneratedData, generate
from databaker_tests.test_current_organisations import HEADER as COLUMNS

ADDRESSES = 15_000
DIVISIONS = 50
SEED = 5
ON = "2026-12-06"
EE_TYPES = {
    "parl",
    "sp",
    "senedd",
    "nia",
    "gla",
    "combined-authority",
    "police-area",
    "local-authority",
}
SAMPLE = Path(__file__).parents[1] / "databaker" / "sample"
# The bundled sample is this command's output (README, "generate").
SAMPLE_ARGS = {
    "addresses": 20_000,
    "divisions": 60,
    "seed": 2026,
    "files": 2,
    "compress": True,
    "boundary_reviews": 2,
}
csv.field_size_limit(1 << 30)
TYPE, IDENT, NAME, GSS, START, END, DS_START, DS_END, DTYPE, SLUG, DNAME, DIDENT, GEOM = range(13)


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _geoms(rows: list[list[str]]) -> np.ndarray:
    return shapely.from_wkt([r[GEOM].removeprefix("SRID=4326;") for r in rows])


def _current(start: str, end: str, on: str = ON) -> bool:
    return start <= on and (end == "" or on <= end)


def _points(folder: Path) -> np.ndarray:
    """(lon, lat) of every address of a generated drop."""
    out = []
    for part in sorted(folder.glob("addressbase_cleaned_*")):
        data = part.read_bytes()
        text = gzip.decompress(data) if part.suffix == ".gz" else data
        for row in csv.reader(text.decode("utf-8").splitlines()):
            lon, lat = row[3].removeprefix("SRID=4326;POINT(").removesuffix(")").split()
            out.append((float(lon), float(lat)))
    return np.array(out)


def _areas(rows: list[list[str]]) -> dict[tuple, list[list[str]]]:
    """Rows grouped by area: (type, identifier, start, divisionset start, slug)."""
    out: dict[tuple, list[list[str]]] = defaultdict(list)
    for r in rows:
        out[r[TYPE], r[IDENT], r[START], r[DS_START], r[SLUG]].append(r)
    return out


def _union(rows: list[list[str]]) -> shapely.Geometry:
    return shapely.union_all(_geoms(rows))


def _containing(rows: list[list[str]], points: np.ndarray) -> np.ndarray:
    """How many of ``rows``' pieces contain each point (a point on an edge is in none)."""
    tree = shapely.STRtree(_geoms(rows))
    inside, _ = tree.query(shapely.points(points), predicate="within")
    return np.bincount(inside, minlength=len(points))


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    root = tmp_path_factory.mktemp("organisations")
    return generate(root, addresses=ADDRESSES, divisions=DIVISIONS, seed=SEED, organisations=True)


@pytest.fixture(scope="module")
def rows(made: GeneratedData) -> list[list[str]]:
    assert made.organisations_csv == made.addressbase_dir.parent / "organisations.csv"
    table = _read(made.organisations_csv)
    assert table[0] == COLUMNS
    return table[1:]


@pytest.fixture(scope="module")
def sample_rows() -> list[list[str]]:
    table = _read(SAMPLE / "organisations.csv")
    assert table[0] == COLUMNS
    return table[1:]


def test_rows_have_the_columns_and_the_counts(rows: list[list[str]], made: GeneratedData) -> None:
    assert all(len(r) == 13 for r in rows)
    assert len(rows) == made.organisation_rows
    assert len({tuple(r[:6]) for r in rows}) == made.exported_organisations
    divisions = {(r[IDENT], r[START], r[DS_START], r[SLUG]) for r in rows if r[SLUG]}
    assert len(divisions) == made.exported_divisions


def test_types_names_and_identifiers_are_everyelections(rows: list[list[str]]) -> None:
    assert {r[TYPE] for r in rows} <= EE_TYPES
    assert {"parl", "local-authority", "police-area", "combined-authority"} <= {
        r[TYPE] for r in rows
    }
    assert {(r[IDENT], r[NAME]) for r in rows if r[TYPE] == "parl"} == {
        ("parl", "House of Commons")
    }
    for r in rows:
        if r[TYPE] == "local-authority":
            assert re.fullmatch(r"[A-Z]{3}", r[IDENT]) and re.fullmatch(r"[EWS]\d{8}", r[GSS])
        if r[TYPE] in ("police-area", "combined-authority"):
            assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", r[IDENT])
        if r[SLUG]:
            assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", r[SLUG]) and r[DNAME]
            assert re.fullmatch(r"gss:[EWS]\d{8}", r[DIDENT])
    wmc = {r[DTYPE] for r in rows if r[TYPE] == "parl" and r[SLUG]}
    assert wmc == {"WMC"}
    kinds = {r[GSS][:3]: r[DTYPE] for r in rows if r[TYPE] == "local-authority" and r[SLUG]}
    assert kinds["E10"] == "CED" and kinds["E07"] == "DIW"
    # One organisation (type, identifier, start) has one name, GSS code and end.
    heads = Counter((r[TYPE], r[IDENT], r[START]) for r in {tuple(r[:6]) for r in rows})
    assert max(heads.values()) == 1


def test_dates_parse_and_divisionset_columns_go_with_divisions(rows: list[list[str]]) -> None:
    for r in rows:
        start = date.fromisoformat(r[START])
        assert r[END] == "" or date.fromisoformat(r[END]) >= start
        if r[SLUG]:
            since = date.fromisoformat(r[DS_START])
            assert r[DS_END] == "" or date.fromisoformat(r[DS_END]) >= since
            assert r[DTYPE] and r[DNAME] and r[DIDENT]
            assert r[END] == "" or (r[DS_END] and r[DS_END] <= r[END])
        else:
            assert r[DS_START] == r[DS_END] == r[DTYPE] == r[DNAME] == r[DIDENT] == ""


def test_geometries_are_valid_pieces_in_both_notations(rows: list[list[str]]) -> None:
    texts = [r[GEOM] for r in rows]
    assert any(t.startswith("SRID=4326;") for t in texts)
    assert any(t.startswith(("POLYGON", "MULTIPOLYGON")) for t in texts)
    geoms = _geoms(rows)
    assert shapely.is_valid(geoms).all()
    kinds = shapely.get_type_id(geoms)
    assert set(kinds) == {3, 6}
    x0, y0, x1, y1 = shapely.bounds(geoms).T
    assert (x0 > -7).all() and (x1 < 3).all() and (y0 > 49).all() and (y1 < 60).all()
    areas = _areas(rows)
    assert Counter(len(v) for v in areas.values())[1] < len(areas)
    for pieces in (v for v in areas.values() if len(v) > 1):
        cut = _geoms(pieces)
        assert shapely.coverage_is_valid(cut)
        assert shapely.area(cut).sum() == pytest.approx(shapely.area(_union(pieces)))


def test_same_seed_same_bytes_and_the_other_outputs_unchanged(
    tmp_path: Path, made: GeneratedData
) -> None:
    again = generate(
        tmp_path / "again",
        addresses=ADDRESSES,
        divisions=DIVISIONS,
        seed=SEED,
        organisations=True,
    )
    assert again.organisations_csv.read_bytes() == made.organisations_csv.read_bytes()
    plain = generate(tmp_path / "again", addresses=ADDRESSES, divisions=DIVISIONS, seed=SEED)
    assert plain.organisations_csv is None
    assert not (tmp_path / "again" / "organisations.csv").exists()
    assert plain.ballots_csv.read_bytes() == made.ballots_csv.read_bytes()
    [part] = plain.addressbase_dir.iterdir()
    assert part.read_bytes() == (made.addressbase_dir / part.name).read_bytes()


def test_every_address_has_a_council_a_ward_and_a_constituency(
    rows: list[list[str]], made: GeneratedData
) -> None:
    points = _points(made.addressbase_dir)
    assert len(points) == ADDRESSES
    live = [r for r in rows if _current(r[START], r[END])]
    councils = [r for r in live if r[TYPE] == "local-authority" and not r[SLUG]]
    assert (_containing(councils, points) >= 1).all()
    seats = [r for r in live if r[TYPE] == "parl" and r[SLUG]]
    assert (_containing(seats, points) == 1).all()
    wards = [
        r
        for r in live
        if r[TYPE] == "local-authority" and r[SLUG] and r[DTYPE] != "CED"
        if _current(r[DS_START], r[DS_END])
    ]
    assert (_containing(wards, points) == 1).all()


def test_a_ballots_ward_is_part_of_the_exports_ward_with_its_code(
    rows: list[list[str]], made: GeneratedData
) -> None:
    ballots = [r for r in _read(made.ballots_csv)[1:] if r[3] == "Division"]
    wards = defaultdict(list)
    for r in rows:
        if r[TYPE] == "local-authority" and r[DTYPE] != "CED":
            wards[r[DIDENT]].append(r)
    for _, code, text, _ in ballots:
        ward = _union(wards[f"gss:{code}"])
        inside = shapely.from_wkt(text.removeprefix("SRID=4326;"))
        assert shapely.difference(inside, ward).area < 1e-12, code


def test_divisions_tessellate_their_organisation(rows: list[list[str]]) -> None:
    areas = _areas(rows)
    own = {k[:3]: v for k, v in areas.items() if not k[4]}
    sets: dict[tuple, list[list[str]]] = defaultdict(list)
    for key, pieces in areas.items():
        if key[4]:
            sets[key[:4]] += pieces
    assert sets
    for key, pieces in sets.items():
        whole = _union(own[key[:3]])
        divisions = shapely.area(_geoms(pieces)).sum()
        assert divisions == pytest.approx(whole.area, rel=1e-9), f"overlaps in {key}"
        assert shapely.symmetric_difference(whole, _union(pieces)).area < 1e-9 * whole.area


def _next_day(day: str) -> str:
    return date.fromordinal(date.fromisoformat(day).toordinal() + 1).isoformat()


def _features(rows: list[list[str]]) -> None:
    """The cases the current-organisations layer must tell apart, all in one file."""
    areas = _areas(rows)
    live = {k: _union(v) for k, v in areas.items() if not k[4] and _current(k[2], v[0][END])}
    councils = {k: g for k, g in live.items() if k[0] == "local-authority"}
    gss = {k: areas[k][0][GSS] for k in councils}
    counties = [k for k in councils if gss[k].startswith("E10")]
    districts = [k for k in councils if gss[k].startswith("E07")]
    assert counties and districts
    county = counties[0]
    inside = [k for k in districts if councils[county].contains(councils[k].buffer(-1e-6))]
    assert inside, "a district inside a county"
    assert {areas[k][0][DTYPE] for k in areas if k[:3] == county[:3] and k[4]} == {"CED"}
    assert any(k[:3] == inside[0][:3] and areas[k][0][DTYPE] == "DIW" for k in areas)
    lower = [g for k, g in councils.items() if k not in counties]
    seats = [_union(v) for k, v in areas.items() if k[0] == "parl" and k[4]]
    crossing = [s for s in seats if sum(s.intersection(c).area > 1e-6 for c in lower) >= 2]
    assert crossing, "a constituency across council borders"
    assert any(k[0] == "police-area" for k in live)
    assert any(k[0] == "combined-authority" for k in live)
    heads = {tuple(v[0][:6]) for k, v in areas.items() if not k[4]}
    assert any(h[END] and h[END] < ON for h in heads), "an organisation that ended"
    assert any(h[START] > ON for h in heads), "an organisation not started yet"
    spans = defaultdict(set)
    for k, v in areas.items():
        if k[4]:
            spans[k[1], k[2]].add((v[0][DS_START], v[0][DS_END]))
    replaced = [
        (ends, starts)
        for ends, starts in (
            ({_next_day(e) for _, e in s if e}, {start for start, _ in s}) for s in spans.values()
        )
        if ends & starts
    ]
    assert replaced, "a divisionset replaced on a date"


def test_the_map_has_every_case_the_layer_tells_apart(rows: list[list[str]]) -> None:
    _features(rows)


def test_bundled_sample_has_every_case(sample_rows: list[list[str]]) -> None:
    _features(sample_rows)
    types = {r[TYPE] for r in sample_rows}
    assert {"parl", "combined-authority", "police-area", "local-authority"} <= types
    assert (SAMPLE / "organisations.csv").stat().st_size < 1_000_000


def test_bundled_sample_addresses_have_several_organisations(
    sample_rows: list[list[str]],
) -> None:
    points = _points(SAMPLE / "addressbase" / "2026-01-05" / "addressbase_cleaned")
    live = [r for r in sample_rows if _current(r[START], r[END]) and not r[SLUG]]
    assert (_containing(live, points) >= 3).all()


def test_bundled_sample_is_what_the_generator_makes(tmp_path: Path) -> None:
    made = generate(tmp_path, **SAMPLE_ARGS, organisations=True)
    assert made.organisations_csv.read_bytes() == (SAMPLE / "organisations.csv").read_bytes()
