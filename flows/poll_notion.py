"""poll-notion: every minute, turn the Notion board into flow runs.

- Card writes that waited for Notion (the outbox, `vidgen.notion.outbox`): delivered first, in order.
- Valid Queued entries: moved to Processing and started as their own `produce-video` deployment
  runs (top-level, so they can suspend at review gates and outlive this poll), never two per page.
- Invalid Queued entries: back to Draft with the reasons on the page (done by `vidgen.polling`).
- Review decisions made on the board: the waiting run is resumed with the reviewer's decision.
- Runs that ended without telling Notion (a gate timed out, a worker died, a person cancelled it):
  their page is moved to Error: Manual Review with the reason, so nothing is silently lost; a page
  whose newer run is live, or that someone moved since the run's last write, is left alone.
- A card put back to Queued while its run is busy returns at once to the run's status, with a note.
- Card writes that waited in the outbox while Notion was down are delivered first, in order.
An idle poll costs exactly one Notion request. A poll Notion does not answer is skipped, in one log line.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
    TaskRunFilter,
    TaskRunFilterName,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort
from prefect.deployments import run_deployment
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
from prefect.exceptions import PrefectHTTPStatusError
from prefect.flow_runs import resume_flow_run
from pydantic import BaseModel, Field

from blocks.automations import HEARTBEAT_FREQUENCY_S, emit_card_error
from flows.review import ReviewDecision, check_redo
from tasks.notion import CARD_WRITE_PREFIX, deliver_card_writes, notion_gateway, status_in_card_write
from vidgen.config import Paths
from vidgen.models import Script, VideoEntry
from vidgen.notion.errors import NotionNotFound
from vidgen.notion.outbox import OUTAGE_ERRORS
from vidgen.pipeline import configured_channels
from vidgen.polling import PollResult, ReviewRequest, poll_once
from vidgen.statuses import ERROR_STATUSES, PIPELINE, NotionStatus as S
from vidgen.workspace import Workspace

PRODUCE_DEPLOYMENT = "produce-video/produce-video"
LIVE_STATES = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED, StateType.CANCELLING]
ENDED_STATES = [StateType.FAILED, StateType.CRASHED, StateType.CANCELLED]
# What a live run's card can show: every step of the pipeline but its end.
RUN_STATUSES: frozenset[S] = frozenset(PIPELINE[:-1])
# Where a card rests without a run: a reconcile never writes over these (Queued: re-queued by a person).
RESTING_STATUSES: frozenset[S] = ERROR_STATUSES | {S.UPLOAD_COMPLETE, S.ARCHIVED, S.DRAFT, S.QUEUED, S.REVIEW_REJECTED}
# A run that ended this recently is left to the next poll: its own last card write may still be on the
# wire, and the crash-restart automation (`vidgen setup`) reschedules a Crashed run a moment after.
SETTLE_S = 20.0
# A Crashed run's process, if it is alive, sends a heartbeat within this long (two periods: one may
# be in flight, and Prefect's event persister writes in batches).
CRASH_SETTLE_S = 2.0 * HEARTBEAT_FREQUENCY_S


class PollSummary(BaseModel):
    started: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    rejected: list[str] = Field(default_factory=list)
    resumed: list[str] = Field(default_factory=list)
    refused: list[str] = Field(default_factory=list)
    reconciled: list[str] = Field(default_factory=list)
    notion_requests: int = 0


def page_tag(page_id: str) -> str:
    return f"page:{page_id}"


def runs_for_page(page_id: str, states: list[StateType]) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[page_tag(page_id)]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states)),
            )
        )


def page_of(run: FlowRun) -> str | None:
    return next((t.removeprefix("page:") for t in run.tags if t.startswith("page:")), None)


def run_ui_url(run_id: str) -> str | None:
    """The run's page in Prefect's UI (None when no UI address is configured)."""
    from prefect.settings import PREFECT_UI_URL

    ui = PREFECT_UI_URL.value()
    return f"{ui}/runs/flow-run/{run_id}" if ui else None


def last_card_status(run_id: str) -> S | None:
    """The status a run last wrote to its card, or None before its first write.

    Read from the run itself: every card write is an `update-card` task run named after the status
    it writes (`tasks.notion.card_write_name`), kept by Prefect's server whatever happens to the worker. Only
    Completed writes count (one that failed against a Notion outage never reached the card), the
    newest by end time; a run restarted after a crash or resumed after a gate replays its earlier
    writes from their cached results in the same order, so the newest is still where the run is.
    Field-only writes are skipped. This needs nothing the flow does not already do,
    unlike a tag or label the flow would have to keep in step with each write.
    """
    with get_client(sync_client=True) as client:
        writes = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])),
            task_run_filter=TaskRunFilter(
                name=TaskRunFilterName(like_=CARD_WRITE_PREFIX),
                state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.COMPLETED])),
            ),
            sort=TaskRunSort.END_TIME_DESC,
            limit=50,
        )
    return next((status for w in writes if (status := status_in_card_write(w.name)) is not None), None)


def video_run_name(channel_id: str, title: str) -> str:
    """What a video's run is called in the Prefect UI: findable by the title on the Notion card."""
    return f"{channel_id}: {title}"[:120]


# Intake (finding work, starting a video, handing a decision to its run) carries no `notion` tag: that
# cap of 3 calls at once is the videos' own (their card writes and previews), and intake queued behind
# a busy board would start new videos late. Every request still takes a slot of the `notion-api` rate
# limit, where intake competes with at most the 3 production calls the tag lets through.
INTAKE_TASK: dict[str, Any] = {"tags": []}


@task(name="find-work", **INTAKE_TASK)
def find_work() -> PollResult:
    return poll_once(notion_gateway(), configured_channels(Paths.from_env().channels))


class VideoStart(BaseModel):
    """What starting a page's video did: a new run, or the live run that already makes it."""

    run_id: str
    run_name: str
    started: bool
    state: str = ""


def start_video_run(entry: VideoEntry, channel_id: str, deployment: str = PRODUCE_DEPLOYMENT) -> VideoStart:
    """Processing on the card, then one top-level deployment run, unless the page already has a live run.

    The one way a video starts: the poller and `vidgen run` both come here."""
    if live := runs_for_page(entry.page_id, LIVE_STATES):
        return VideoStart(run_id=str(live[0].id), run_name=live[0].name, started=False, state=live[0].state_name or "")
    notion_gateway().update_entry(entry, status=S.PROCESSING)
    run = run_deployment(
        deployment,
        parameters={"page_id": entry.page_id, "channel_id": channel_id},
        timeout=0,
        as_subflow=False,
        flow_run_name=video_run_name(channel_id, entry.title),
        tags=[f"channel:{channel_id}", page_tag(entry.page_id)],
        # A poll that dies between creating the run and the next poll cannot start the page twice.
        idempotency_key=f"{entry.page_id}:{entry.last_edited_time}",
    )
    return VideoStart(run_id=str(run.id), run_name=run.name, started=True, state=run.state_name or "")


def return_to_run(entry: VideoEntry, run_id: str, run_name: str) -> VideoEntry:
    """Put a card someone moved to Queued while its run is busy back at the run's status, saying why.

    The run's status is the one it last wrote (`last_card_status`); a run that has written nothing
    yet is at Processing, which `start_video_run` wrote before creating it. The run's own next write
    goes on from there as if the card had never moved (the board allows Queued -> any step a live
    run can show for exactly this)."""
    status = last_card_status(run_id)
    if status not in RUN_STATUSES:
        status = S.PROCESSING
    link = run_ui_url(run_id) or f"run {run_name}"
    return notion_gateway().update_entry(entry, status=status, error=f"already in production: {link}")


@task(name="start-video", task_run_name="start {entry.title}", **INTAKE_TASK)
def start_video(entry: VideoEntry, channel_id: str, deployment: str) -> str | None:
    """The poller's start of one video; None when the page already has a live run (the card, which
    someone put back to Queued, then returns to that run's status)."""
    outcome = start_video_run(entry, channel_id, deployment)
    if not outcome.started:
        shown = return_to_run(entry, outcome.run_id, outcome.run_name)
        get_run_logger().info("%r already has run %s (%s); not starting another; card back at %s",
                              entry.title, outcome.run_name, outcome.state, shown.status)
        return None
    return outcome.run_id


# Longer than the Prefect client's retries of the run's own form save (2+4+8+16+32 s backoff).
PAUSING_GRACE_S = 90


def seconds_paused(run: FlowRun) -> float:
    since = run.state.timestamp if run.state else None
    return (datetime.now(timezone.utc) - since).total_seconds() if since else 0.0


def ready_for_input(run: FlowRun) -> bool:
    """Whether a suspended run can take a decision yet. Prefect marks the run Paused before it saves
    the input form's schema, and refuses a resume in between ("Run input schema not found")."""
    keyset = run.state.state_details.run_input_keyset if run.state else None
    if not keyset:
        return True
    with get_client(sync_client=True) as client:
        try:
            client.read_flow_run_input(run.id, keyset["schema"])
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code == 404:
                return False
            raise
    return True


def repair_input_form(run: FlowRun) -> None:
    """Save a suspended run's review form when its own save gave up (seen on SQLite: five 503s in a
    row): without it no decision can ever reach the run. The same form Prefect would have saved."""
    ReviewDecision.save(run.state.state_details.run_input_keyset, flow_run_id=run.id)


def _scene_count(entry: VideoEntry, channel_id: str) -> int | None:
    script = Workspace.for_entry(Paths.from_env().workspaces, channel_id, entry.page_id).root / "script.json"
    try:
        return len(Script.model_validate_json(script.read_text(encoding="utf-8")).scenes)
    except (OSError, ValueError):
        return None


@task(name="apply-review", task_run_name="review {request.entry.title}", **INTAKE_TASK)
def apply_review(request: ReviewRequest, channel_id: str | None) -> str:
    """Resume the run waiting at this page's gate with the reviewer's decision; say why not otherwise."""
    entry, verdict = request.entry, request.verdict
    gateway = notion_gateway()
    paused = runs_for_page(entry.page_id, [StateType.PAUSED])
    by_status_only = entry.review is None  # Review Approved / Rejected set as the page's status
    if not paused:
        if runs_for_page(entry.page_id, LIVE_STATES):
            return "its run is busy; the decision applies when the run reaches the gate"
        if by_status_only:
            # A finished video resting in Review Approved/Rejected: unlink the run so polls skip it.
            gateway.update_entry(entry, run_url="")
            return "no run is waiting (the video is finished)"
        gateway.update_entry(
            entry,
            review=None,
            error="No video run is waiting for this review (it may have timed out or been cancelled). "
            "Set Status to Queued to make the video again.",
        )
        return "no run waits for this decision: written back to the page"
    if channel_id and (count := _scene_count(entry, channel_id)) and (problem := check_redo(verdict, count)):
        gateway.update_entry(entry, review=None, error=f"Review not applied: {problem}. Choose again.")
        return f"refused: {problem}"
    if not ready_for_input(paused[0]):
        if seconds_paused(paused[0]) < PAUSING_GRACE_S:
            return "its run is still pausing; the decision applies at the next poll"
        repair_input_form(paused[0])
        get_run_logger().warning("Saved the review form of run %s for it (its own save had failed)", paused[0].name)
    decision = ReviewDecision.from_verdict(verdict)
    try:
        resume_flow_run(paused[0].id, run_input=decision.model_dump(mode="json"))
    except RuntimeError as exc:  # Prefect refused the input (schema) or the pause expired
        gateway.update_entry(entry, review=None, error=f"Review not applied: {exc}")
        return f"refused: {exc}"
    if not by_status_only:
        gateway.update_entry(entry, review=None)  # consumed: the next gate must not see it again
    return f"resumed run {paused[0].name} with {verdict.action.value}"


def ended_at(run: FlowRun) -> datetime | None:
    return run.end_time or (run.state.timestamp if run.state else None)


def seconds_since_end(run: FlowRun, now: datetime) -> float:
    ended = ended_at(run)
    return (now - ended).total_seconds() if ended else float("inf")


def is_latest_and_over(run: FlowRun, page_runs: list[FlowRun]) -> bool:
    """Whether `run` is its page's most recent run and no run of the page is live: only then does
    its end say anything about the card (a newer run, live or not, owns the card)."""
    if any(r.state and r.state.type in LIVE_STATES for r in page_runs):
        return False
    return all(r.id == run.id or r.created is None or run.created is None or r.created <= run.created for r in page_runs)


def crashed_but_alive(client: Any, run: FlowRun, now: datetime) -> bool:
    """Whether a Crashed run's process may still be making the video: it has sent a heartbeat since
    it was marked, or was marked too recently to have sent one.

    The zombie automation marks a run Crashed when no heartbeat reached Prefect's server for 90 s,
    and an outage of the server longer than that looks the same as a dead worker (the detector
    keeps no memory of its own downtime; scripts/chaos.py prefect-restart at 150 s). The live run
    goes on regardless (Prefect 3 does not stop a run's tasks for its state, and its end is accepted
    over Crashed): the card is still its own. An Error written there now would be a false alert and
    a board that lies until the run's next write, and a person re-queuing that card would start a
    second run beside the live one (scripts/chaos.py false-crash --keep-crashed, with this check off:
    Error: Manual Review over all three live cards, twice)."""
    since = ended_at(run)
    if since is None:
        return False
    if (now - since).total_seconds() < CRASH_SETTLE_S:
        return True
    beats = client.read_events(
        filter=EventFilter(
            event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}"]),
            occurred=EventOccurredFilter(since=since, until=now),
        ),
        limit=1,
    )
    return bool(beats.events)


def ended_reason(run: FlowRun, at: S) -> str:
    """The card's Error text for a run that ended without writing it: Prefect is where it was seen."""
    message = (run.state.message if run.state else "") or "the run ended unexpectedly"
    state = run.state.name if run.state else "unexpectedly"
    return f"Prefect: run {run.name} ended {state} at {at.value}: {message}"[:1900]


@task(name="reconcile-ended-runs", tags=["notion"])
def reconcile_ended_runs(window_minutes: int = 15, settle_s: float | None = None) -> list[str]:
    """Pages whose run ended Failed, Crashed or Cancelled without saying so on the board get the reason.

    Per page, only its most recent run counts, and only when none is live (a crashed run that the
    restart automation rescheduled is live again). The card is written only when it still shows the
    status that run last wrote: anything else means the run's own final write landed, or a person
    moved the card, and either way the board already says what is true. Runs that ended less than
    `settle_s` ago wait for the next poll, and a Crashed run whose process still sends heartbeats
    (`crashed_but_alive`) is left to go on. A page deleted or archived (whose run was cancelled for
    it) needs nothing."""
    settle_s = SETTLE_S if settle_s is None else settle_s
    now = datetime.now(timezone.utc)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ENDED_STATES)),
                end_time=FlowRunFilterEndTime(after_=now - timedelta(minutes=window_minutes)),
            ),
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["produce-video"])),
            sort=FlowRunSort.END_TIME_DESC,
        )
        ended: list[FlowRun] = []
        seen: set[str] = set()
        for run in runs:
            page_id = page_of(run)
            if page_id is None or page_id in seen:
                continue
            seen.add(page_id)
            if seconds_since_end(run, now) < settle_s or not is_latest_and_over(run, runs_for_page(page_id, list(StateType))):
                continue
            if run.state and run.state.type is StateType.CRASHED and crashed_but_alive(client, run, now):
                continue
            ended.append(run)
    handled: list[str] = []
    gateway = notion_gateway()
    for run in ended:
        page_id = page_of(run)
        try:
            entry = gateway.get_entry(page_id)
        except NotionNotFound:
            continue
        status = entry.notion_status
        if entry.archived or status is None or status in RESTING_STATUSES:
            continue
        if status is not (last_card_status(str(run.id)) or S.PROCESSING):
            continue
        reason = ended_reason(run, status)
        gateway.update_entry(entry, status=S.ERROR_MANUAL_REVIEW, error=reason)
        channel = next((t.removeprefix("channel:") for t in run.tags if t.startswith("channel:")), "")
        emit_card_error(page_id=page_id, title=entry.title, channel_id=channel, step=status.value,
                        status=S.ERROR_MANUAL_REVIEW.value, reason=reason, card_url=entry.url or "", flow_run_id=run.id)
        handled.append(page_id)
    return handled


@flow(name="poll-notion", log_prints=True)
def poll_notion(deployment: str = PRODUCE_DEPLOYMENT) -> PollSummary:
    """Deliver the card writes that waited for Notion, then look at the board once and act on it.
    A poll Notion does not answer is skipped (one log line) and made up by the next one."""
    logger = get_run_logger()
    channels = configured_channels(Paths.from_env().channels)
    delivery = deliver_card_writes()
    try:
        result = find_work() if delivery.outage is None else None
    except OUTAGE_ERRORS:
        result = None
    if result is None:
        logger.warning("Notion unreachable: skipped this poll; pending card writes: %d", delivery.pending)
        return PollSummary()
    summary = PollSummary(notion_requests=result.requests, rejected=[r.entry.title for r in result.rejected])
    for rejected in result.rejected:
        logger.warning("Sent back to Draft: %r: %s", rejected.entry.title, "; ".join(rejected.reasons))
    by_value = {c.notion_value: c.id for c in channels.values()} | {c.id: c.id for c in channels.values()}
    for entry in result.to_start:
        run_id = start_video(entry, by_value[entry.channel], deployment)
        (summary.started if run_id else summary.skipped).append(entry.title)
    for request in result.decisions:
        outcome = apply_review(request, by_value.get(request.entry.channel or ""))
        logger.info("%r: %s", request.entry.title, outcome)
        (summary.resumed if outcome.startswith("resumed") else summary.refused).append(f"{request.entry.title}: {outcome}")
    summary.reconciled = reconcile_ended_runs()
    logger.info("Poll: %s", json.dumps(summary.model_dump()))
    return summary



