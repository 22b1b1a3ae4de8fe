"""Plan the towns: sizes, positions, postcode districts (outcodes) and UPRN blocks.

The plan is small (one record per town) and fully determined by (addresses, seed), so the
address writer and the ballot builder can both derive their per-town data from it
independently, town by town.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from databaker.generate.areas import (
    AREA_CENTRES,
    AREA_CODES,
    LAT_MAX,
    LAT_MIN,
    LON_MAX,
    LON_MIN,
    country_of,
)
from databaker.generate.names import place_name_pool

KM_PER_DEG_LAT = 110.574
CORE_DENSITY = 3000.0
MIN_TOWN = 40
MEAN_UNIT = 15
MAX_DISTRICT = 99
UPRN_SLOT = 7
_UPRN_FAMILIES = (
    (100_000_000_000, 9_000_000_000, 0.45),
    (10_000_000_000, 900_000_000, 0.30),
    (200_000_000_000, 9_000_000_000, 0.15),
    (100_000, 99_000_000, 0.10),
)


@dataclass(frozen=True)
class Town:
    """One town: a Gaussian cloud of addresses around (lon, lat) with ``sigma_km`` spread."""

    index: int
    name: str
    lon: float
    lat: float
    sigma_km: float
    addresses: int
    country: str
    outcodes: tuple[str, ...]
    uprn_base: int

    def km_per_deg_lon(self) -> float:
        return 111.320 * math.cos(math.radians(self.lat))

    def to_lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local plane (km east/north of the centre) to lon/lat degrees."""
        return self.lon + x / self.km_per_deg_lon(), self.lat + y / KM_PER_DEG_LAT


@dataclass(frozen=True)
class Plan:
    """All towns plus the shared place-name pool (towns use the first ``len(towns)`` names)."""

    towns: tuple[Town, ...]
    names: tuple[str, ...]


def town_count(addresses: int) -> int:
    return int(min(2000, max(6, round(addresses / 15000))))


def _sizes(rng: np.random.Generator, total: int, count: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, count + 1) ** 1.0
    spare = total - MIN_TOWN * count
    sizes = MIN_TOWN + np.floor(weights / weights.sum() * spare).astype(np.int64)
    sizes[: total - int(sizes.sum())] += 1
    return sizes[rng.permutation(count)]


def _place(rng: np.random.Generator, sigma: np.ndarray) -> np.ndarray:
    """Town centres near postcode-area centres, largest first, never overlapping."""
    centres = np.zeros((sigma.size, 2))
    reach = 3.2 * sigma + 0.5
    placed: list[int] = []
    for t in np.argsort(-sigma, kind="stable"):
        area = AREA_CENTRES[rng.integers(len(AREA_CENTRES))]
        margin_lat = reach[t] / KM_PER_DEG_LAT
        for attempt in range(1000):
            spread = 0.3 * (1.0 + attempt / 8.0)
            lat = np.clip(
                area[1] + rng.normal(0, spread), LAT_MIN + margin_lat, LAT_MAX - margin_lat
            )
            kx = 111.320 * math.cos(math.radians(lat))
            margin_lon = reach[t] / kx
            lon = np.clip(
                area[0] + rng.normal(0, spread * 1.6), LON_MIN + margin_lon, LON_MAX - margin_lon
            )
            if not placed:
                break
            others = centres[placed]
            dx = (others[:, 0] - lon) * kx
            dy = (others[:, 1] - lat) * KM_PER_DEG_LAT
            if np.all(np.hypot(dx, dy) > reach[placed] + reach[t]):
                break
        else:
            raise RuntimeError("could not place towns without overlaps")
        centres[t] = lon, lat
        placed.append(int(t))
    return centres


def _outcodes(centres: np.ndarray, counts: np.ndarray, order: np.ndarray) -> list[list[str]]:
    """District numbers handed out per area, biggest towns first, from the nearest areas."""
    used = np.zeros(len(AREA_CODES), dtype=np.int64)
    result: list[list[str]] = [[] for _ in counts]
    for t in order:
        dist = np.hypot(
            (AREA_CENTRES[:, 0] - centres[t, 0]) * 0.6, AREA_CENTRES[:, 1] - centres[t, 1]
        )
        for a in np.argsort(dist, kind="stable"):
            take = min(int(counts[t]) - len(result[t]), MAX_DISTRICT - int(used[a]))
            result[t] += [f"{AREA_CODES[a]}{used[a] + 1 + i}" for i in range(take)]
            used[a] += take
            if len(result[t]) == counts[t]:
                break
        else:
            raise ValueError("too many postcode districts requested")
    return result


def _uprn_bases(rng: np.random.Generator, sizes: np.ndarray) -> np.ndarray:
    """A disjoint UPRN block per town inside one of the real-looking UPRN ranges."""
    starts = [0] * len(_UPRN_FAMILIES)
    probs = np.array([f[2] for f in _UPRN_FAMILIES])
    bases = np.zeros(sizes.size, dtype=np.int64)
    for t, size in enumerate(sizes):
        fam = int(rng.choice(len(_UPRN_FAMILIES), p=probs))
        need = int(size) * UPRN_SLOT
        while starts[fam] + need > _UPRN_FAMILIES[fam][1]:
            fam = 0
        starts[fam] += int(rng.integers(0, 200_000))
        bases[t] = _UPRN_FAMILIES[fam][0] + starts[fam]
        starts[fam] += need
    return bases


def plan_places(addresses: int, seed: int) -> Plan:
    """Plan towns for ``addresses`` rows: Zipf-like sizes, spread over Great Britain."""
    rng = np.random.default_rng([seed, 1])
    count = town_count(addresses)
    if addresses < MIN_TOWN * count:
        raise ValueError(f"addresses must be at least {MIN_TOWN * count}, got {addresses}")
    sizes = _sizes(rng, addresses, count)
    sigma = np.sqrt(sizes / (2 * math.pi * CORE_DENSITY))
    centres = _place(rng, sigma)
    units = sizes / MEAN_UNIT
    per_outcode = max(8.0, units.sum() / 3000.0)
    counts = np.clip(np.round(units / per_outcode), 2, None).astype(np.int64)
    counts = np.maximum(1, np.minimum(counts, sizes // 30))
    outcodes = _outcodes(centres, counts, np.argsort(-sizes, kind="stable"))
    bases = _uprn_bases(rng, sizes)
    # Towns first, then council names (a few per town at most), then words for ward names.
    names = place_name_pool(rng, 4 * count + 4000)
    towns = tuple(
        Town(
            index=t,
            name=names[t],
            lon=float(centres[t, 0]),
            lat=float(centres[t, 1]),
            sigma_km=float(sigma[t]),
            addresses=int(sizes[t]),
            country=country_of(outcodes[t][0].rstrip("0123456789")),
            outcodes=tuple(outcodes[t]),
            uprn_base=int(bases[t]),
        )
        for t in range(count)
    )
    return Plan(towns=towns, names=tuple(names))
