"""The one retry policy for paid steps: the seed's 1 min -> 5 min -> 15 min -> 1 h, with jitter.

Only failures that `vidgen.errors.is_retriable` calls retriable are retried; invalid input, API
failures and safety blocks go straight to their Notion status. `VIDGEN_RETRY_DELAYS` (seconds,
comma-separated) overrides the delays, e.g. `0,0` in tests.
"""

from __future__ import annotations

import os

from prefect import Task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from vidgen.errors import is_retriable

SEED_DELAYS = (60, 300, 900, 3600)


def retry_delays() -> list[float]:
    raw = os.environ.get("VIDGEN_RETRY_DELAYS")
    if not raw:
        return list(SEED_DELAYS)
    return [float(x) for x in raw.split(",") if x.strip()]


def retry_if_retriable(task: Task, task_run: TaskRun, state: State) -> bool:
    """Prefect's retry_condition_fn: retry only what the provider classified as retriable."""
    try:
        state.result()
    except Exception as exc:  # the task's own exception, re-raised from its state
        return is_retriable(exc)
    return False


def paid_step_options() -> dict:
    """Task options for every step that calls a paid service."""
    delays = retry_delays()
    return {
        "retries": len(delays),
        "retry_delay_seconds": delays,
        "retry_jitter_factor": 0.2,
        "retry_condition_fn": retry_if_retriable,
        "persist_result": True,
    }
