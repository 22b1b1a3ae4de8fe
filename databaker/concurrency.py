"""How much runs at once: threads inside a step, and which runs may not overlap.

``WORKERS`` is how many threads the Arrow-side work (reading drops, cutting and comparing
outcode files) uses: every core up to four, beyond which the store's throughput, not the CPU,
limits it.

Every asset and check belongs to a concurrency pool: a layer's own assets and its input to the
layer's pool, the AddressBase tables to ``addressbase``. The instance (``dagster_home/
dagster.yaml``) enforces pools per run with a limit of one, so a run that would materialise any
asset of a pool waits in the queue while another run holding that pool is in progress: whether
it came from the UI, a job, a sensor, the schedule or ``databaker bake``.
"""

import os

WORKERS = min(os.cpu_count() or 1, 4)

ADDRESSBASE_POOL = "addressbase"
"""The AddressBase tables, which every layer's full bake rewrites."""


def layer_pool(layer_name: str) -> str:
    """The pool of a layer's own assets and checks, and of its input."""
    return f"layer-{layer_name}"
