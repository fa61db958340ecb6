"""handle-page: what a Notion webhook event starts. One page, read once, handled as the poll would.

The event only names the page: `poll_page` re-reads it and classifies it by poll_once's own rules,
and the poll's own tasks act on it (`start_video`, `apply_review`), so "never two runs for a page"
holds whichever of the poll and the webhook sees the page first (start_video's live-run check and
idempotency key). A page moved to the trash (or gone) has its live produce-video run cancelled.
"""

from __future__ import annotations

import contextvars
import logging
import threading

from prefect import flow, get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelled, Cancelling
from pydantic import BaseModel, Field

from flows.poll_notion import INTAKE_TASK, LIVE_STATES, PRODUCE_DEPLOYMENT, apply_review, runs_for_page, start_video
from tasks.notion import notion_gateway
from vidgen.config import Paths
from vidgen.pipeline import configured_channels
from vidgen.polling import PollResult, poll_page

HANDLE_PAGE_DEPLOYMENT = "handle-page/handle-page"
# A run that has no process of its own right now is cancelled outright; one that has, is asked to stop.
_NO_PROCESS = {StateType.SCHEDULED, StateType.PAUSED}


class PageOutcome(BaseModel):
    page_id: str
    started: str | None = Field(default=None, description="id of the produce-video run started")
    rejected: list[str] = Field(default_factory=list, description="reasons it was sent back to Draft")
    review: str | None = Field(default=None, description="what became of a review decision")
    cancelled: list[str] = Field(default_factory=list, description="runs stopped because the page is gone")
    problems: list[str] = Field(default_factory=list)
    notion_requests: int = 0


@task(name="read-page", task_run_name="read {page_id}", **INTAKE_TASK)
def read_page(page_id: str) -> PollResult:
    return poll_page(notion_gateway(), configured_channels(Paths.from_env().channels), page_id)


@task(name="cancel-page-runs", task_run_name="cancel runs of {page_id}")
def cancel_page_runs(page_id: str) -> list[str]:
    """Stop every live produce-video run of a page that was deleted; their work has no page to go to."""
    stopped: list[str] = []
    with get_client(sync_client=True) as client:
        for run in runs_for_page(page_id, LIVE_STATES):
            if run.state_type is StateType.CANCELLING:
                continue
            message = "Its Notion page was deleted"
            state = Cancelled(message=message) if run.state_type in _NO_PROCESS else Cancelling(message=message)
            client.set_flow_run_state(run.id, state, force=True)
            stopped.append(run.name)
    return stopped


@flow(name="handle-page", log_prints=True)
def handle_page(page_id: str, deployment: str = PRODUCE_DEPLOYMENT) -> PageOutcome:
    """Act on one Notion page as the poll would: start it, send it back, resume its gate, or stop its run."""
    logger = get_run_logger()
    channels = configured_channels(Paths.from_env().channels)
    result = read_page(page_id)
    outcome = PageOutcome(page_id=page_id, notion_requests=result.requests)
    outcome.problems = ["; ".join(p.reasons) for p in result.problems]
    if result.gone:
        outcome.cancelled = cancel_page_runs(page_id)
        logger.info("Page %s is gone; cancelled %s", page_id, outcome.cancelled or "nothing")
        return outcome
    by_value = {c.notion_value: c.id for c in channels.values()} | {c.id: c.id for c in channels.values()}
    for rejected in result.rejected:
        outcome.rejected = rejected.reasons
        logger.warning("Sent back to Draft: %r: %s", rejected.entry.title, "; ".join(rejected.reasons))
    for entry in result.to_start:
        outcome.started = start_video(entry, by_value[entry.channel], deployment)
    for request in result.decisions:
        outcome.review = apply_review(request, by_value.get(request.entry.channel or ""))
        logger.info("%r: %s", request.entry.title, outcome.review)
    return outcome


class DispatchQueueFull(RuntimeError):
    """More pages wait for handling than the dispatcher holds; the receiver answers 503 and Notion retries."""


class PageDispatcher:
    """The webhook receiver's `dispatch` inside `vidgen serve`: each event's handle-page flow run starts
    at once in a worker thread of this process, so the receiver answers in milliseconds while the page
    is handled a moment later. (A deployment run would first wait for the runner's next poll and
    then for a new Python process: 5-10 s on 2 cores, measured with `vidgen demo`.)

    Events for one page are handled one after another, and coalesced: an event is only a signal
    (handle-page re-reads the page), so events for a page that already waits add nothing, and an
    event for a page being handled makes it wait for one more run, which starts after that event
    arrived. At most `max_pending` pages wait; beyond that dispatch raises DispatchQueueFull (the
    receiver forgets the event and answers 503, so Notion delivers it again later, and the poll is
    the safety net). Memory is bounded by `max_pending` + `workers`, whatever arrives.
    """

    def __init__(self, workers: int = 4, *, max_pending: int = 1000):
        self.max_pending = max_pending
        self._pending: dict[str, str] = {}  # page id -> the latest event type, oldest page first
        self._running: set[str] = set()
        self._closing = False
        self._changed = threading.Condition()
        # Runs happen under the settings of whoever made the dispatcher (Prefect keeps them in context
        # variables, which a worker thread does not inherit): the receiver's thread has none of its own.
        self._context = contextvars.copy_context()
        self._threads = [
            threading.Thread(target=self._work, name=f"handle-page-{n}", daemon=True) for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def __call__(self, page_id: str, event_type: str) -> None:
        with self._changed:
            if self._closing:
                raise DispatchQueueFull("the dispatcher is closing")
            if page_id not in self._pending and len(self._pending) >= self.max_pending:
                raise DispatchQueueFull(f"{len(self._pending)} pages already wait to be handled")
            self._pending[page_id] = event_type
            self._changed.notify()

    def _next(self) -> tuple[str, str] | None:
        """The oldest waiting page not being handled (marked running), or None once closed and drained."""
        with self._changed:
            while True:
                ready = next((p for p in self._pending if p not in self._running), None)
                if ready is not None:
                    self._running.add(ready)
                    return ready, self._pending.pop(ready)
                if self._closing and not self._pending:
                    return None
                self._changed.wait()

    def _work(self) -> None:
        while (job := self._next()) is not None:
            page_id, event_type = job
            try:
                self._context.copy().run(self._handle, page_id, event_type)
            finally:
                with self._changed:
                    self._running.discard(page_id)
                    self._changed.notify_all()

    def _handle(self, page_id: str, event_type: str) -> None:
        try:
            handle_page.with_options(flow_run_name=f"{event_type} {page_id}"[:120])(page_id)
        except Exception:  # the flow run is Failed in Prefect with its traceback; the poll is the safety net
            logging.getLogger(__name__).exception("handle-page for %s failed", page_id)

    def waiting(self) -> int:
        """Pages waiting to be handled (not counting those being handled)."""
        with self._changed:
            return len(self._pending)

    def close(self) -> None:
        """Handle what waits, then stop the workers."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()
