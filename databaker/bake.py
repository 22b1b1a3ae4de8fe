"""A whole bake in-process: a layer's job over every letter, as one run, with progress lines.

This is what ``databaker bake`` runs. It uses the same ``Definitions`` as the Dagster UI, so a
bake from the command line and a materialisation from the UI execute identical code.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg

from databaker.assets import LAYERS, layer_named
from databaker.assets.addressbase import ADDRESSBASE_PARTITIONED
from databaker.concurrency import job_pools, wait_for_pools
from databaker.definitions import Settings, build_defs, layers_from_database
from databaker.layers import Layer
from databaker.layers.guard_rails import overrides
from databaker.layers.versions import PublishMarker, interrupted_publish, published_manifest
from databaker.partitions import ALL_LETTERS
from databaker.resources import LayerStore, LayerStoreError
from databaker.resources.every_election import is_every_election_url
from databaker.resources.lease import LeaseBusy


class BakeFailed(Exception):
    """The bake stopped. ``report`` says which step and why; ``layer`` what became of the
    published layer, which may be unchanged, mid-publish, or (another bake) changed."""

    def __init__(
        self, report: str, layer: str, *, leased: bool, unusable_root: bool, mid_publish: bool
    ) -> None:
        super().__init__(f"{layer}\n{report}")
        self.report = report
        self.layer = layer
        self.leased = leased
        """Another bake held the data root's lease: this one did nothing."""
        self.unusable_root = unusable_root
        """The data root could not be used at all (not writable, unreachable)."""
        self.mid_publish = mid_publish
        """The layer is left mid-publish: a mix of two bakes until completed or rolled back."""


@dataclass(frozen=True)
class BakeResult:
    """Where the layer is, how long the bake took, and each asset's materialisation metadata."""

    layer: str
    seconds: float
    metadata: dict[str, dict[str, Any]]


def bake(
    *,
    layer: str | Layer = "current_elections",
    addressbase: str | None = None,
    keep_addressbase: bool = False,
    settings: Settings,
    max_rejected_rows: int = 0,
    max_rejected_share: float | None = None,
    allow: Collection[str] = (),
    on: str | None = None,
    instance: dg.DagsterInstance | None = None,
    echo: Callable[[str], None] | None = None,
    **sources: str | None,
) -> BakeResult:
    """Materialise every asset and check of ``layer`` (a layer's name, or a :class:`Layer`
    declared elsewhere, such as a test's); raise ``BakeFailed``.

    Without ``addressbase`` the newest complete drop of ``settings.addressbase_drops`` is baked;
    with ``keep_addressbase`` no drop is read: the layer is rebuilt on the AddressBase tables
    already in the data root, as the input's sensor does when only the input changed;
    a layer's input is the keyword its ``LayerInput.option`` names (``ballots=``,
    ``boundary_reviews=``), by default the deployment's, and may be EveryElection's database
    (a ``postgresql://`` URL), which the bake exports from first; a keyword no layer's input
    has is a ``TypeError``. ``allow`` names guard rails of the layer to override
    (``address_drop``, ``ballot_loss``, ...); another name is a ``ValueError``. ``on``
    (``YYYY-MM-DD``) is the date a layer whose input is read as of a date is baked as of
    (default: today in Europe/London); a ``ValueError`` for another layer.
    """
    layer = layer_named(layer) if isinstance(layer, str) else layer
    options = {known.input.option for known in (*LAYERS, layer) if known.input}
    if sources.keys() - options:
        raise TypeError(f"bake() has no input {', '.join(sorted(sources.keys() - options))}")
    allowed = overrides(layer.rails)
    unknown = sorted(set(allow) - allowed.keys())
    if unknown:
        raise ValueError(
            f"the {layer.name} layer has no guard rail {', '.join(unknown)} to allow "
            f"(it has {', '.join(sorted(allowed))})"
        )
    if keep_addressbase and addressbase is not None:
        raise ValueError("a bake reads an AddressBase drop or keeps the one baked, not both")
    if on is not None and (layer.input is None or layer.input.as_of_key is None):
        raise ValueError(
            f"the {layer.name} layer is not baked as of a date: --on is for a layer whose input is"
        )
    source = sources.get(layer.input.option) if layer.input is not None else None
    if is_every_election_url(source) and layer.input is not None:
        # EE's database is a source as the deployment's own: the graph gains its export.
        settings = dataclasses.replace(settings, **{layer.input.option: source})
        source = None
    defs = build_defs(settings, layers=(layer,))
    store: LayerStore = defs.resources["store"]
    if keep_addressbase:
        _require_kept_addressbase(store)
    before = _layer_state(store, layer)
    job = defs.resolve_job_def(layer.rebuild_job_name if keep_addressbase else layer.job_name)
    if echo is not None:
        job = job.with_logger_defs({"progress": _progress_logger(echo)})
    limits: dict[str, Any] = {"max_rejected_rows": max_rejected_rows}
    if max_rejected_share is not None:
        limits["max_rejected_share"] = max_rejected_share
    ops: dict[str, Any] = {
        layer.version_asset_name: {"config": {allowed[name]: True for name in allow}},
    }
    if not keep_addressbase:
        ops["addressbase_cleaned_raw"] = {"config": {"source": addressbase, **limits}}
    if layer.input is not None:
        as_of = {"on": on} if on is not None else {}
        ops[layer.input.asset_name] = {"config": {"source": source, **limits, **as_of}}
        export = layer.input.export
        if on is not None and export and layer.name in layers_from_database(settings, (layer,)):
            # An export holds what is current on its date or later: it is taken as of the bake's.
            ops[export.asset_name] = {"config": {"as_of": on}}
    run_config: dict[str, Any] = {"ops": ops}
    if echo is not None:
        run_config["loggers"] = {"progress": {}}
    started = time.monotonic()
    with _instance(instance) as active:
        wait_for_pools(
            active,
            job_pools(job),
            timeout=settings.lease_wait_seconds,
            notify=echo or logging.getLogger(__name__).info,
        )
        result = job.execute_in_process(
            run_config=run_config, instance=active, tags=ALL_LETTERS, raise_on_error=False
        )
    if not result.success:
        refused = _run_refused(result)
        after = _layer_state(store, layer)
        raise BakeFailed(
            _failure_report(result),
            _layer_outcome(store, layer, before, after, untouched=refused is not None),
            leased=refused == LeaseBusy.__name__,
            unusable_root=refused not in (None, LeaseBusy.__name__),
            mid_publish=isinstance(after, PublishMarker),
        )
    metadata = {
        event.asset_key.to_user_string(): {
            key: value.value
            for key, value in event.step_materialization_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }
    where = str(metadata[layer.published_asset_name]["path"])
    return BakeResult(layer=where, seconds=time.monotonic() - started, metadata=metadata)


def _require_kept_addressbase(store: LayerStore) -> None:
    if not store.list_keys(ADDRESSBASE_PARTITIONED):
        raise ValueError(
            f"no AddressBase is baked in {store.uri(ADDRESSBASE_PARTITIONED)}: "
            "bake from a drop first"
        )


@contextmanager
def _instance(given: dg.DagsterInstance | None) -> Iterator[dg.DagsterInstance]:
    """The given instance, else the one under ``$DAGSTER_HOME`` if set, else a throwaway one."""
    if given is not None:
        yield given
        return
    owned = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    with owned or dg.DagsterInstance.ephemeral() as instance:
        yield instance


@dataclass(frozen=True)
class _Unreadable:
    reason: str


LayerState = PublishMarker | _Unreadable | str | None
"""The layer mid-publish (its marker), else the bake ID published (None: nothing), or why its
state could not be read."""


def _layer_state(store: LayerStore, layer: Layer) -> LayerState:
    try:
        marker = interrupted_publish(store, layer.prefix)
        if marker is not None:
            return marker
        published = published_manifest(store, layer.prefix)
    except (LayerStoreError, OSError) as error:
        return _Unreadable(str(error))
    return published.bake_id if published else None


def _layer_outcome(
    store: LayerStore, layer: Layer, before: LayerState, after: LayerState, *, untouched: bool
) -> str:
    """What became of the published layer, in one sentence that is true."""
    where = store.uri(layer.prefix)
    if isinstance(after, PublishMarker):
        return (
            f"The layer at {where} is MID-PUBLISH: its files mix {after.mixing} (publish "
            f"started {after.started}). The next bake of the layer completes it, or "
            f"`databaker rollback --to <bake id>` replaces it."
        )
    if isinstance(after, _Unreadable):
        return f"The state of the layer at {where} could not be read: {after.reason}."
    if untouched:
        return f"Nothing was baked; the layer at {where} was not touched."
    if after == before:
        now = f"still bake {after}" if after else "nothing is published"
        return f"The published layer was not changed ({now})."
    return f"The layer at {where} is now {f'bake {after}' if after else 'unpublished'}."


def _run_refused(result: dg.ExecuteInProcessResult) -> str | None:
    """Why the run did nothing at all, if it did not: its resources failed to start, which for
    the store (the one resource that starts anything) means its lease was busy (``LeaseBusy``)
    or the data root could not be used (the error's class name)."""
    for event in result.all_events:
        if event.event_type_value != "RESOURCE_INIT_FAILURE":
            continue
        error = event.event_specific_data.error
        names = []
        while error is not None:
            names.append(error.cls_name)
            error = error.cause
        return LeaseBusy.__name__ if LeaseBusy.__name__ in names else names[-1]
    return None


def _failure_report(result: dg.ExecuteInProcessResult) -> str:
    lines = []
    for event in result.all_events:
        if event.event_type_value == "RESOURCE_INIT_FAILURE":
            lines.append(_error_message(event.event_specific_data.error))
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                lines.append(
                    f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} "
                    f"failed: {evaluation.description or ''}".rstrip()
                )
        elif event.event_type_value == "STEP_FAILURE":
            error = event.event_specific_data.error
            lines.append(f"{event.step_key} failed: {_error_message(error)}")
    return "\n".join(lines) or "the bake failed"


def _error_message(error) -> str:
    wrappers = ("DagsterExecutionStepExecutionError", "DagsterResourceFunctionError")
    while error.cause is not None and error.cls_name in wrappers:
        error = error.cause
    message = error.message.strip()
    head, separator, rest = message.partition(": ")
    return rest if separator and head.split(".")[-1] == error.cls_name else message


def _progress_logger(echo: Callable[[str], None]) -> dg.LoggerDefinition:
    @dg.logger(description="One line per stage of a bake, for the command line.")
    def progress(_init_context: dg.InitLoggerContext) -> logging.Logger:
        logger = logging.Logger("databaker.bake", level=logging.DEBUG)
        logger.addHandler(_ProgressHandler(echo))
        return logger

    return progress


class _ProgressHandler(logging.Handler):
    def __init__(self, echo: Callable[[str], None]) -> None:
        super().__init__(level=logging.DEBUG)
        self._echo = echo

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        step = meta.get("step_key")
        event = meta.get("dagster_event")
        if step is None:
            # Outside any step: what the store says while it takes the data root's lease.
            if event is None and record.levelno == logging.INFO:
                self._echo(str(meta.get("orig_message", record.getMessage())))
            return
        if event is None:
            if record.levelno == logging.INFO:
                self._echo(f"  {step}: {meta.get('orig_message', record.getMessage())}")
        elif event.event_type_value == "STEP_START":
            self._echo(f"{step} ...")
        elif event.event_type_value == "STEP_SUCCESS":
            seconds = event.event_specific_data.duration_ms / 1000
            self._echo(f"{step} done ({seconds:.1f} s)")
        elif event.event_type_value == "STEP_FAILURE":
            self._echo(f"{step} FAILED")
        elif event.event_type_value == "STEP_SKIPPED":
            self._echo(f"{step} skipped: an upstream step failed")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            verdict = "passed" if evaluation.passed else f"FAILED ({evaluation.severity.value})"
            self._echo(f"  check {evaluation.check_name}: {verdict}")


def echo_stdout(line: str) -> None:
    print(line, file=sys.stdout, flush=True)
