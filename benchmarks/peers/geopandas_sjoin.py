"""Peer method: the whole job in pandas and GeoPandas, as a data scientist would write it.

pandas ``read_csv`` of every part file, the rows the bake accepts (string methods on whole
columns), ``geopandas.points_from_xy``, ``geopandas.sjoin(points, polygons, predicate="within",
how="left")`` (an STRtree inside), the sorted distinct ballot IDs per address as a list column
built from offsets, and one ``<OUTCODE>.parquet`` per outcode written with pyarrow.

Single-threaded, as pandas is. Reads no file through GDAL, so it needs none. What it does not
do that the bake does: line numbers and reports of rejected rows, election ID validation, the
checks, staging. Run: ``python -m benchmarks.peers.geopandas_sjoin --help``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

DROP_COLUMNS = ["uprn", "address", "postcode", "location", "address_type"]
POINT = r"^(?:SRID=4326;)?POINT\s*\(\s*(-?[0-9]+(?:\.[0-9]+)?)\s+(-?[0-9]+(?:\.[0-9]+)?)\s*\)$"
POSTCODE = r"[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}"


def read_addresses(folder: Path) -> pd.DataFrame:
    """Valid, distinct addresses: ``uprn, address, postcode, lon, lat``."""
    parts = sorted(p for p in folder.rglob("*") if p.name.endswith((".csv", ".csv.gz")))
    frame = pd.concat(
        [
            pd.read_csv(p, header=None, names=DROP_COLUMNS, dtype=str, keep_default_na=False)
            for p in parts
        ],
        ignore_index=True,
    )
    compact = frame["postcode"].str.upper().str.replace(r"\s", "", regex=True)
    postcode = compact.str[:-3] + " " + compact.str[-3:]
    postcode = postcode.where(compact.str.len().between(5, 7))
    point = frame["location"].str.extract(POINT)
    lon, lat = pd.to_numeric(point[0]), pd.to_numeric(point[1])
    valid = (
        frame["uprn"].str.fullmatch(r"[0-9]{1,12}")
        & (frame["address"].str.strip() != "")
        & postcode.str.fullmatch(POSTCODE).fillna(False).astype(bool)
        & lon.between(-10, 3)
        & lat.between(49, 62)
    )
    addresses = pd.DataFrame(
        {
            "uprn": frame["uprn"],
            "address": frame["address"],
            "postcode": postcode,
            "lon": lon,
            "lat": lat,
        }
    )[valid]
    return addresses.drop_duplicates(ignore_index=True)


def read_polygons(path: Path) -> geopandas.GeoDataFrame:
    """Ballot rows with a geography; invalid ones repaired into their polygonal parts."""
    names = ["election_id", "division_id", "geometry", "table"]
    rows = pd.read_csv(path, header=0, names=names, dtype=str, keep_default_na=False)
    with_geography = rows["table"].isin(["Organisation", "Division"])
    rows = rows[with_geography & (rows["geometry"].str.strip() != "")]
    text = rows["geometry"].str.replace(r"^\s*SRID=[0-9]+;", "", regex=True)
    shapes = geopandas.GeoSeries(shapely.from_wkt(text.to_numpy()), index=rows.index, crs=4326)
    frame = geopandas.GeoDataFrame({"election_id": rows["election_id"]}, geometry=shapes)
    invalid = ~frame.is_valid
    repaired = frame[invalid].set_geometry(frame[invalid].make_valid()).explode(ignore_index=True)
    repaired = repaired[repaired.geom_type.isin(["Polygon", "MultiPolygon"])]
    return pd.concat([frame[~invalid], repaired], ignore_index=True)


def ballot_lists(addresses: pd.DataFrame, polygons: geopandas.GeoDataFrame) -> pa.Array:
    """Per address (in frame order), the sorted distinct IDs of the polygons it is within."""
    points = geopandas.GeoDataFrame(
        geometry=geopandas.points_from_xy(addresses["lon"], addresses["lat"], crs=4326)
    )
    joined = geopandas.sjoin(points, polygons, predicate="within", how="left")
    pairs = (
        pd.DataFrame({"row": joined.index.to_numpy(), "election_id": joined["election_id"]})
        .dropna()
        .drop_duplicates()
        .sort_values(["row", "election_id"])
    )
    counts = np.bincount(pairs["row"].to_numpy(), minlength=len(addresses))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    values = pa.array(pairs["election_id"].to_numpy(), type=pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def write_outcodes(table: pa.Table, outcode: pd.Series, out: Path) -> int:
    """One ``<OUTCODE>.parquet`` per outcode, keeping the table's row order within each."""
    out.mkdir(parents=True)
    groups = outcode.groupby(outcode, sort=True).indices
    for outcode, rows in groups.items():
        pq.write_table(table.take(rows), out / f"{outcode}.parquet", compression="zstd")
    return len(groups)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addressbase", type=Path, required=True, help="drop folder")
    parser.add_argument("--ballots", type=Path, required=True, help="ballots export CSV")
    parser.add_argument("--out", type=Path, required=True, help="folder for the outcode files")
    args = parser.parse_args(argv)
    shutil.rmtree(args.out, ignore_errors=True)
    addresses = read_addresses(args.addressbase)
    addresses = addresses.sort_values(["postcode", "uprn"], ignore_index=True)
    polygons = read_polygons(args.ballots)
    outcode = addresses["postcode"].str.split(" ").str[0]
    table = pa.table(
        {
            "uprn": pa.array(addresses["uprn"], pa.string()),
            "address": pa.array(addresses["address"], pa.string()),
            "postcode": pa.array(addresses["postcode"], pa.string()),
            "ballot_ids": ballot_lists(addresses, polygons),
            "outcode": pa.array(outcode, pa.string()),
        }
    )
    outcodes = write_outcodes(table, outcode, args.out)
    summary = {"addresses": len(addresses), "polygons": len(polygons), "outcodes": outcodes}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
