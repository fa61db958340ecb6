"""The one retry policy for paid steps: the seed's 1 min -> 5 min -> 15 min -> 1 h, with jitter.

Only failures that `vidgen.errors.is_retriable` calls retriable are retried; invalid input, API
failures and safety blocks go straight to their Notion status. `VIDGEN_RETRY_DELAYS` (seconds,
comma-separated) overrides the delays, e.g. `0,0` in tests.

**Retry-After.** Every provider parses the wait it asks for into `ProviderError.retry_after` (and
`retry_at`, the instant it ends). Prefect 3 schedules a task retry at `now + retry_delay_seconds[i]`
(jittered by `clamped_poisson_interval`) in `handle_retry`, *after* asking `retry_condition_fn`;
the delay cannot vary per failure. So the condition function, which sees the failure, waits out
the part of the provider's wait that the shortest delay Prefect may draw for this attempt would not
cover, then lets Prefect schedule its own delay: the next try starts no sooner than the provider
asked, and the seed's delays stay the one policy (a 429 with Retry-After 120 on the first failure
waits ~71 s here plus Prefect's ~49-72 s; a Retry-After of 10 adds nothing). Both waits happen in
the task's worker thread, holding the tag's concurrency slot, exactly like Prefect's own
`AwaitingRetry` sleep. Alternatives rejected: mutating `task.retry_delay_seconds` per failure races
between concurrent runs of the same task; retrying inside the step would stack a second policy.

**Deferral.** A wait longer than `VIDGEN_MAX_RETRY_WAIT_S` (default one hour, the policy's longest
step) is not a retry but a deferral: a spent YouTube upload quota (resets at midnight Pacific), a
Gemini per-day quota, a 429 asking for hours. Holding a worker that long is waste, so the condition
function declines the retry, the task fails with the provider's error, and the flow asks
`deferral_of(error)` for when to try again and what to tell the card, then suspends or reschedules
the run until `Deferral.until`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from prefect import Task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.utilities.math import lower_clamp_multiple
from pydantic import BaseModel

from vidgen.errors import ProviderError, is_retriable
from vidgen.providers.youtube import UploadDeferred, seconds_until_quota_reset

SEED_DELAYS = (60, 300, 900, 3600)
JITTER_FACTOR = 0.2
DEFAULT_MAX_WAIT_S = 3600.0
PACIFIC = ZoneInfo("America/Los_Angeles")

log = logging.getLogger(__name__)


def retry_delays() -> list[float]:
    raw = os.environ.get("VIDGEN_RETRY_DELAYS")
    if not raw:
        return list(SEED_DELAYS)
    return [float(x) for x in raw.split(",") if x.strip()]


def max_wait_in_run_s() -> float:
    """The longest provider-requested wait a run sits out itself; longer ones defer the step."""
    raw = os.environ.get("VIDGEN_MAX_RETRY_WAIT_S")
    return float(raw) if raw else DEFAULT_MAX_WAIT_S


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- deferral ---------------------------------------------------------------------------------
class Deferral(BaseModel):
    """A step that must wait for a quota or rate-limit reset: when to try again, and the card's words."""

    until: datetime  # timezone-aware, UTC
    message: str


def youtube_quota_resets_at(now: datetime) -> datetime:
    """The next midnight Pacific after `now` (UTC), when YouTube's daily quota units come back."""
    return (now + timedelta(seconds=seconds_until_quota_reset(now))).astimezone(timezone.utc)


def describe_until(when: datetime) -> str:
    """A reset time readable on the board: UTC, with Pacific time (the quotas' own clock) beside it."""
    utc, pacific = when.astimezone(timezone.utc), when.astimezone(PACIFIC)
    return f"{utc:%Y-%m-%d %H:%M} UTC ({pacific:%H:%M} {pacific.tzname()})"


def deferral_of(exc: BaseException, *, now: datetime | None = None) -> Deferral | None:
    """Whether a failure defers its step rather than failing it, and until when.

    A deferral is a retriable failure, or a 429 (Gemini reports its per-day quota as an API
    failure with the reset as `retry_after`), whose provider asked for a wait longer than a run
    sits out (`max_wait_in_run_s`). Anything else is None: retried in the run, or an error.
    """
    now = now or _now()
    if isinstance(exc, UploadDeferred):
        until = exc.retry_at or youtube_quota_resets_at(now)
        return Deferral(
            until=until,
            message=f"YouTube quota for {exc.channel_id} is spent; upload deferred until {describe_until(until)}",
        )
    if not isinstance(exc, ProviderError) or exc.retry_at is None:
        return None
    if not (is_retriable(exc) or exc.status_code == 429):
        return None
    if (exc.retry_at - now).total_seconds() <= max_wait_in_run_s():
        return None
    service = exc.provider.capitalize() if exc.provider else "The provider"
    return Deferral(
        until=exc.retry_at,
        message=f"{service} asked to wait until {describe_until(exc.retry_at)}; step deferred until then ({exc})",
    )


# --- Retry-After within the run ---------------------------------------------------------------
def shortest_delay_s(delays: float | Sequence[float] | None, jitter_factor: float | None, attempt: int) -> float:
    """The shortest delay Prefect's `handle_retry` can draw before retry number `attempt` (0-based).

    Prefect repeats the last delay past the end of the list and jitters with
    `clamped_poisson_interval`, whose lower bound is `delay * lower_clamp_multiple(1 + factor)`.
    """
    if not delays:
        return 0.0
    if isinstance(delays, Sequence):
        delay = float(delays[min(max(attempt, 0), len(delays) - 1)])
    else:
        delay = float(delays)
    if jitter_factor and delay > 0:
        return max(0.0, delay * lower_clamp_multiple(1 + jitter_factor))
    return delay


def extra_wait_s(exc: BaseException, *, shortest_delay: float, now: datetime) -> float:
    """How much longer than `shortest_delay` the provider asked to be left alone (0 if not at all)."""
    retry_at = exc.retry_at if isinstance(exc, ProviderError) else None
    if retry_at is None:
        return 0.0
    return max(0.0, (retry_at - now).total_seconds() - shortest_delay)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def retry_if_retriable(task: Task, task_run: TaskRun, state: State) -> bool:
    """Prefect's retry_condition_fn: retry only what the provider classified as retriable.

    Before saying yes it waits out whatever part of the provider's Retry-After Prefect's own
    delay for this attempt would not cover; a wait beyond `max_wait_in_run_s` is declined (the
    step is deferred by the flow, see `deferral_of`).
    """
    try:
        state.result()
    except Exception as exc:  # the task's own exception, re-raised from its state
        if not is_retriable(exc) or deferral_of(exc) is not None:
            return False
        attempt = (task_run.run_count - 1) if task_run is not None else 0
        shortest = shortest_delay_s(task.retry_delay_seconds, task.retry_jitter_factor, attempt) if task else 0.0
        wait = extra_wait_s(exc, shortest_delay=shortest, now=_now())
        if wait > 0:
            log.info("%s asked to wait %.0f s more than the retry policy's delay; waiting", exc, wait)
            _sleep(wait)
        return True
    return False


def paid_step_options() -> dict:
    """Task options for every step that calls a paid service."""
    delays = retry_delays()
    return {
        "retries": len(delays),
        "retry_delay_seconds": delays,
        "retry_jitter_factor": JITTER_FACTOR,
        "retry_condition_fn": retry_if_retriable,
        "persist_result": True,
    }
