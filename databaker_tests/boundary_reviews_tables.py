"""Test helpers: crafted addresses and boundary-review divisions, written as the bake writes them.

Addresses become ``addressbase_partitioned`` letter partitions; division pieces become the one
parquet file of ``boundary_review_divisions``, its geometry a GEOMETRY column written by
DuckDB's spatial extension, as the divisions' asset writes it. The crafted map at the end holds
every case the boundary-reviews layer tells apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED_TABLE
from databaker.assets.boundary_reviews import BOUNDARY_REVIEW_DIVISIONS_TABLE
from databaker.resources import DuckDBQueryEngine, LocalLayerStore


@dataclass(frozen=True)
class Address:
    uprn: str
    postcode: str
    lon: float
    lat: float
    address: str = ""

    @property
    def letter(self) -> str:
        return self.postcode[0]


@dataclass(frozen=True)
class Review:
    boundary_review_id: int
    details: dict[str, str] = field(default_factory=dict)
    """Review fields (``consultation_url``...) that differ from :data:`REVIEW_DEFAULTS`."""


REVIEW_DEFAULTS = {
    "slug": "",
    "status": "CURRENT",
    "latest_event": "Final recommendations",
    "consultation_url": "",
    "legislation_title": "",
    "effective_date": "",
    "review_created": "2025-01-01T00:00:00Z",
    "review_modified": "2025-06-01T00:00:00Z",
    "organisation_name": "",
    "organisation_official_name": "",
    "organisation_gss": "",
}


@dataclass(frozen=True)
class Piece:
    """One row of ``boundary_review_divisions``: a piece of a division of a review."""

    review: Review
    generation: str
    division_type: str
    slug: str
    name: str
    shape: shapely.Polygon
    source_line: int
    official_identifier: str = ""
    source_file: str = "boundary_reviews.csv"

    @property
    def key(self) -> str:
        return (
            f"{self.review.boundary_review_id}/{self.generation}/{self.division_type}/{self.slug}"
        )

    @property
    def pmtiles_url(self) -> str:
        review = self.review.boundary_review_id
        return f"https://pmtiles.example/{review}/{self.generation}.pmtiles"

    def row(self) -> dict:
        review = {**REVIEW_DEFAULTS, **self.review.details}
        review["slug"] = review["slug"] or f"review-{self.review.boundary_review_id}"
        return {
            "boundary_review_id": self.review.boundary_review_id,
            **review,
            "divisionset_id": f"{self.review.boundary_review_id}-{self.generation}",
            "divisionset_pmtiles_url": self.pmtiles_url,
            "division_slug": self.slug,
            "division_name": self.name,
            "division_official_identifier": self.official_identifier,
            "divisionset_generation": self.generation,
            "division_type": self.division_type,
            "division_key": self.key,
            "geometry": shapely.to_wkb(self.shape),
            "repaired": False,
            "source_file": self.source_file,
            "source_line": self.source_line,
        }


DIVISIONS_SCHEMA = pa.schema(
    [
        ("boundary_review_id", pa.int64()),
        *((name, pa.string()) for name in REVIEW_DEFAULTS),
        *(
            (name, pa.string())
            for name in [
                "divisionset_id",
                "divisionset_pmtiles_url",
                "division_slug",
                "division_name",
                "division_official_identifier",
                "divisionset_generation",
                "division_type",
                "division_key",
            ]
        ),
        ("geometry", pa.binary()),
        ("repaired", pa.bool_()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
    ]
)


def write_divisions(store: LocalLayerStore, pieces: list[Piece]) -> None:
    table = pa.Table.from_pylist([piece.row() for piece in pieces], schema=DIVISIONS_SCHEMA)
    target = BOUNDARY_REVIEW_DIVISIONS_TABLE.prefix + "boundary_review_divisions.parquet"
    with DuckDBQueryEngine().connection() as conn:
        conn.register("pieces", table)
        conn.execute(
            "COPY (SELECT * REPLACE (ST_GeomFromWKB(geometry) AS geometry) FROM pieces) TO ?",
            [store.uri_for_writing(target)],
        )


def write_addresses(store: LocalLayerStore, addresses: list[Address]) -> None:
    """The partitioned AddressBase of ``addresses``, one file per letter."""
    table = pa.table(
        {
            "uprn": [a.uprn for a in addresses],
            "address": [a.address or f"{a.uprn} Crafted Street" for a in addresses],
            "postcode": [a.postcode for a in addresses],
            "outcode": [a.postcode.split()[0] for a in addresses],
            "longitude": pa.array([a.lon for a in addresses], pa.float64()),
            "latitude": pa.array([a.lat for a in addresses], pa.float64()),
            "address_type": ["RD04"] * len(addresses),
            "addressbase_source": ["s3://drops/2026-02-02/"] * len(addresses),
            "source_file": ["s3://drops/2026-02-02/part-0.csv"] * len(addresses),
        }
    )
    letters = pa.array([a.letter for a in addresses])
    for letter in sorted(set(letters.to_pylist())):
        key = f"{ADDRESSBASE_PARTITIONED_TABLE.prefix}first_letter={letter}/data.parquet"
        pq.write_table(table.filter(pc.equal(letters, letter)), store.uri_for_writing(key))


# ---- The crafted map: squares of a grid near Leeds ------------------------------------

STEP = 0.01
X0, Y0 = -1.60, 53.80


def cells(i0: float, j0: float, i1: float, j1: float) -> shapely.Polygon:
    """A rectangle of the grid: columns i0..i1, rows j0..j1."""
    return shapely.box(X0 + i0 * STEP, Y0 + j0 * STEP, X0 + i1 * STEP, Y0 + j1 * STEP)


def at(uprn: str, i: float, j: float, postcode: str = "LS1 1AA") -> Address:
    """An address at grid position (i, j): whole numbers are on the grid's lines."""
    return Address(uprn, postcode, X0 + i * STEP, Y0 + j * STEP)


LEEDS = Review(
    963,
    {
        "consultation_url": "https://www.lgbce.org.uk/all-reviews/leeds",
        "legislation_title": "The Leeds (Electoral Changes) Order 2026",
        "effective_date": "2026-05-07",
        "organisation_name": "Cyngor Sir Ynys Môn",
        "organisation_official_name": 'Leeds "City" Council \\ Cyngor',
        "organisation_gss": "E08000035",
    },
)
# A larger ID that sorts first as text: the elements are ordered by number.
WEST_YORKSHIRE = Review(1200, {"consultation_url": "https://early.example/wy"})


def pieces_of(review, generation, division_type, slug, name, *shapes, line, **fields):
    return [
        Piece(review, generation, division_type, slug, name, shape, line + n, **fields)
        for n, shape in enumerate(shapes)
    ]


PIECES = [
    # Review 963, wards (DIW). Row 0 of the grid holds the wards, row -1 is outside every new
    # ward, row 1 holds the county divisions only.
    # Unchanged; the old ward also covers row -1, whose addresses take no part.
    *pieces_of(LEEDS, "old", "DIW", "alpha", "Alpha", cells(0, -1, 1, 1), line=2),
    *pieces_of(LEEDS, "new", "DIW", "alpha", "Alpha", cells(0, 0, 1, 1), line=3),
    # Renamed (a Welsh name).
    *pieces_of(LEEDS, "old", "DIW", "beta", "Beta", cells(1, 0, 2, 1), line=4),
    *pieces_of(
        LEEDS, "new", "DIW", "llanfair-ym-muallt", "Llanfair-ym-Muallt", cells(1, 0, 2, 1), line=5
    ),
    # Redrawn: the edge between gamma and delta moves from column 4 to column 5.
    *pieces_of(LEEDS, "old", "DIW", "gamma", "Gamma", cells(2, 0, 4, 1), line=6),
    *pieces_of(LEEDS, "old", "DIW", "delta", "Delta", cells(4, 0, 6, 1), line=7),
    *pieces_of(LEEDS, "new", "DIW", "gamma", "Gamma", cells(2, 0, 5, 1), line=8),
    *pieces_of(LEEDS, "new", "DIW", "delta", "Delta", cells(5, 0, 6, 1), line=9),
    # Merged, into a ward whose name holds quotes and a backslash.
    *pieces_of(LEEDS, "old", "DIW", "east", "East", cells(6, 0, 7, 1), line=10),
    *pieces_of(LEEDS, "old", "DIW", "west", "West", cells(7, 0, 8, 1), line=11),
    *pieces_of(
        LEEDS,
        "new",
        "DIW",
        "east-and-west",
        'East & West "Quarter" \\ Back Lane',
        cells(6, 0, 8, 1),
        line=12,
        official_identifier="E05099999",
    ),
    # In two pieces before, in one after: the same area.
    *pieces_of(
        LEEDS, "old", "DIW", "ynys-mon", "Ynys Môn", cells(8, 0, 9, 1), cells(9, 0, 10, 1), line=13
    ),
    *pieces_of(LEEDS, "new", "DIW", "ynys-mon", "Ynys Môn", cells(8, 0, 10, 1), line=15),
    # Review 963, county divisions (CED): one over all the wards and row 1; the old one also
    # covers row -1.
    *pieces_of(LEEDS, "old", "CED", "leeds-north", "Leeds North", cells(0, -1, 10, 2), line=16),
    *pieces_of(LEEDS, "new", "CED", "leeds-north", "Leeds North", cells(0, 0, 10, 2), line=17),
    # Review 1200 (UTW) over part of review 963's map. "north-annex" overlaps "north" (bad
    # data): an address in both gets a change per pair.
    *pieces_of(WEST_YORKSHIRE, "old", "UTW", "north", "North", cells(5, 0, 8, 2), line=9),
    *pieces_of(
        WEST_YORKSHIRE, "old", "UTW", "north-annex", "North Annex", cells(7, 0, 9, 1), line=10
    ),
    *pieces_of(WEST_YORKSHIRE, "new", "UTW", "north", "North", cells(5, 0, 7, 2), line=11),
    *pieces_of(WEST_YORKSHIRE, "new", "UTW", "south", "South", cells(7, 0, 8, 2), line=12),
]
# Review 1200's details differ on a later row: the first row, by (source_file, source_line),
# decides. This row comes first in the file but second in that order.
PIECES.insert(
    0,
    Piece(
        Review(1200, {"consultation_url": "https://late.example/wy"}),
        "new",
        "UTW",
        "south",
        "South",
        cells(7, 1, 8, 2),
        source_line=1,
        source_file="boundary_reviews_2.csv",
    ),
)

ADDRESSES = [
    at("101", 0.3, 0.5),  # alpha, unchanged
    at("102", 0.7, 0.5),  # alpha, unchanged
    at("103", 0.5, -0.5),  # in old alpha and old Leeds North only: no element
    at("111", 1.5, 0.5),  # renamed
    at("121", 3.0, 0.5),  # gamma, which gains part of delta
    at("122", 4.5, 0.5, "WF1 1AA"),  # delta, moved to gamma (another postcode letter)
    at("123", 5.5, 0.5),  # what is left of delta; also in review 1200
    at("124", 4.0, 0.5),  # on the old edge between gamma and delta: in neither old ward
    at("131", 6.5, 0.5),  # east, merged; also in review 1200
    at("132", 7.5, 0.5),  # west, merged; in review 1200's overlapping old divisions
    at("141", 8.5, 0.5),  # first piece of ynys-mon; in north-annex, which has no new UTW
    at("142", 9.5, 0.5),  # second piece
    at("143", 9.0, 0.5),  # on the edge between the old pieces: in the new ward only
    at("151", 0.5, 1.5),  # Leeds North only
    at("161", 6.5, 1.5, "WF2 2BB"),  # review 1200 only
    at("199", 50.0, 50.0),  # in no review
]
