"""produce-video: one flow run per Notion entry, from script to published video.

Reads as the seed's pipeline: script -> images (gate: assets) -> composites -> clips (gate: videos)
-> narration (gate: audio) -> sound -> assembly (gate: final review) -> publish, writing the matching
Notion status at each step. At a gate the run suspends until a reviewer decides; a redo makes just
the named scenes again and returns to the same gate.

Every step and every card write is a persisted task, so a run resumed after a gate (which
re-executes this function from the top) is served everything it did before from its results and
pays for, and writes, nothing twice; the workspace manifest does the same across runs, so a new run
after a crash repeats no paid call either.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
from prefect import flow, get_run_logger, runtime, unmapped
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL
from prefect.states import Cancelled, Completed, Crashed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner

from blocks.automations import emit_card_error, emit_cost_threshold
from flows.review import Revisions, check_redo, review_gate
from tasks.claim import VideoClaim, VideoTakenElsewhere, claim_this_video
from tasks.notion import EntryGone, link_notion_page, read_entry, update_card
from tasks.production import (
    animate_clip,
    assemble_video,
    compose_frame,
    design_sound,
    generate_image,
    narrate_scene,
    open_production,
    publish_video,
    report_cost,
    write_script,
)
from tasks.retry import Deferral, deferral_of
from vidgen.channels import channel_for_notion_value
from vidgen.config import Paths
from vidgen.errors import ProviderError, VidgenError
from vidgen.models import ReviewAction, Scene, Script, VideoEntry
from vidgen.notion.errors import NotionError, NotionNotFound
from vidgen.pipeline import SCENE_PADDING_S, AssembledVideo, NarrationTrack, Production, VideoBrief, configured_channels
from vidgen.previews import PreviewItem
from vidgen.statuses import ERROR_STATUSES, GATES, NotionStatus as S

MAX_RUN_RESTARTS_ENV = "VIDGEN_MAX_RUN_RESTARTS"
DEFAULT_MAX_RUN_RESTARTS = 3

RESTARTABLE = {S.ERROR_RETRIABLE, S.ERROR_API_FAILURE, S.ERROR_MANUAL_REVIEW, S.ERROR_INVALID_INPUT, S.REVIEW_REJECTED}


class ReviewRejected(VidgenError):
    def __init__(self, gate: str, notes: str):
        self.gate, self.notes = gate, notes
        super().__init__(f"Rejected at the {gate} review" + (f": {notes}" if notes else ""))


class VideoRun:
    """One video's run: its production context (built once) and its Notion card as last written."""

    def __init__(self, entry: VideoEntry, production: Production, claim: VideoClaim | None = None):
        self.card = entry
        self.production = production
        self.claim = claim  # this process's hold on the video; every step first confirms it
        self.spent_usd = 0.0  # the ledger's total when last looked at (for the budget alert)

    @property
    def brief(self) -> VideoBrief:
        return self.production.brief

    def update_card(self, status: S | None = None, round: int = 1, **fields: Any) -> None:
        """Each step starts with a card write: the point where a process that lost its claim to
        another one stops (`VideoClaim.confirm` raises Prefect's Abort), before it pays for the step."""
        if self.claim is not None:
            self.claim.confirm()
        self.card = update_card(self.card, status, round, **fields)

    def report(self, status: S, **fields: Any) -> None:
        """Best-effort write on the failure path: a Notion failure must not hide the original error.
        An Error status is also an event, which the alert automation (`vidgen setup`) turns into a message."""
        step = self.card.status
        try:
            self.update_card(status, **fields)
        except Exception as exc:
            get_run_logger().error("Could not write %r to Notion page %s: %s", status.value, self.card.page_id, exc)
        if status in ERROR_STATUSES:
            emit_card_error(
                page_id=self.card.page_id, title=self.brief.title, channel_id=self.brief.channel_id, step=step,
                status=status.value, reason=fields.get("error", ""), card_url=self.card.url or "",
            )

    def watch_budget(self, step: str) -> None:
        """Raise the budget alert once, at the step whose spend crossed 80 % of the channel's budget."""
        before, self.spent_usd = self.spent_usd, self.production.total_cost()
        emit_cost_threshold(
            page_id=self.card.page_id, title=self.brief.title, channel_id=self.brief.channel_id, step=step,
            before_usd=before, after_usd=self.spent_usd, budget_usd=self.production.channel.budget.max_usd_per_video,
            card_url=self.card.url or "",
        )


@flow(
    name="produce-video",
    persist_result=True,
    log_prints=True,
    task_runner=ThreadPoolTaskRunner(max_workers=6),
)
def produce_video(page_id: str, channel_id: str | None = None) -> str | State:
    """Make and publish the video for one Notion entry (an entry the poller moved to Processing).

    One process at a time makes a video, however many workers serve this deployment: a process
    Prefect starts for a run another process is still making steps aside here (`tasks/claim.py`)."""
    try:
        with claim_this_video(page_id) as claim:
            return produce(page_id, channel_id, claim)
    except VideoTakenElsewhere as exc:
        return Cancelled(message=f"Stopped: {exc}")


def produce(page_id: str, channel_id: str | None, claim: VideoClaim | None) -> str | State:
    try:
        entry = read_entry(page_id)
    except NotionNotFound:
        return Cancelled(message=f"Notion page {page_id} no longer exists; nothing to make")
    if entry.archived:
        return Cancelled(message=f"Notion page {page_id} is archived; nothing to make")
    if (restarts := restarts_so_far()) > max_run_restarts():
        return given_up(entry, restarts)
    channel = channel_for_notion_value(configured_channels(Paths.from_env().channels), channel_id or entry.channel)
    if channel is None:
        update_card(entry, S.ERROR_INVALID_INPUT, error=f"Channel {entry.channel!r} is not configured")
        raise ValueError(f"channel {entry.channel!r} is not configured")
    brief = VideoBrief(
        page_id=entry.page_id,
        channel_id=channel.id,
        title=entry.title.strip(),
        topic=entry.topic.strip(),
        story_direction=entry.story_direction.strip(),
    )
    with open_production(brief) as production:
        video = VideoRun(entry, production, claim)
        try:
            return make_video(video)
        except ReviewRejected as exc:
            video.report(S.REVIEW_REJECTED, error=str(exc))
            return Completed(message=str(exc))
        except (EntryGone, NotionNotFound) as exc:
            return Cancelled(message=f"Stopped: {exc}")
        except ProviderError as exc:
            if (deferral := deferral_of(exc)) is not None:
                return defer(video, deferral)
            get_run_logger().error("%s failed: %s", brief.title, exc)
            video.report(exc.notion_status, error=str(exc)[:1900], cost_usd=production.total_cost())
            raise
        except Exception as exc:
            if prefect_unreachable(exc):
                return crashed_by_prefect(video, exc)
            get_run_logger().exception("Unexpected failure making %s", brief.title)
            video.report(S.ERROR_MANUAL_REVIEW, error=failure_reason(exc, video.card.status)[:1900])
            raise


def max_run_restarts() -> int:
    """How many times a crashed run is started again before a person is asked (`VIDGEN_MAX_RUN_RESTARTS`)."""
    raw = os.environ.get(MAX_RUN_RESTARTS_ENV, "").strip()
    return int(raw) if raw else DEFAULT_MAX_RUN_RESTARTS


def restarts_so_far() -> int:
    """Times this run was started again: Prefect counts every start of a flow run (`run_count`, 1 on
    the first) except a resume from a review gate, so restarts after a crash or a worker's
    shutdown are exactly the starts after the first."""
    return max(int(runtime.flow_run.run_count or 1) - 1, 0)


def restart_history(flow_run_id: str | None) -> str:
    """Why the run was started again, the latest last: the messages of its Crashed states and of the
    reschedules that followed (a worker's shutdown, the crash-restart automation)."""
    from prefect.client.orchestration import get_client

    if not flow_run_id:
        return ""
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(flow_run_id)
    reasons = [s.message for s in sorted(states, key=lambda s: s.timestamp)
               if s.message and (s.is_crashed() or s.name == "AwaitingRetry")]
    return reasons[-1] if reasons else ""


def given_up(entry: VideoEntry, restarts: int) -> State:
    """Stop a run restarted more often than allowed: Error: Manual Review, with the history, on the card.

    The run ends Failed (not Crashed), so the crash-restart automation leaves it there."""
    try:
        last = restart_history(runtime.flow_run.id)
    except Exception as exc:  # the history is a courtesy; the stop is what matters
        last = f"(its history could not be read: {exc})"
    reason = (f"Restarted {restarts} times after crashes (limit {max_run_restarts()}, {MAX_RUN_RESTARTS_ENV}); "
              f"last: {last or 'no reason recorded'}. Set Status to Queued to make it again.")
    step = entry.status
    try:
        update_card(entry, S.ERROR_MANUAL_REVIEW, error=reason[:1900])
    except Exception as exc:
        get_run_logger().error("Could not write Error: Manual Review to Notion page %s: %s", entry.page_id, exc)
    emit_card_error(page_id=entry.page_id, title=entry.title, channel_id=entry.channel or "", step=step,
                    status=S.ERROR_MANUAL_REVIEW.value, reason=reason, card_url=entry.url or "")
    return Failed(message=reason)


def prefect_unreachable(exc: BaseException) -> bool:
    """A call to Prefect's own API that found no server, after the client's retries
    (PREFECT_CLIENT_MAX_RETRIES; a slot release gave up about 150 s into an outage in scripts/chaos.py)."""
    return isinstance(exc, httpx.TransportError) and _to_prefect_api(exc)


def _to_prefect_api(exc: httpx.HTTPError) -> bool:
    try:
        url = str(exc.request.url)
    except RuntimeError:  # an httpx error raised outside a request
        return False
    api = PREFECT_API_URL.value() or ""
    return bool(api) and url.startswith(api.rstrip("/"))


def crashed_by_prefect(video: VideoRun, exc: BaseException) -> State:
    """Prefect's server was gone longer than the client waits (a restart that took minutes): the video
    did not fail, its orchestration did. The run ends Crashed, as when its worker dies, so the
    crash-restart automation runs it again (what it finished is served from its persisted results and
    the workspace, nothing is paid twice); the card keeps its status rather than show an error for a
    run that is about to go on. Within VIDGEN_MAX_RUN_RESTARTS, like any crash."""
    message = f"{failure_reason(exc, video.card.status)} at {video.card.status}; crashed so it is restarted"
    get_run_logger().warning("%s: %s", video.brief.title, message)
    return Crashed(message=message)


def failure_reason(exc: BaseException, step: str) -> str:
    """The card's Error text for a failure: it names the service that failed, so a person knows where to look.

    Provider and Notion errors name themselves ("kling: HTTP 500 ...", "Notion at ... is not
    reachable ..."). A bare HTTP error reaches here only from Prefect's client (providers and the
    Notion gateway translate theirs), and is named Prefect's when it went to Prefect's API address;
    anything else is named by the step the card was at."""
    if isinstance(exc, (ProviderError, NotionError)):
        return str(exc)
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, PrefectHTTPStatusError):
        return f"Prefect API error ({detail})"
    if isinstance(exc, httpx.HTTPError):
        if _to_prefect_api(exc):
            return f"Prefect API unreachable ({detail})" if isinstance(exc, httpx.TransportError) else f"Prefect API error ({detail})"
        try:
            host = exc.request.url.host
        except RuntimeError:  # an httpx error raised outside a request
            host = ""
        if host:
            return f"HTTP request to {host} failed at {step} ({detail})"
    return f"{step} failed: {detail}"


def make_video(video: VideoRun) -> str:
    start(video)
    script = write_script(video.production)
    images = approved_images(video, script.scenes)
    frames = composed_frames(video, script.scenes, images)
    clip_revisions = Revisions(len(script.scenes))
    approved_clips(video, script.scenes, frames, clip_revisions)
    narration = approved_narration(video, script.scenes)
    sounds = designed_sounds(video, script.scenes, narration)
    film = approved_film(video, script, frames, clip_revisions, narration, sounds)
    return published(video, script, film)


def start(video: VideoRun) -> None:
    if video.card.notion_status in RESTARTABLE:
        video.update_card(S.QUEUED)  # an ad-hoc re-run of a failed or rejected entry
    if video.card.notion_status is S.QUEUED:
        video.update_card(S.PROCESSING)
    video.update_card(S.ASSETS_GENERATING, workspace=str(video.production.workspace.root), run_url=flow_run_url(), error="")
    link_notion_page(video.card)


def approved_images(video: VideoRun, scenes: list[Scene]) -> list[Path]:
    revisions = Revisions(len(scenes))
    while True:
        video.update_card(S.ASSETS_GENERATING, revisions.round)
        images = generate_image.map(unmapped(video.production), scenes, revisions.of_scenes()).result()
        items = [PreviewItem(scene_number=s.index + 1, kind="image", path=p, caption=s.image_prompt) for s, p in zip(scenes, images)]
        if reviewed(video, "assets", revisions, items):
            return images


def composed_frames(video: VideoRun, scenes: list[Scene], images: list[Path]) -> list[Path]:
    video.update_card(S.COMPOSITES_CREATING)
    frames = compose_frame.map(unmapped(video.production), scenes, images).result()
    video.update_card(S.COMPOSITES_READY)
    return frames


def approved_clips(video: VideoRun, scenes: list[Scene], frames: list[Path], revisions: Revisions) -> list[Path]:
    """Animate and hold at the videos gate; `revisions` stays with the caller, since a redo at the
    final review animates scenes again from the revisions approved here."""
    while True:
        video.update_card(S.VIDEOS_GENERATING, revisions.round)
        clips = animate_clip.map(unmapped(video.production), scenes, frames, revisions.of_scenes()).result()
        items = [PreviewItem(scene_number=s.index + 1, kind="video", path=p, caption=s.motion_prompt) for s, p in zip(scenes, clips)]
        if reviewed(video, "videos", revisions, items):
            return clips


def approved_narration(video: VideoRun, scenes: list[Scene]) -> list[NarrationTrack]:
    revisions = Revisions(len(scenes))
    while True:
        video.update_card(S.AUDIO_GENERATING, revisions.round)
        tracks = narrate_scene.map(unmapped(video.production), scenes, revisions.of_scenes()).result()
        items = [PreviewItem(scene_number=s.index + 1, kind="audio", path=t.path, caption=s.narration) for s, t in zip(scenes, tracks)]
        if reviewed(video, "audio", revisions, items):
            return tracks


def designed_sounds(video: VideoRun, scenes: list[Scene], narration: list[NarrationTrack]) -> list[Path]:
    video.update_card(S.SFX_GENERATING)
    durations = [t.duration_s + SCENE_PADDING_S for t in narration]
    sounds = design_sound.map(unmapped(video.production), scenes, durations).result()
    video.update_card(S.SFX_READY)
    return sounds


def approved_film(
    video: VideoRun,
    script: Script,
    frames: list[Path],
    clip_revisions: Revisions,
    narration: list[NarrationTrack],
    sounds: list[Path],
) -> AssembledVideo:
    """Assemble and hold for the final review. A redo here animates the named scenes once more, their
    revisions continuing from the ones approved at the videos gate, and assembles again."""
    revisions = Revisions(len(script.scenes))
    while True:
        video.update_card(S.ASSEMBLING_VIDEO, revisions.round)
        # Scenes nobody asked to redo keep their approved revision: those calls are served from the run's results.
        clip_revision = [approved + redo for approved, redo in zip(clip_revisions.counts, revisions.counts)]
        clips = animate_clip.map(unmapped(video.production), script.scenes, frames, clip_revision).result()
        film = assemble_video(video.production, script, clips, narration, sounds)
        chapters = "; ".join(f"{c.start_s:.0f} s {c.title}" for c in film.chapters)
        items = [
            PreviewItem(kind="video", path=film.video, caption=f"{film.duration_s:.0f} s. Chapters: {chapters}"),
            PreviewItem(kind="image", path=film.thumbnail, caption="Thumbnail"),
        ]
        if reviewed(video, "final", revisions, items):
            return film


def published(video: VideoRun, script: Script, film: AssembledVideo) -> str:
    video.update_card(S.REVIEW_APPROVED)
    video.update_card(S.UPLOADING, cost_usd=report_cost(video.production, "assembly"))
    upload = publish_video(video.production, script, film)
    # A refused captions track or thumbnail leaves the video published; the card says what did not stick.
    video.update_card(S.UPLOAD_COMPLETE, video_url=upload.url, cost_usd=report_cost(video.production, "upload"),
                      error="; ".join(upload.warnings))
    return upload.url


def reviewed(video: VideoRun, gate: str, revisions: Revisions, items: list[PreviewItem]) -> bool:
    """Hold the stage at its gate until a reviewer decides: True to go on; False after recording a redo
    (the caller makes the named scenes again); a rejection without scenes ends the video."""
    video.update_card(GATES[gate], revisions.round)
    video.watch_budget(GATES[gate].value)
    verdict = review_gate(video.production, video.card.url, gate, revisions, items)
    if verdict.action is ReviewAction.APPROVE:
        return True
    if not verdict.redo:
        raise ReviewRejected(gate, verdict.notes)
    if problem := check_redo(verdict, len(revisions.counts)):
        get_run_logger().warning("Ignoring an invalid redo request at %s: %s", gate, problem)
        video.update_card(round=revisions.round, error=f"Review at {gate}: {problem}. Decide again.")
        revisions.redo([])
        return False
    get_run_logger().info("Redoing scene(s) %s at the %s gate: %s", verdict.redo, gate, verdict.notes)
    revisions.redo(verdict.redo)
    return False


def defer(video: VideoRun, deferral: Deferral) -> State:
    """A quota that resets hours from now (YouTube's daily units, a Gemini daily limit): schedule the
    video's next run for the reset and end this one, holding no worker meanwhile. The card says until
    when; the next run starts from the card's Error: Retriable like any re-queued video, and the
    workspace manifest serves everything already made, so only the deferred step is paid for."""
    from prefect.deployments import run_deployment

    from flows.poll_notion import PRODUCE_DEPLOYMENT, page_tag, video_run_name

    brief = video.brief
    later = run_deployment(
        PRODUCE_DEPLOYMENT,
        parameters={"page_id": brief.page_id, "channel_id": brief.channel_id},
        scheduled_time=deferral.until,
        timeout=0,
        as_subflow=False,
        flow_run_name=video_run_name(brief.channel_id, brief.title),
        tags=[f"channel:{brief.channel_id}", page_tag(brief.page_id), "deferred"],
        idempotency_key=f"{brief.page_id}:deferred:{deferral.until.isoformat()}",
    )
    message = f"{deferral.message}; run {later.name} will continue then"
    get_run_logger().warning("%s: %s", brief.title, message)
    video.report(S.ERROR_RETRIABLE, error=message[:1900], cost_usd=video.production.total_cost())
    return Completed(message=message)


def flow_run_url() -> str | None:
    from prefect.settings import PREFECT_UI_URL

    ui = PREFECT_UI_URL.value()
    return f"{ui}/runs/flow-run/{runtime.flow_run.id}" if ui and runtime.flow_run.id else None
