r"""Time the bake's pictures on a baked layer, and write them out to look at.

    .venv/bin/python -m benchmarks.pictures --data-root /tmp/root --layer current_elections

Two figures, from a data root where the layer was baked (its joined table and published
manifest in place):

- **sampling**: what taking the sample adds to writing the outcode files. The joined table is
  read a letter at a time, as the version step reads it, and only the sampling is timed;
- **pictures**: what the version step spends on them (:func:`databaker.layers.overview.overview`):
  reading the areas, locating the sampled addresses in the partitioned AddressBase, drawing the
  coverage map, and drawing a map of changes as large as it gets (every sampled address
  counted as changed).

The pictures are written to ``--output`` as PNG files.
"""

from __future__ import annotations

import argparse
import base64
import logging
import re
import sys
import time
import warnings
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    from databaker.assets import layer_named
from databaker.layers import sampling
from databaker.layers.diff import CHANGES, LayerDiff
from databaker.layers.outcode_files import OutcodeFiles, _sample_of, keys_by_letter
from databaker.layers.overview import overview
from databaker.layers.versions import published_manifest
from databaker.resources import LocalLayerStore

PICTURE = re.compile(r"base64,([A-Za-z0-9+/=]+)\)")


def run(data_root: Path, layer_name: str, output: Path) -> dict[str, float]:
    """The timings in seconds (``sampling``, ``pictures`` and its ``pictures_cpu``, the CPU
    time of all threads); the pictures written to ``output``."""
    layer = layer_named(layer_name)
    store = LocalLayerStore(root=str(data_root))
    manifest = published_manifest(store, layer.prefix)
    if manifest is None:
        raise SystemExit(f"{layer.name} is not published under {data_root}")
    sampling_seconds, letters = 0.0, []
    for keys in keys_by_letter(store, layer.joined.prefix).values():
        table = pa.concat_tables(pq.read_table(store.uri(key)) for key in keys)
        started = time.perf_counter()
        letters.append(_sample_of(table, layer.ids_column))
        sampling_seconds += time.perf_counter() - started
    started = time.perf_counter()
    sample = sampling.sampled(pa.concat_tables(letters)).drop_columns("rank")
    sampling_seconds += time.perf_counter() - started
    written = OutcodeFiles(
        outcodes=len(manifest.files),
        empty_outcodes=manifest.empty_outcodes,
        rows=manifest.rows,
        rows_with_ids=manifest.rows_with_ids,
        sources=(manifest.addressbase_source,),
        files=manifest.files,
        addresses_per_id=manifest.addresses_per_id,
        address_sample=sample,
    )
    changes = pa.table(
        {
            "uprn": sample["uprn"].cast(pa.int64()),
            "change": pa.array(np.arange(sample.num_rows) % 3, pa.int8()),
        },
        schema=CHANGES,
    )
    diff = LayerDiff(bake_id="now", baseline="before", addresses_changed=sample.num_rows)
    named = layer.input.ids_named(store, {}) if layer.input else set()
    started, cpu = time.perf_counter(), time.process_time()
    metadata = overview(logging.getLogger(__name__), store, layer, written, named, diff, changes)
    pictures_seconds, pictures_cpu = time.perf_counter() - started, time.process_time() - cpu
    output.mkdir(parents=True, exist_ok=True)
    for key, value in metadata.items():
        found = PICTURE.search(str(value.value))
        if found:
            (output / f"{layer.name}-{key}.png").write_bytes(base64.b64decode(found.group(1)))
    return {
        "sampling": sampling_seconds,
        "pictures": pictures_seconds,
        "pictures_cpu": pictures_cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pictures", description=__doc__)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--layer", default="current_elections")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/.cache/pictures"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    timings = run(args.data_root, args.layer, args.output)
    print(
        f"sampling while writing the outcode files: {timings['sampling']:.2f} s; "
        f"pictures: {timings['pictures']:.2f} s ({timings['pictures_cpu']:.2f} s of CPU); "
        f"written to {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
