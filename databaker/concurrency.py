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
import time
from collections.abc import Callable

import dagster as dg

WORKERS = min(os.cpu_count() or 1, 4)

HELD_AT_ONCE = 8
"""Letters (or files) a step holds in memory at once at most, when it works on more of them at
once than ``WORKERS`` because each mostly waits on a store's requests."""


def threads_for(
    in_flight: int, items: int | None = None, *, workers: int = WORKERS, most: int = HELD_AT_ONCE
) -> int:
    """Threads for pieces of work (``items`` of them, if known) on a store that keeps
    ``in_flight`` requests going: ``workers`` (a thread per core) where a request does not
    wait on a network (``in_flight`` 1); on S3, where each piece waits round trips one after
    another, as many as the store's requests, the items and ``most`` allow (each thread holds
    a piece), and never fewer than ``workers``."""
    return max(workers, 1, min(in_flight, most, in_flight if items is None else items))


ADDRESSBASE_POOL = "addressbase"
"""The AddressBase tables, which every layer's full bake rewrites."""


def layer_pool(layer_name: str) -> str:
    """The pool of a layer's own assets and checks, and of its input."""
    return f"layer-{layer_name}"


IN_PROGRESS = (
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)
NOTICE_SECONDS = 60.0
"""While waiting, how often the runs waited for are named again (and whenever they change)."""


def job_pools(job: dg.JobDefinition) -> set[str]:
    """Every pool a run of ``job`` holds."""
    return {node.pool for node in job.all_node_defs if node.pool}


def runs_holding(instance: dg.DagsterInstance, pools: set[str]) -> list[dg.DagsterRun]:
    """The runs in progress on ``instance`` that hold any of ``pools``, oldest first."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=list(IN_PROGRESS)))
    holding = [
        run
        for run in runs
        if run.run_op_concurrency and pools & set(run.run_op_concurrency.all_pools or ())
    ]
    return holding[::-1]


def wait_for_pools(
    instance: dg.DagsterInstance,
    pools: set[str],
    *,
    timeout: float,
    notify: Callable[[str], None],
    poll_seconds: float = 1.0,
) -> None:
    """Wait until no run in progress on ``instance`` holds any of ``pools``, at most ``timeout``
    seconds, naming the runs waited for.

    This is how a run started outside the queue (``databaker bake`` with ``DAGSTER_HOME`` set,
    which executes in its own process) takes its turn: once it has started, the queue counts
    it as holding its pools, so runs queued meanwhile wait for it. Past the timeout it goes on
    regardless, and meets the other run at the data root's lease.
    """
    deadline = time.monotonic() + timeout
    named: tuple[str, ...] = ()
    noticed = 0.0
    while True:
        holding = runs_holding(instance, pools)
        if not holding:
            return
        ids = tuple(run.run_id for run in holding)
        now = time.monotonic()
        if now >= deadline:
            notify(f"still waiting after {timeout:g} s: going on, the data root's lease decides")
            return
        if ids != named or now - noticed >= NOTICE_SECONDS:
            runs = ", ".join(f"{run.run_id[:8]} ({run.job_name})" for run in holding)
            shared = sorted(pools & {p for r in holding for p in r.run_op_concurrency.all_pools})
            notify(f"waiting for run {runs} to finish: it holds pool {', '.join(shared)}")
            named, noticed = ids, now
        time.sleep(poll_seconds)
