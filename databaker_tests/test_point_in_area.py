"""The embedded engine's point-in-area join gives what ``ST_Contains`` gives, on whole columns."""

import threading

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from databaker.assets.current_elections.join import JOIN_QUERY
from databaker.resources import DuckDBQueryEngine, point_in_area
from databaker.resources.band_segments import BAND_DEGREES
from databaker.resources.point_in_area import AreaIndex


@pytest.fixture(autouse=True, params=["segments", "boxes"])
def way(request, monkeypatch) -> str:
    """Every test twice: by the band segments a bake's letters are joined by, and by the
    bounding boxes a few points (a rebake's) are."""
    monkeypatch.setattr(point_in_area, "FEW_POINTS", 0 if request.param == "segments" else 10**9)
    return request.param


def index_of(areas: list[tuple[str, shapely.Geometry]]) -> AreaIndex:
    return AreaIndex(
        pa.array([area_id for area_id, _ in areas]),
        pa.array([shapely.to_wkb(shape) for _, shape in areas], pa.binary()),
    )


def ids_for(areas: list[tuple[str, shapely.Geometry]], points: list[tuple[float, float]]):
    x, y = np.array(points, dtype=float).reshape(-1, 2).T
    return index_of(areas).ids_containing(x, y).to_pylist()


def ids_testing_every_area(areas, x: np.ndarray, y: np.ndarray) -> list[list[str]]:
    """Each point's sorted distinct IDs, every area tested against every point."""
    expected = [set() for _ in x]
    for area_id, shape in areas:
        for point in np.flatnonzero(shapely.contains_xy(shape, x, y)):
            expected[point].add(area_id)
    return [sorted(ids) for ids in expected]


def test_each_point_gets_the_sorted_distinct_ids_of_the_areas_containing_it():
    ring = Polygon(box(0, 0, 4, 4).exterior.coords, [box(1, 1, 2, 2).exterior.coords])
    areas = [
        ("ward.b", box(0, 0, 2, 2)),
        ("ward.a", box(2, 0, 4, 2)),
        ("mayor", MultiPolygon([box(0, 0, 1, 1), box(3, 0, 4, 1)])),
        ("county", ring),
        # A ballot cut into two pieces: a point in either piece gets the ID once.
        ("pcc", box(0, 0, 2, 4)),
        ("pcc", box(1, 0, 3, 4)),
    ]
    points = [
        (0.5, 0.5),  # ward.b, mayor (first part), county, pcc
        (3.5, 0.5),  # ward.a, mayor (second part), county
        (1.5, 1.5),  # in the county's hole: ward.b and pcc (both pieces)
        (2.0, 0.5),  # on the edge between the wards: in neither; county, pcc
        (9.0, 9.0),  # nowhere
    ]
    assert ids_for(areas, points) == [
        ["county", "mayor", "pcc", "ward.b"],
        ["county", "mayor", "ward.a"],
        ["pcc", "ward.b"],
        ["county", "pcc"],
        [],
    ]


def test_a_point_on_a_boundary_is_not_contained():
    assert ids_for([("a", box(0, 0, 1, 1))], [(0, 0.5), (1, 1), (0.5, 0)]) == [[], [], []]


def test_areas_many_bands_tall_find_points_in_every_band():
    tall = box(0, 50, 0.01, 50 + 200 * BAND_DEGREES)
    ys = 50 + (np.arange(200) + 0.5) * BAND_DEGREES
    assert ids_for([("tall", tall)], [(0.005, y) for y in ys]) == [["tall"]] * 200


def test_an_empty_area_contains_nothing():
    areas = [("empty", Polygon()), ("a", box(0, 0, 1, 1))]
    assert ids_for(areas, [(0.5, 0.5), (2, 2)]) == [["a"], []]


def test_no_points_or_no_areas():
    assert ids_for([("a", box(0, 0, 1, 1))], []) == []
    assert ids_for([], [(0.5, 0.5)]) == [[]]


def test_random_areas_agree_with_testing_every_area_against_every_point():
    rng = np.random.default_rng(7)
    centres = rng.uniform([-3, 51], [0, 54], size=(300, 2))
    shapes = shapely.buffer(shapely.points(centres), rng.uniform(0.01, 0.4, 300), quad_segs=12)
    areas = [(f"ballot.{i % 250:03d}", shape) for i, shape in enumerate(shapes)]
    x = rng.uniform(-3.5, 0.5, 20_000)
    y = rng.uniform(50.5, 54.5, 20_000)

    found = index_of(areas).ids_containing(x, y).to_pylist()
    assert found == ids_testing_every_area(areas, x, y)
    assert sum(map(len, found)) > len(x) // 4


def test_band_lines_edges_along_them_and_vertices_on_them_agree_with_every_test():
    """Where a band ends is where the join's arithmetic is least forgiving: areas whose
    vertices and level edges lie on band lines, an edge crossing many bands, a hole, a sliver
    narrower than a millimetre; points on the lines, on the edges, at the vertices and a hair
    either side of them."""
    h, south = BAND_DEGREES, 52.0

    def line(k: float) -> float:
        return south + k * h

    stairs = Polygon(
        [
            (0, line(0)),
            (0.004, line(0)),
            (0.004, line(1)),
            (0.008, line(1)),
            (0.008, line(3)),
            (0, line(3)),
        ]
    )
    diagonal = Polygon([(0.01, line(0)), (0.05, line(40)), (0.01, line(40))])
    holed = Polygon(
        box(0.06, line(0), 0.07, line(4)).exterior.coords,
        [box(0.062, line(1), 0.068, line(2)).exterior.coords],
    )
    sliver = box(0.08, line(0.5), 0.08 + 1e-8, line(6.5))
    level = MultiPolygon([box(0.09, line(2), 0.1, line(2.5)), box(0.09, line(3), 0.1, line(4))])
    areas = [
        ("stairs", stairs),
        ("diagonal", diagonal),
        ("holed", holed),
        ("sliver", sliver),
        ("level", level),
        ("wide", box(0, line(0.5), 0.1, line(2))),
    ]
    xs = np.unique(
        np.concatenate(
            [
                shapely.get_coordinates(
                    shapely.get_rings(shapely.get_parts([s for _, s in areas]))
                )[:, 0],
                np.linspace(-0.001, 0.101, 409),
            ]
        )
    )
    ys = np.concatenate([[line(k) for k in np.arange(-1, 41, 0.5)]])
    ys = np.concatenate([ys, np.nextafter(ys, np.inf), np.nextafter(ys, -np.inf)])
    xs = np.concatenate([xs, np.nextafter(xs, np.inf), np.nextafter(xs, -np.inf)])
    x, y = (grid.ravel() for grid in np.meshgrid(xs, ys))
    # Points on the diagonal's long edge, as near as floating point puts them.
    t = np.linspace(0, 1, 4001)
    x = np.concatenate([x, 0.01 + t * 0.04, 0.01 + t * 0.04 + 1e-12])
    y = np.concatenate([y, line(0) + t * (line(40) - line(0)), line(0) + t * (line(40) - line(0))])

    found = index_of(areas).ids_containing(x, y).to_pylist()
    assert found == ids_testing_every_area(areas, x, y)
    assert all(any(area_id in ids for ids in found) for area_id, _ in areas)


def test_an_inside_gap_narrower_than_the_keys_rounding_is_tested_not_lost():
    """Far from the map's southern edge a key's rounding is about a picometre of longitude:
    a strip of a polygon between its shell and a hole can be narrower than that once both
    edges are widened by the margin."""
    south = 52.0
    gap = 2e-9 + 3e-13
    shell = [(0.1, south), (0.2, south), (0.2, south + 0.01), (0.1, south + 0.01)]
    hole = [(0.1 + gap, south + 0.002), (0.15, south + 0.002), (0.15, south + 0.008),
            (0.1 + gap, south + 0.008)]  # fmt: skip
    areas = [("far", box(5.0, 40.0, 5.1, 40.1)), ("holed", Polygon(shell, [hole]))]
    x = np.array([0.1 + gap / 2, 0.12, 0.1 + 2 * gap, 0.1 - 1e-12, 0.17])
    y = np.full(len(x), south + 0.005)
    found = index_of(areas).ids_containing(x, y).to_pylist()
    assert found == ids_testing_every_area(areas, x, y)
    assert found == [["holed"], [], [], [], ["holed"]]


def write_tables(root, areas: int):
    """A points table (two letters) and an areas table of ``areas`` rows, as the bake writes
    them."""
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-2, -1, 4000), rng.uniform(53, 54, 4000)
    for letter in ("L", "S"):
        folder = root / "points" / f"first_letter={letter}"
        folder.mkdir(parents=True)
        pq.write_table(
            pa.table(
                {
                    "uprn": [f"{letter}{i}" for i in range(len(x))],
                    "address": [f"{i} Road" for i in range(len(x))],
                    "postcode": [f"{letter}1 1AA"] * len(x),
                    "addressbase_source": ["drop"] * len(x),
                    "longitude": x,
                    "latitude": y,
                }
            ),
            folder / "part.parquet",
        )
    centres = rng.uniform([-2, 53], [-1, 54], size=(areas, 2))
    shapes = shapely.buffer(shapely.points(centres), 0.15, quad_segs=8)
    (root / "areas").mkdir()
    engine = DuckDBQueryEngine()
    with engine.connection() as conn:
        conn.register(
            "areas",
            pa.table(
                {
                    "election_id": pa.array(
                        [f"local.x.w{i % 40}.2027-05-06" for i in range(areas)], pa.string()
                    ),
                    "wkb": pa.array(shapely.to_wkb(shapes), pa.binary()),
                }
            ),
        )
        conn.execute(
            "COPY (SELECT election_id, ST_GeomFromWKB(wkb) AS geometry FROM areas) TO ?",
            [str(root / "areas" / "data.parquet")],
        )
    return root


@pytest.fixture
def tables(tmp_path):
    return write_tables(tmp_path, areas=60)


def joined_both_ways(tables) -> dict[str, list[tuple]]:
    """The rows the join's SQL and the engine's own join write, each sorted."""
    engine = DuckDBQueryEngine()
    written = {}
    for how, run in {"sql": engine.run_sql, "native": engine.run}.items():
        run(
            JOIN_QUERY.sql if how == "sql" else JOIN_QUERY,
            {
                "addressbase_partitioned": f"{tables}/points/",
                "current_ballots": f"{tables}/areas/",
                "letters": ["L", "S"],
                "output": f"{tables}/{how}/",
            },
        )
        table = pq.read_table(tables / how)
        written[how] = sorted(zip(*(table[c].to_pylist() for c in table.column_names), strict=True))
        assert table.schema.names == written_columns()
    return written


def test_the_engine_writes_what_the_joins_sql_writes(tables):
    written = joined_both_ways(tables)
    assert written["native"] == written["sql"]
    assert sum(len(row[ids_at()]) > 0 for row in written["native"]) > 1000


def test_with_no_areas_at_all_every_point_has_none(tmp_path):
    """An export whose every ballot is past polling day leaves a ballots table of no rows,
    which DuckDB writes without GeoParquet metadata: its geometry reads back as a BLOB."""
    written = joined_both_ways(write_tables(tmp_path, areas=0))
    assert written["native"] == written["sql"]
    assert len(written["native"]) == 8000
    assert {tuple(row[ids_at()]) for row in written["native"]} == {()}


def written_columns() -> list[str]:
    return [*JOIN_QUERY.carried, JOIN_QUERY.ids_column, "first_letter"]


def ids_at() -> int:
    return written_columns().index(JOIN_QUERY.ids_column)


def test_a_letter_joined_on_s3_is_listed_once_and_written_in_one_request(s3_env, way):
    """On S3 itself every request waits tens of milliseconds, one after another within a
    letter: its folder is listed once (not first asked whether it is a folder), no folder
    marker is written for the output, and the output goes up as one PutObject, not a
    multipart upload of three requests."""
    bucket = s3_env.new_bucket()
    points = pa.table({"uprn": ["1", "2"], "longitude": [0.5, 5.0], "latitude": [0.5, 5.0]})
    filesystem, base = point_in_area.filesystem_of(f"s3://{bucket}/points/")
    pq.write_table(points, f"{base}first_letter=L/part-0.parquet", filesystem=filesystem)
    areas = [("a", box(0, 0, 1, 1))]
    before = s3_env.requests(bucket)
    point_in_area.write_point_lists(
        points=f"s3://{bucket}/points/",
        letters=["L", "M"],
        output=f"s3://{bucket}/joined/",
        carried=["uprn"],
        ids_column="ids",
        lists=index_of(areas).ids_containing,
        workers=1,
    )
    made = s3_env.requests(bucket) - before
    assert made["LIST"] == 2
    assert made["PUT"] == 1
    assert made.keys() <= {"LIST", "GET", "PUT"}
    joined = pq.read_table(f"{bucket}/joined/first_letter=L/data_0.parquet", filesystem=filesystem)
    assert joined.to_pydict() == {"uprn": ["1", "2"], "ids": [["a"], []]}
    unjoined = filesystem.get_file_info(f"{bucket}/joined/first_letter=M/data_0.parquet")
    assert unjoined.type == pafs.FileType.NotFound


@pytest.mark.parametrize("on_s3", [True, False], ids=["s3", "local"])
def test_on_s3_the_next_letter_is_read_while_one_is_joined(s3_env, tmp_path, on_s3, way):
    """A letter's reading on S3 waits round trips that would leave a core idle: one worker
    still joins one letter at a time, while the next is read. On local disk, where reading
    is the cores' work too, a letter is read only when a worker is free."""
    root = f"s3://{s3_env.new_bucket()}/" if on_s3 else f"{tmp_path}/"
    filesystem, base = point_in_area.filesystem_of(f"{root}points/")
    letters = ["A", "B", "C"]
    for n, letter in enumerate(letters):
        row = {"uprn": [str(n)], "longitude": [0.5], "latitude": [0.5]}
        if not on_s3:
            filesystem.create_dir(f"{base}first_letter={letter}")
        pq.write_table(
            pa.table(row), f"{base}first_letter={letter}/p.parquet", filesystem=filesystem
        )
    index = index_of([("a", box(0, 0, 1, 1))])
    # Letters read; joins going on; joins going on as each starts; whether a second letter
    # was read by the end of the first join.
    read, joining, most_at_once, read_meanwhile = [], [], [], []
    next_read = threading.Event()
    reading = point_in_area.read_parquet_folder

    def read_and_count(filesystem, folder, columns):
        rows = reading(filesystem, folder, columns)
        read.append(folder[-1])
        if len(read) == 2:
            next_read.set()
        return rows

    def lists(x, y):
        joining.append(1)
        most_at_once.append(len(joining))
        if len(most_at_once) == 1:
            read_meanwhile.append(next_read.wait(timeout=10 if on_s3 else 1))
        joining.pop()
        return index.ids_containing(x, y)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(point_in_area, "read_parquet_folder", read_and_count)
        point_in_area.write_point_lists(
            points=f"{root}points/",
            letters=letters,
            output=f"{root}joined/",
            carried=["uprn"],
            ids_column="ids",
            lists=lists,
            workers=1,
        )
    assert read_meanwhile == [on_s3]
    assert max(most_at_once) == 1
    assert sorted(read) == letters
    for n, letter in enumerate(letters):
        joined = pq.read_table(
            f"{base.removesuffix('points/')}joined/first_letter={letter}/data_0.parquet",
            filesystem=filesystem,
        )
        assert joined.to_pydict() == {"uprn": [str(n)], "ids": [["a"]]}
