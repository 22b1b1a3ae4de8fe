"""Vectorised AddressBase-cleaned rows: one pyarrow string array of CSV lines per chunk.

Rows are built with pyarrow compute kernels (no per-address Python), quoted per RFC 4180
only when the address holds a comma or a double quote, and end with ``\\n``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from databaker.generate.areas import LAT_MAX, LAT_MIN, LON_MAX, LON_MIN
from databaker.generate.names import HOUSE_NAMES, base_place_names, building_names, shop_names
from databaker.generate.places import UPRN_SLOT, Town
from databaker.generate.units import FLATS, HOUSE, ROOMS, SHOPS, STREETS, Units

CHUNK_ADDRESSES = 1 << 18
_STREETS = pa.array(STREETS.tolist())
_HOUSE_NAMES = pa.array(HOUSE_NAMES)
_BUILDINGS = pa.array(building_names().tolist())
_SHOPS_PY = shop_names()
_SHOPS = pa.array(_SHOPS_PY.tolist())
_IS_PUB = np.array([s.startswith("The ") for s in _SHOPS_PY])
_LOCALITIES = pa.array(base_place_names().tolist())
_CODES = ("RD02", "RD03", "RD04", "RD06", "RD08", "RH02", "CR08", "CR06")
_TYPES = pa.array([f"{c}\n" for c in _CODES])
_JITTER_KM = np.array([0.03, 0.002, 0.01, 0.002])


def _str(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _cat(*parts: object) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _quoted(mask: np.ndarray, text: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), _cat('"', text, '"'), text)


def _degrees(values: np.ndarray) -> pa.Array:
    """Fixed six-decimal text without float formatting: sign, whole part, padded micros."""
    micro = np.rint(values * 1e6).astype(np.int64)
    mag = np.abs(micro)
    frac = pc.utf8_lpad(_str(mag % 1_000_000), 6, "0")
    sign = pc.if_else(pa.array(micro < 0), "-", "")
    return _cat(sign, _str(mag // 1_000_000), ".", frac)


def chunks(units: Units) -> Iterator[tuple[int, int, int]]:
    """(first unit, end unit, addresses before) for each chunk of about CHUNK_ADDRESSES."""
    ends = np.cumsum(units.size)
    cuts = np.searchsorted(ends, np.arange(CHUNK_ADDRESSES, int(ends[-1]), CHUNK_ADDRESSES))
    bounds = np.unique(np.concatenate([[0], cuts + 1, [units.size.size]]))
    for lo, hi in itertools.pairwise(bounds):
        yield int(lo), int(hi), int(ends[lo - 1]) if lo else 0


def _type_codes(
    rng: np.random.Generator,
    kind: np.ndarray,
    ring: np.ndarray,
    rank: np.ndarray,
    pub: np.ndarray,
    unit_roll: np.ndarray,
) -> np.ndarray:
    """Index into ``_CODES``: houses get a per-unit dominant detached/semi/terraced type
    (terraced near the centre, detached further out); some blocks of flats are sheltered
    housing; shops alternate with the flats above them."""
    weights = np.column_stack([0.1 + 0.15 * ring, np.full_like(ring, 0.35), 0.6 - 0.2 * ring])
    cum = np.cumsum(np.clip(weights, 0.05, None), axis=1)
    dominant = (unit_roll[:, None] * cum[:, -1:] > cum).sum(axis=1)
    house = np.where(rng.random(rank.size) < 0.8, dominant, rng.integers(0, 3, rank.size))
    flat = np.where(unit_roll < 0.08, _CODES.index("RD08"), _CODES.index("RD06"))
    shop = np.where(pub, _CODES.index("CR06"), _CODES.index("CR08"))
    shop = np.where(rank % 2 == 1, _CODES.index("RD06"), shop)
    return np.select(
        [kind == HOUSE, kind == FLATS, kind == ROOMS], [house, flat, _CODES.index("RH02")], shop
    )


def _address_text(
    rng: np.random.Generator, town: Town, units: Units, lo: int, hi: int, rank: np.ndarray
) -> tuple[pa.Array, np.ndarray]:
    """Single-line addresses (not yet CSV-quoted) and whether each shop unit is a pub."""
    sizes = units.size[lo:hi]
    ui = np.repeat(np.arange(sizes.size), sizes)
    u_kind, ring = units.kind[lo:hi], units.ring[lo:hi]
    kind, n = u_kind[ui], ui.size
    quote = rng.random(sizes.size) < 0.5
    has_building = rng.random(sizes.size) < 0.6
    has_locality = rng.random(sizes.size) < 0.3
    plain = (rng.random(sizes.size) < 0.12) & ~has_locality
    shop = rng.integers(0, len(_SHOPS), sizes.size)
    named = (kind == HOUSE) & (rng.random(n) < 0.02 + 0.25 * np.clip(ring[ui] - 1.5, 0, 1))
    omit_number = named & (rng.random(n) < 0.6)
    letter = (kind == HOUSE) & ~named & (rng.random(n) < 0.02)
    step = np.select([kind == HOUSE, kind == SHOPS], [rank, rank // 2], 0)

    seq = _str(rank + 1)
    house_name = _quoted(quote[ui], pc.take(_HOUSE_NAMES, rng.integers(0, len(HOUSE_NAMES), n)))
    prefix = pc.case_when(
        pc.make_struct(
            pa.array(kind == FLATS),
            pa.array(kind == ROOMS),
            pa.array((kind == SHOPS) & (rank % 2 == 0)),
            pa.array(kind == SHOPS),
            pa.array(named),
        ),
        _cat("Flat ", seq, ", "),
        _cat("Room ", seq, ", "),
        _cat(pc.take(_SHOPS, shop[ui]), ", "),
        "Flat A, ",
        _cat(house_name, ", "),
        "",
    )
    building = _quoted(quote, pc.take(_BUILDINGS, rng.integers(0, len(_BUILDINGS), sizes.size)))
    building = pc.if_else(pa.array((u_kind == FLATS) & has_building), _cat(building, ", "), "")
    numbered = _cat(
        _str(units.number[lo:hi][ui] + step), pc.if_else(pa.array(letter), "A", ""), " "
    )
    numbered = pc.if_else(pa.array(omit_number), "", numbered)
    locality = pc.take(_LOCALITIES, units.locality[lo:hi] % len(_LOCALITIES))
    tail = pc.if_else(
        pa.array(has_locality), _cat(", ", locality, ", ", town.name), f", {town.name}"
    )
    no_commas = plain[ui] & (kind == HOUSE) & ~named
    tail = pc.if_else(pa.array(no_commas), f" {town.name}", pc.take(tail, ui))
    street = pc.take(_STREETS, units.street[lo:hi][ui])
    text = _cat(prefix, pc.take(building, ui), numbered, street, tail)
    return text, _IS_PUB[shop[ui]]


def address_lines(
    town: Town, units: Units, seed: int, chunk: tuple[int, int, int], index: int
) -> pa.Array:
    """CSV lines ``uprn,address,postcode,location,address_type\n`` for one chunk of units.

    Deterministic per (seed, town, chunk index); chunks are fixed per town by ``chunks``.
    """
    lo, hi, offset = chunk
    rng = np.random.default_rng([seed, 3, town.index, index])
    sizes = units.size[lo:hi]
    ui = np.repeat(np.arange(sizes.size), sizes)
    n = ui.size
    rank = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    address, pub = _address_text(rng, town, units, lo, hi, rank)
    needs_quotes = pc.or_(pc.match_substring(address, ","), pc.match_substring(address, '"'))
    escaped = _cat('"', pc.replace_substring(address, '"', '""'), '"')
    address = pc.if_else(needs_quotes, escaped, address)

    kind = units.kind[lo:hi][ui]
    jitter = rng.normal(0.0, 1.0, (n, 2)) * _JITTER_KM[kind][:, None]
    lon, lat = town.to_lonlat(units.x[lo:hi][ui] + jitter[:, 0], units.y[lo:hi][ui] + jitter[:, 1])
    location = _cat(
        "SRID=4326;POINT(",
        _degrees(np.clip(lon, LON_MIN, LON_MAX)),
        " ",
        _degrees(np.clip(lat, LAT_MIN, LAT_MAX)),
        ")",
    )
    uprn = town.uprn_base + (offset + np.arange(n)) * UPRN_SLOT + rng.integers(0, UPRN_SLOT, n)
    unit_roll = rng.random(sizes.size)[ui]
    codes = pc.take(_TYPES, _type_codes(rng, kind, units.ring[lo:hi][ui], rank, pub, unit_roll))
    postcode = pc.take(pa.array(units.postcode[lo:hi].tolist()), ui)
    return pc.binary_join_element_wise(_str(uprn), address, postcode, location, codes, ",")
