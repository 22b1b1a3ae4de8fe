"""A whole bake in-process: the layer job over every letter, as one run, with progress lines.

This is what ``databaker bake`` runs. It uses the same ``Definitions`` as the Dagster UI, so a
bake from the command line and a materialisation from the UI execute identical code.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg

from databaker.assets.current_elections.guard_rails import OVERRIDES
from databaker.definitions import Settings, build_defs
from databaker.jobs import current_elections_layer
from databaker.partitions import ALL_LETTERS


class BakeFailed(Exception):
    """The bake stopped; the message says which step and why. The published layer is unchanged."""


@dataclass(frozen=True)
class BakeResult:
    """Where the layer is, how long the bake took, and each asset's materialisation metadata."""

    layer: str
    seconds: float
    metadata: dict[str, dict[str, Any]]


def bake(
    *,
    addressbase: str | None = None,
    ballots: str | None = None,
    settings: Settings,
    max_rejected_rows: int = 0,
    max_rejected_share: float | None = None,
    allow: Collection[str] = (),
    instance: dg.DagsterInstance | None = None,
    echo: Callable[[str], None] | None = None,
) -> BakeResult:
    """Materialise every asset and check of the current-elections layer; raise ``BakeFailed``.

    Without ``addressbase`` the newest complete drop of ``settings.addressbase_drops`` is baked;
    without ``ballots``, ``settings.ballots``. ``allow`` names guard rails to override
    (``address_drop``, ``ballot_loss``, ``coverage_change``, ``upcoming_ballots_gone``).
    """
    defs = build_defs(settings)
    job = defs.resolve_job_def(current_elections_layer.name)
    if echo is not None:
        job = job.with_logger_defs({"progress": _progress_logger(echo)})
    limits: dict[str, Any] = {"max_rejected_rows": max_rejected_rows}
    if max_rejected_share is not None:
        limits["max_rejected_share"] = max_rejected_share
    run_config: dict[str, Any] = {
        "ops": {
            "addressbase_cleaned_raw": {"config": {"source": addressbase, **limits}},
            "current_ballots": {"config": {"source": ballots, **limits}},
            "current_elections_version": {"config": {OVERRIDES[name]: True for name in allow}},
        }
    }
    if echo is not None:
        run_config["loggers"] = {"progress": {}}
    started = time.monotonic()
    with _instance(instance) as active:
        result = job.execute_in_process(
            run_config=run_config, instance=active, tags=ALL_LETTERS, raise_on_error=False
        )
    if not result.success:
        raise BakeFailed(_failure_report(result))
    metadata = {
        event.asset_key.to_user_string(): {
            key: value.value
            for key, value in event.step_materialization_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }
    layer = str(metadata["current_elections_parquet"]["path"])
    return BakeResult(layer=layer, seconds=time.monotonic() - started, metadata=metadata)


@contextmanager
def _instance(given: dg.DagsterInstance | None) -> Iterator[dg.DagsterInstance]:
    """The given instance, else the one under ``$DAGSTER_HOME`` if set, else a throwaway one."""
    if given is not None:
        yield given
        return
    owned = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    with owned or dg.DagsterInstance.ephemeral() as instance:
        yield instance


def _failure_report(result: dg.ExecuteInProcessResult) -> str:
    lines = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
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
    while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
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
