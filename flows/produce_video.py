"""produce-video: one flow run per Notion entry, from script to published video.

Reads as the seed's pipeline: script -> images (gate: assets) -> composites -> clips (gate: videos)
-> narration (gate: audio) -> sound -> assembly (gate: final review) -> publish, writing the matching
Notion status at each step. Every step is a persisted task, and each stage (the tasks and Notion
moves between two gates) is one persisted task around them, so a run resumed after a gate (which
re-executes this function from the top) repeats no work and no Notion write, and passes the stages
already reviewed in a few cache lookups; the workspace manifest does the same across runs, so a
new run after a crash pays for nothing twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from prefect import flow, get_run_logger, runtime, unmapped
from prefect.states import Cancelled, Completed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.review import check_redo, review_gate
from tasks.notion import EntryGone, link_notion_page, read_entry, update_entry
from tasks.production import (
    animate_clip,
    assemble_video,
    compose_frame,
    design_sound,
    generate_image,
    narrate_scene,
    production,
    publish_video,
    total_cost,
    write_script,
)
from tasks.stages import run_stage
from vidgen.channels import channel_for_notion_value
from vidgen.errors import ProviderError, VidgenError
from vidgen.models import ReviewAction, Script, VideoEntry
from vidgen.notion.errors import NotionNotFound
from vidgen.pipeline import SCENE_PADDING_S, Production, VideoBrief, configured_channels
from vidgen.statuses import GATES, NotionStatus as S

T = TypeVar("T")
RESTARTABLE = {S.ERROR_RETRIABLE, S.ERROR_API_FAILURE, S.ERROR_MANUAL_REVIEW, S.ERROR_INVALID_INPUT, S.REVIEW_REJECTED}


class ReviewRejected(VidgenError):
    def __init__(self, gate: str, notes: str):
        self.gate, self.notes = gate, notes
        super().__init__(f"Rejected at the {gate} review" + (f": {notes}" if notes else ""))


class Board:
    """The entry as last written; each move is a persisted `update-entry` task named by its call site."""

    def __init__(self, entry: VideoEntry):
        self.entry = entry

    def move(self, step: str, status: S | None = None, **fields) -> None:
        self.entry = update_entry(self.entry, step, status, **fields)

    def report(self, step: str, status: S, **fields) -> None:
        """Best-effort write on the failure path: a Notion failure must not hide the original error."""
        try:
            self.move(step, status, **fields)
        except Exception as exc:
            get_run_logger().error("Could not write %r to Notion page %s: %s", status.value, self.entry.page_id, exc)


def in_stage(board: Board, name: str, work: Callable[[], T]) -> T:
    """Run `work` as one persisted stage (see tasks/stages.py), keeping the board's entry in step:
    a replayed stage returns the entry its Notion moves produced, so later moves stay cache hits."""

    def body() -> tuple[VideoEntry, T]:
        made = work()
        return board.entry, made

    board.entry, made = run_stage(name, body)
    return made


def flow_run_url() -> str | None:
    from prefect.settings import PREFECT_UI_URL

    ui = PREFECT_UI_URL.value()
    return f"{ui}/runs/flow-run/{runtime.flow_run.id}" if ui and runtime.flow_run.id else None


def _results(futures) -> list:
    return [f.result() for f in futures]


def until_approved(
    prod: Production,
    board: Board,
    gate: str,
    scene_count: int,
    make: Callable[[dict[int, int], int], T],
    files: Callable[[T], list[Path]],
    describe: Callable[[T], str],
) -> T:
    """Make a stage, hold it at its gate, redo the scenes a reviewer names, until approved.

    `make(revisions, round)` writes the stage's Generating status itself, so a redo shows on the
    board as the stage running again (Assets Ready -> Assets Generating -> Assets Ready). Each
    round is one persisted stage, so a resumed run passes the rounds already reviewed at once."""
    revisions: dict[int, int] = defaultdict(int)
    round = 1
    while True:

        def make_and_hold(rev: dict[int, int] = dict(revisions), rnd: int = round) -> T:
            made = make(defaultdict(int, rev), rnd)
            board.move(f"{gate}-gate-{rnd}", GATES[gate])
            return made

        result = in_stage(board, f"{gate}-{round}", make_and_hold)
        verdict = review_gate(prod, gate, round, files(result), describe(result))
        if verdict.action is ReviewAction.APPROVE:
            return result
        if not verdict.redo:
            raise ReviewRejected(gate, verdict.notes)
        if problem := check_redo(verdict, scene_count):
            get_run_logger().warning("Ignoring an invalid redo request at %s: %s", gate, problem)
            board.move(f"{gate}-bad-redo-{round}", error=f"Review at {gate}: {problem}. Decide again.")
        for number in verdict.redo:
            if 1 <= number <= scene_count:
                revisions[number - 1] += 1
        get_run_logger().info("Redoing scene(s) %s at the %s gate: %s", verdict.redo, gate, verdict.notes)
        round += 1


def _table(rows: list[tuple], header: tuple) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines)


@flow(
    name="produce-video",
    persist_result=True,
    log_prints=True,
    task_runner=ThreadPoolTaskRunner(max_workers=6),
)
def produce_video(page_id: str, channel_id: str | None = None) -> str:
    """Make and publish the video for one Notion entry (an entry the poller moved to Processing)."""
    logger = get_run_logger()
    try:
        entry = read_entry(page_id)
    except NotionNotFound:
        return Cancelled(message=f"Notion page {page_id} no longer exists; nothing to make")
    if entry.archived:
        return Cancelled(message=f"Notion page {page_id} is archived; nothing to make")
    channel = channel_for_notion_value(configured_channels(production_paths().channels), channel_id or entry.channel)
    if channel is None:
        Board(entry).report("unknown-channel", S.ERROR_INVALID_INPUT, error=f"Channel {entry.channel!r} is not configured")
        raise ValueError(f"channel {entry.channel!r} is not configured")
    brief = VideoBrief(
        page_id=entry.page_id,
        channel_id=channel.id,
        title=entry.title.strip(),
        topic=entry.topic.strip(),
        story_direction=entry.story_direction.strip(),
    )
    board = Board(entry)
    prod = production(brief)
    try:
        in_stage(board, "start", lambda: start(board, prod))
        url = make_video(prod, board, brief)
    except ReviewRejected as exc:
        board.report("rejected", S.REVIEW_REJECTED, error=str(exc))
        return Completed(message=str(exc))
    except (EntryGone, NotionNotFound) as exc:
        return Cancelled(message=f"Stopped: {exc}")
    except ProviderError as exc:
        logger.error("%s failed: %s", brief.title, exc)
        board.report("failed", exc.notion_status, error=str(exc)[:1900], cost_usd=prod.total_cost())
        raise
    except Exception as exc:
        logger.exception("Unexpected failure making %s", brief.title)
        board.report("crashed", S.ERROR_MANUAL_REVIEW, error=f"{type(exc).__name__}: {exc}"[:1900])
        raise
    return url


def production_paths():
    from vidgen.config import Paths

    return Paths.from_env()


def start(board: Board, prod: Production) -> None:
    if board.entry.notion_status in RESTARTABLE:
        board.move("requeued", S.QUEUED)  # an ad-hoc re-run of a failed or rejected entry
    if board.entry.notion_status is S.QUEUED:
        board.move("processing", S.PROCESSING)
    board.move("started", workspace=str(prod.workspace.root), run_url=flow_run_url(), error="")
    link_notion_page(board.entry)


def make_video(prod: Production, board: Board, brief: VideoBrief) -> str:
    def script_stage() -> Script:
        board.move("assets-generating", S.ASSETS_GENERATING)
        return write_script(brief)

    script: Script = in_stage(board, "script", script_stage)
    scenes = script.scenes
    n = len(scenes)

    def images(rev: dict[int, int], round: int) -> list[Path]:
        board.move(f"assets-generating-{round}", S.ASSETS_GENERATING)
        return _results(generate_image.map(unmapped(brief), scenes, [rev[s.index] for s in scenes]))

    pictures = until_approved(
        prod, board, "assets", n, images, lambda r: r,
        lambda r: "## Images to review\n\n" + _table(
            [(s.index + 1, s.image_prompt[:120], p) for s, p in zip(scenes, r)], ("scene", "prompt", "file")
        ),
    )

    def composites() -> list[Path]:
        board.move("composites-creating", S.COMPOSITES_CREATING)
        made = _results(compose_frame.map(unmapped(brief), scenes, pictures, [0] * n))
        board.move("composites-ready", S.COMPOSITES_READY)
        return made

    frames = in_stage(board, "composites", composites)

    def clips(rev: dict[int, int], round: int) -> list[Path]:
        board.move(f"videos-generating-{round}", S.VIDEOS_GENERATING)
        return _results(animate_clip.map(unmapped(brief), scenes, frames, [rev[s.index] for s in scenes]))

    videos = until_approved(
        prod, board, "videos", n, clips, lambda r: r,
        lambda r: "## Clips to review\n\n" + _table(
            [(s.index + 1, s.motion_prompt, p) for s, p in zip(scenes, r)], ("scene", "motion", "file")
        ),
    )

    def narration(rev: dict[int, int], round: int):
        board.move(f"audio-generating-{round}", S.AUDIO_GENERATING)
        return _results(narrate_scene.map(unmapped(brief), scenes, [rev[s.index] for s in scenes]))

    voice = until_approved(
        prod, board, "audio", n, narration, lambda r: [t.path for t in r],
        lambda r: "## Narration to review\n\n" + _table(
            [(t.index + 1, f"{t.duration_s:.1f}s", s.narration, t.path) for s, t in zip(scenes, r)],
            ("scene", "length", "text", "file"),
        ),
    )

    def sound() -> list[Path]:
        board.move("sfx-generating", S.SFX_GENERATING)
        durations = [t.duration_s + SCENE_PADDING_S for t in voice]
        made = _results(design_sound.map(unmapped(brief), scenes, durations, [0] * n))
        board.move("sfx-ready", S.SFX_READY)
        return made

    sounds = in_stage(board, "sound", sound)

    def film(rev: dict[int, int], round: int):
        board.move(f"assembling-{round}", S.ASSEMBLING_VIDEO)
        # A redo at the final review animates the scene again; revisions 100+ keep these apart from
        # the videos gate's own redos in the run's cache.
        redone = [animate_clip.submit(brief, s, frames[s.index], 100 + rev[s.index]) if rev[s.index] else None for s in scenes]
        final_clips = [f.result() if f is not None else videos[i] for i, f in enumerate(redone)]
        return assemble_video(brief, script, final_clips, voice, sounds)

    video = until_approved(
        prod, board, "final", n, film, lambda r: [r.video],
        lambda r: f"## Final video\n\n- file: `{r.video}`\n- length: {r.duration_s:.1f} s\n- captions: `{r.captions}`\n- thumbnail: `{r.thumbnail}`\n\n"
        + _table([(c.start_s, c.title) for c in r.chapters], ("start (s)", "chapter")),
    )
    board.move("approved", S.REVIEW_APPROVED)
    board.move("uploading", S.UPLOADING, cost_usd=total_cost(brief, "before-upload"))
    published = publish_video(brief, script, video)
    board.move("published", S.UPLOAD_COMPLETE, video_url=published.url, cost_usd=total_cost(brief, "published"), error="")
    return published.url
