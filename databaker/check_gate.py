"""Building on a table is gated on its checks: a layer (or a table that relies on what a check
proved) is written only from a table whose checks passed.

Blocking checks stop downstream assets when they run in the same run. This gate also covers an
asset materialised on its own (from the UI, say): it refuses unless every check of the table it
reads has passed since that table was last materialised.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
)

Checks = Sequence[dg.AssetChecksDefinition | dg.AssetCheckKey]


def require_passed_checks(
    context: dg.AssetExecutionContext, checks: Checks, *, refusing: str = "not publishing"
) -> None:
    """Raise ``Failure`` unless each check passed after its asset was last materialised."""
    problems = check_problems(context.instance, checks)
    if problems:
        raise dg.Failure(f"{refusing}: " + "; ".join(problems))


def check_problems(instance: dg.DagsterInstance, checks: Checks) -> list[str]:
    """What is wrong with the checks' latest results; empty when every one passed (or only
    warned) after its asset was last materialised.

    Only completed evaluations count: a run waiting in the queue has already planned its checks,
    and that plan must not hide the result of the run now publishing.
    """
    problems = []
    for key in sorted(check_keys(checks), key=str):
        evaluation = latest_evaluation(instance, key)
        name = f"{key.asset_key.to_user_string()} / {key.name}"
        if evaluation is None:
            problems.append(f"{name} has not run since the asset was last materialised")
        elif not evaluation.passed and evaluation.severity != dg.AssetCheckSeverity.WARN:
            problems.append(f"{name} failed: {evaluation.description or 'see its metadata'}")
    return problems


def check_keys(checks: Checks) -> list[dg.AssetCheckKey]:
    return [k for c in checks for k in ([c] if isinstance(c, dg.AssetCheckKey) else c.check_keys)]


def latest_evaluation(
    instance: dg.DagsterInstance, key: dg.AssetCheckKey
) -> dg.AssetCheckEvaluation | None:
    """The check's latest completed evaluation, if it ran after its asset was last
    materialised (so that it is about the data there now); else None."""
    materialised = instance.get_latest_materialization_event(key.asset_key)
    since = materialised.timestamp if materialised else 0.0
    completed = instance.event_log_storage.get_asset_check_execution_history(
        key, limit=1, status=COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES
    )
    event = completed[0].event if completed else None
    evaluation = event.asset_check_evaluation if event and event.is_dagster_event else None
    if evaluation is None or event.timestamp < since:
        return None
    return evaluation
