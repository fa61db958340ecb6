"""Waiting on a job a provider keeps (a KIE task, a Gemini interaction): one polling loop for both.

Polls start at `first_poll_s` and grow by `growth` to `max_poll_s`; the last pause is cut short so
the final poll falls on the deadline. A transient error while polling (RetriableError) is not the job
failing: it is logged and polling goes on. Past the deadline, `timed_out()` is raised. Time is
`clock`/`sleep`, so tests never really wait. This is waiting, not retrying: the orchestrator's one
retry policy (`tasks/retry.py`) still decides what happens to a call that failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, retry_if_result, wait_exponential

from vidgen.errors import ProviderError, RetriableError

log = logging.getLogger(__name__)

T = TypeVar("T")


def poll_until(
    look: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout_s: float,
    timed_out: Callable[[], ProviderError],
    what: str,
    first_poll_s: float,
    max_poll_s: float,
    growth: float = 1.5,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> T:
    """`look()` until `done(answer)`; `what` names the job in the log."""
    deadline = clock() + timeout_s
    backoff = wait_exponential(multiplier=first_poll_s, exp_base=growth, max=max_poll_s)

    def give_up(state: RetryCallState) -> T:
        raise timed_out()

    def log_transient(state: RetryCallState) -> None:
        if state.outcome is not None and state.outcome.failed:
            log.warning("polling %s: %s (will poll again)", what, state.outcome.exception())

    polling = Retrying(
        retry=retry_if_exception_type(RetriableError) | retry_if_result(lambda answer: not done(answer)),
        stop=lambda state: clock() >= deadline,
        wait=lambda state: min(backoff(state), max(0.0, deadline - clock())),
        sleep=sleep,
        before_sleep=log_transient,
        retry_error_callback=give_up,
    )
    return polling(look)
