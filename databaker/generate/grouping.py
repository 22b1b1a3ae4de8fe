"""Grouping areas into bigger ones, and the short codes councils are known by.

Constituencies, county divisions, districts, police areas and London Assembly seats are all
made the same way: spatially compact groups of about equal weight (addresses), by
recursive bisection of the members' representative points.
"""

from __future__ import annotations

import itertools
import string

import numpy as np

_LON_SCALE = 0.62


def balanced_groups(points: np.ndarray, weights: np.ndarray, count: int) -> list[np.ndarray]:
    """``count`` groups (sorted index arrays, each non-empty) of ``points`` (lon, lat) of
    about equal total ``weights``, each group spatially compact.

    Raises ValueError when there are fewer points than groups.
    """
    if not 1 <= count <= len(points):
        raise ValueError(f"cannot make {count} groups of {len(points)} areas")
    out: list[np.ndarray] = []
    _bisect(points * [_LON_SCALE, 1.0], weights + 1e-9, np.arange(len(points)), count, out)
    return out


def _bisect(
    pts: np.ndarray, weights: np.ndarray, idx: np.ndarray, count: int, out: list[np.ndarray]
) -> None:
    if count == 1:
        out.append(np.sort(idx))
        return
    left = count // 2
    sub = pts[idx]
    axis = int(np.ptp(sub[:, 1]) > np.ptp(sub[:, 0]))
    order = idx[np.argsort(sub[:, axis], kind="stable")]
    total = np.cumsum(weights[order])
    cut = int(np.searchsorted(total, total[-1] * left / count)) + 1
    cut = min(max(cut, left), len(order) - (count - left))
    _bisect(pts, weights, order[:cut], left, out)
    _bisect(pts, weights, order[cut:], count - left, out)


def register_codes(names: list[str]) -> list[str]:
    """A distinct three-letter code per name, as in the local-authority register: the
    first letter then two later ones in order ("Birmingham" -> "BIR"), else any free one."""
    taken: set[str] = set()
    out = []
    for name in names:
        letters = [c for c in name.upper() if c in string.ascii_uppercase]
        tried = (letters[0] + b + c for b, c in itertools.combinations(letters[1:], 2))
        spare = ("".join(t) for t in itertools.product(string.ascii_uppercase, repeat=3))
        code = next(t for t in itertools.chain(tried, spare) if t not in taken)
        taken.add(code)
        out.append(code)
    return out
