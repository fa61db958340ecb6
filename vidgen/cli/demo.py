"""`vidgen demo`: the whole product on this machine, from an empty directory to finished videos.

It starts what is missing (local Notion server, Prefect server, a `vidgen serve` worker), creates the
database and one entry per sample channel, then plays the poller and a human reviewer: every gate is
approved by writing Review = Approve on the Notion page, exactly as a person would, so the runs really
suspend and resume. A second `vidgen demo` reuses everything that is already there.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from rich.table import Table

from vidgen.cli.common import console, fail
from vidgen.config import Paths, notion_settings
from vidgen.models import VideoEntry
from vidgen.statuses import ERROR_STATUSES, GATES, NotionStatus as S

GATE_WORDS = {
    S.ASSETS_READY: "the images",
    S.VIDEOS_READY: "the animated clips",
    S.AUDIO_READY: "the narration",
    S.READY_FOR_REVIEW: "the finished video",
}
DONE = {S.UPLOAD_COMPLETE, S.REVIEW_REJECTED, *ERROR_STATUSES}
DEMO_IDLE_POLL_S = 30  # a poll after this long without news, to notice runs that ended badly


def _quiet_prefect_console() -> None:
    """The demo narrates; Prefect's own console lines (still sent to the UI) would drown it out."""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    for logger in [logging.getLogger(), *(logging.getLogger(n) for n in logging.root.manager.loggerDict)]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(logging.WARNING)


def _say(message: str) -> None:
    console.print(f"[dim]{datetime.now():%H:%M:%S}[/] {message}")


def _ensure_notion(paths: Paths) -> None:
    from urllib.parse import urlparse

    from vidgen.cli.notion_cmds import init
    from vidgen.stack import StackError, ensure_local_notion
    from vidgen.config import DEFAULT_LOCAL_NOTION_PORT

    saved = notion_settings(paths)
    if saved is None or saved.is_local:
        port = urlparse(saved.base_url).port if saved and saved.base_url else DEFAULT_LOCAL_NOTION_PORT
        try:
            with console.status("Starting the local Notion server..."):
                base = ensure_local_notion(paths, port=port or DEFAULT_LOCAL_NOTION_PORT)
        except StackError as exc:
            fail(str(exc))
        _say(f"Local Notion server: [cyan]{base}[/]")
    init(parent_page_id=None, token=None, base_url=None)


def _demo_entries(gateway, channels, fresh: bool) -> list[VideoEntry]:
    from vidgen.cli.production_cmds import DEMO_TOPICS

    existing = gateway.list_entries()
    entries: list[VideoEntry] = []
    for channel in channels.values():
        if channel.id not in DEMO_TOPICS or not channel.active:
            continue
        title, topic, direction = DEMO_TOPICS[channel.id]
        found = [e for e in existing if e.title == title and e.channel == channel.notion_value]
        if fresh:
            for old in found:
                gateway.archive(old.page_id)
            found = []
        if not found:
            entry = gateway.create_entry(
                title=title, channel=channel.notion_value, topic=topic, story_direction=direction, status=S.QUEUED
            )
            _say(f"Created Notion entry [bold]{title}[/] for {channel.name} and moved it to Queued")
        else:
            entry = found[0]
            status = entry.notion_status
            if status in {S.DRAFT, S.READY_FOR_PLANNING, S.REVIEW_REJECTED, *ERROR_STATUSES}:
                entry = gateway.update_entry(entry, status=S.QUEUED, error="")
                _say(f"Re-queued the existing entry [bold]{title}[/] (it was {status.value if status else entry.status})")
            else:
                _say(f"Reusing the existing entry [bold]{title}[/] ({entry.status})")
        entries.append(entry)
    if not entries:
        fail("no active sample channel (wild_frontiers, chronicle_vault) is configured in channels/")
    return entries


def _wait_for_worker(timeout_s: float = 90) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            try:
                client.read_deployment_by_name("produce-video/produce-video")
                return
            except ObjectNotFound:
                time.sleep(1)
    fail("the worker (`vidgen serve`) did not register its deployments in time; see .vidgen/logs/serve.log")


def run_demo(paths: Paths, *, timeout_min: float, fresh: bool) -> None:
    from blocks.config import register
    from flows.poll_notion import poll_notion, runs_for_page
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_UI_URL
    from vidgen.cli.notion_cmds import board
    from vidgen.stack import start_worker
    from vidgen.notion.gateway import NotionGateway
    from vidgen.pipeline import configured_channels

    started = time.monotonic()
    _quiet_prefect_console()
    _ensure_notion(paths)
    for line in register():
        _say(f"Prefect: {line}")
    # The demo plays the poller itself, right after each change it makes; the worker's scheduled
    # poll-notion would only add a second poller (hourly keeps the deployment, not the noise).
    worker = start_worker(paths, extra_env={"PREFECT_RUNNER_POLL_FREQUENCY": "2"}, args=["--poll-interval", "3600"])
    try:
        with console.status("Starting the worker (vidgen serve)..."):
            _wait_for_worker()
        _say("Worker is serving the [bold]poll-notion[/] and [bold]produce-video[/] deployments")
        gateway = NotionGateway.from_settings(notion_settings(paths))
        entries = {e.page_id: e for e in _demo_entries(gateway, configured_channels(paths.channels), fresh)}
        seen: dict[str, str] = {}
        deadline = started + timeout_min * 60
        # In production the served poll-notion runs every minute; the demo runs the same poll flow
        # itself, but only when the board has news for it (new entries, a reviewer's decision) or
        # after a quiet spell, so its polls do not compete with the videos for the Prefect server.
        poll_due, last_poll = True, 0.0
        with console.status("Producing...") as spinner:
            while True:
                if poll_due or time.monotonic() - last_poll > DEMO_IDLE_POLL_S:
                    summary = poll_notion()
                    poll_due, last_poll = False, time.monotonic()
                    for title in summary.started:
                        _say(f"Poller started a produce-video run for [bold]{title}[/]")
                    for line in summary.resumed:
                        _say(f"Poller resumed: {line}")
                for page_id in entries:
                    entry = entries[page_id] = gateway.get_entry(page_id)
                    if seen.get(page_id) != entry.status:
                        seen[page_id] = entry.status
                        _say(f"[bold]{entry.title}[/]: {entry.status}" + (f" — {entry.error}" if entry.error else ""))
                    status = entry.notion_status
                    if status in GATE_WORDS and not entry.review and runs_for_page(page_id, [StateType.PAUSED]):
                        gateway.update_entry(entry, review="Approve", review_notes="Looks good (demo reviewer)")
                        poll_due = True
                        _say(f"👤 Reviewer approves {GATE_WORDS[status]} of [bold]{entry.title}[/] in Notion (Review = Approve)")
                # a decision stays on the card until a poll hands it to its run (the run may still be pausing)
                poll_due = poll_due or any(e.review for e in entries.values())
                if all(e.notion_status in DONE for e in entries.values()):
                    break
                if time.monotonic() > deadline:
                    fail(f"the demo did not finish within {timeout_min:g} minutes; see .vidgen/logs/serve.log and the Prefect UI")
                elapsed = time.monotonic() - started
                spinner.update(f"Producing... {elapsed:.0f} s")
                time.sleep(2)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except Exception:
            worker.kill()
    _report(list(entries.values()), paths)
    board()
    took = time.monotonic() - started
    console.print(f"\nDone in [bold]{took / 60:.1f} minutes[/].")
    console.print(f"Prefect UI: [cyan]{PREFECT_UI_URL.value()}[/] (runs, review artifacts, logs)")
    console.print("The Prefect and local Notion servers keep running for you to explore; `uv run vidgen down` stops them.")
    if any(e.notion_status is not S.UPLOAD_COMPLETE for e in entries.values()):
        fail("not every demo video was published; the board above says why")


def _report(entries: list[VideoEntry], paths: Paths) -> None:
    from vidgen.media.ffmpeg import probe

    table = Table(title="Demo videos", title_justify="left")
    for column in ("Title", "Status", "Video", "Length", "Cost"):
        table.add_column(column, overflow="fold")
    for e in entries:
        video = _final_video(e)
        length = f"{probe(video).duration_s:.1f} s" if video else ""
        table.add_row(e.title, e.status, str(video or e.video_url or ""), length, f"${e.cost_usd or 0:.2f}")
    console.print(table)


def _final_video(entry: VideoEntry) -> Path | None:
    if not entry.workspace:
        return None
    videos = sorted((Path(entry.workspace) / "final").glob("*.mp4"))
    return videos[0] if videos else None
