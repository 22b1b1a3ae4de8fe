"""The real UK postcode areas with a rough centre for each, and the country they are in.

Centres are approximate and pulled inside the Great Britain box the generator uses, so
towns drawn around them stay on the mainland-ish box (lon -5.7..1.7, lat 50.0..58.6).
"""

from __future__ import annotations

import numpy as np

LON_MIN, LON_MAX, LAT_MIN, LAT_MAX = -5.7, 1.7, 50.0, 58.6

_AREAS = """
AB -2.20 57.15|AL -0.33 51.75|B -1.89 52.48|BA -2.40 51.30|BB -2.45 53.78|BD -1.80 53.80
BH -1.88 50.75|BL -2.43 53.58|BN -0.15 50.85|BR 0.03 51.38|BS -2.60 51.45|CA -2.95 54.70
CB 0.12 52.20|CF -3.20 51.50|CH -2.90 53.20|CM 0.45 51.75|CO 0.90 51.90|CR -0.10 51.36
CT 1.10 51.28|CV -1.50 52.40|CW -2.45 53.10|DA 0.20 51.44|DD -2.97 56.47|DE -1.50 52.95
DG -3.60 55.07|DH -1.60 54.80|DL -1.60 54.50|DN -1.10 53.55|DT -2.45 50.70|DY -2.10 52.50
E -0.03 51.53|EC -0.09 51.52|EH -3.20 55.95|EN -0.08 51.66|EX -3.53 50.72|FK -3.80 56.00
FY -3.00 53.82|G -4.25 55.86|GL -2.24 51.86|GU -0.60 51.24|HA -0.33 51.58|HD -1.78 53.64
HG -1.54 54.00|HP -0.60 51.75|HR -2.72 52.06|HS -5.50 57.90|HU -0.35 53.75|HX -1.86 53.72
IG 0.07 51.56|IP 1.15 52.06|IV -4.22 57.48|KA -4.50 55.60|KT -0.30 51.40|KW -3.10 58.45
KY -3.15 56.12|L -2.98 53.41|LA -2.80 54.05|LD -3.38 52.24|LE -1.13 52.64|LL -3.80 53.20
LN -0.54 53.23|LS -1.55 53.80|LU -0.42 51.88|M -2.24 53.48|ME 0.52 51.35|MK -0.76 52.04
ML -3.99 55.79|N -0.10 51.57|NE -1.60 54.97|NG -1.15 52.95|NN -0.90 52.24|NP -3.00 51.59
NR 1.30 52.63|NW -0.18 51.55|OL -2.10 53.54|OX -1.26 51.75|PA -4.43 55.84|PE -0.24 52.57
PH -3.43 56.40|PL -4.14 50.38|PO -1.08 50.80|PR -2.70 53.76|RG -0.97 51.45|RH -0.17 51.24
RM 0.18 51.57|S -1.47 53.38|SA -3.94 51.62|SE -0.05 51.46|SG -0.20 51.90|SK -2.16 53.41
SL -0.60 51.51|SM -0.19 51.36|SN -1.78 51.56|SO -1.40 50.90|SP -1.80 51.07|SR -1.38 54.90
SS 0.71 51.54|ST -2.18 53.00|SW -0.17 51.46|SY -2.75 52.70|TA -3.10 51.02|TD -2.80 55.60
TF -2.45 52.68|TN 0.27 51.19|TQ -3.53 50.46|TR -5.05 50.26|TS -1.23 54.57|TW -0.33 51.45
UB -0.40 51.52|W -0.20 51.51|WA -2.60 53.39|WC -0.12 51.52|WD -0.40 51.66|WF -1.50 53.68
WN -2.63 53.55|WR -2.22 52.19|WS -1.98 52.59|WV -2.13 52.59|YO -1.08 53.96|ZE -1.20 58.50
"""
_SCOTLAND = frozenset(
    ["AB", "DD", "DG", "EH", "FK", "G", "HS", "IV", "KA", "KW", "KY", "ML", "PA", "PH", "TD", "ZE"]
)
_WALES = frozenset(["CF", "LD", "LL", "NP", "SA"])

_ROWS = [item.split() for item in _AREAS.replace("\n", "|").split("|") if item.strip()]
AREA_CODES: tuple[str, ...] = tuple(row[0] for row in _ROWS)
AREA_CENTRES: np.ndarray = np.array([[float(row[1]), float(row[2])] for row in _ROWS])


def country_of(area: str) -> str:
    """'S' for Scotland, 'W' for Wales, 'E' for England: picks GSS code prefixes."""
    if area in _SCOTLAND:
        return "S"
    return "W" if area in _WALES else "E"
