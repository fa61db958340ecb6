"""`vidgen demo`: the whole product on this machine, from an empty directory to finished videos.

It starts what is missing (PostgreSQL, Prefect's server, the local Notion server, a `vidgen serve`
worker that also receives Notion's webhooks), creates the database and one entry per sample channel,
then plays a human reviewer: every gate is approved by writing Review = Approve on the Notion page,
exactly as a person would, after showing the previews the page holds. Entries start and decisions
reach their suspended runs through webhooks, within seconds; a poll runs behind them as the safety
net. A second `vidgen demo` reuses everything that is already there.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

from rich.table import Table

from vidgen.cli.common import console, fail
from vidgen.config import Paths, notion_settings
from vidgen.models import VideoEntry
from vidgen.statuses import ERROR_STATUSES, NotionStatus as S

GATE_WORDS = {
    S.ASSETS_READY: "the images",
    S.VIDEOS_READY: "the animated clips",
    S.AUDIO_READY: "the narration",
    S.READY_FOR_REVIEW: "the finished video",
}
DONE = {S.UPLOAD_COMPLETE, S.REVIEW_REJECTED, *ERROR_STATUSES}
DEMO_IDLE_POLL_S = 30  # the safety-net poll: runs that ended badly, events that never arrived
UNHANDLED_REVIEW_S = 15  # a decision still on the card this long after it was made: the poll hands it over
WEBHOOK_PORT = int(os.environ.get("VIDGEN_WEBHOOK_PORT", "8766"))


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
    """The Notion `vidgen notion init` will set up; a local one is started first, on its URL's port."""
    from urllib.parse import urlparse

    from vidgen.cli.notion_cmds import init
    from vidgen.config import DEFAULT_LOCAL_NOTION_PORT, notion_target
    from vidgen.stack import StackError, ensure_local_notion

    try:
        target = notion_target(paths)
    except ValueError as exc:
        fail(str(exc))
    if target.is_local:
        port = (urlparse(target.base_url).port if target.base_url else None) or DEFAULT_LOCAL_NOTION_PORT
        try:
            with console.status("Starting the local Notion server..."):
                base = ensure_local_notion(paths, port=port)
        except StackError as exc:
            fail(str(exc))
        _say(f"Local Notion server: [cyan]{base}[/]")
    init(parent_page_id=None, token=None, base_url=None, webhook_url=None)


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
    from vidgen.cli.notion_cmds import subscribe_local_webhooks
    from vidgen.pipeline import configured_channels

    started = time.monotonic()
    _quiet_prefect_console()
    _ensure_notion(paths)
    for line in register():
        _say(f"Prefect: {line}")
    # Entries and decisions reach Prefect through Notion's webhooks (the local server sends them like
    # Notion does; the worker receives them); the demo polls only as the safety net behind them.
    worker = start_worker(
        paths, extra_env={"PREFECT_RUNNER_POLL_FREQUENCY": "2"},
        args=["--poll-interval", "3600", "--webhook-port", str(WEBHOOK_PORT)],
    )
    try:
        with console.status("Starting the worker (vidgen serve)..."):
            _wait_for_worker()
        settings = notion_settings(paths)
        hook_url = f"http://127.0.0.1:{WEBHOOK_PORT}/webhooks/notion"
        subscribe_local_webhooks(settings, hook_url, paths)
        _say(f"Worker is serving [bold]poll-notion[/], [bold]produce-video[/] and [bold]handle-page[/]; "
             f"the local Notion server sends its webhooks to {hook_url}")
        gateway = NotionGateway.from_settings(settings)
        entries = {e.page_id: e for e in _demo_entries(gateway, configured_channels(paths.channels), fresh)}
        queued_at = {page_id: time.monotonic() for page_id, e in entries.items() if e.notion_status is S.QUEUED}
        seen: dict[str, str] = {}
        shown_blocks: dict[str, int] = {}
        decided_at: dict[str, float] = {}
        started_by_poll: list[str] = []
        deadline = started + timeout_min * 60
        last_poll = time.monotonic()
        with console.status("Producing...") as spinner:
            while True:
                stale_review = any(time.monotonic() - t > UNHANDLED_REVIEW_S for t in decided_at.values())
                if stale_review or time.monotonic() - last_poll > DEMO_IDLE_POLL_S:
                    summary = poll_notion()
                    last_poll = time.monotonic()
                    decided_at.clear()
                    started_by_poll.extend(summary.started)
                    for title in summary.started:
                        _say(f"Poll (safety net) started a produce-video run for [bold]{title}[/]")
                    for line in summary.resumed:
                        _say(f"Poll (safety net) resumed: {line}")
                for page_id in entries:
                    entry = entries[page_id] = gateway.get_entry(page_id)
                    if page_id in queued_at and entry.notion_status not in (S.QUEUED, None):
                        how = "by the poll" if any(entry.title in line for line in started_by_poll) else "via webhook"
                        _say(f"[bold]{entry.title}[/] was picked up {time.monotonic() - queued_at.pop(page_id):.1f} s after it was queued ({how})")
                    if seen.get(page_id) != entry.status:
                        seen[page_id] = entry.status
                        _say(f"[bold]{entry.title}[/]: {entry.status}" + (f" — {entry.error}" if entry.error else ""))
                    if not entry.review:
                        decided_at.pop(page_id, None)
                    status = entry.notion_status
                    if status in GATE_WORDS and not entry.review and runs_for_page(page_id, [StateType.PAUSED]):
                        _show_previews(gateway, entry, shown_blocks)
                        gateway.update_entry(entry, review="Approve", review_notes="Looks good (demo reviewer)")
                        decided_at[page_id] = time.monotonic()
                        _say(f"👤 Reviewer approves {GATE_WORDS[status]} of [bold]{entry.title}[/] in Notion (Review = Approve)")
                if all(e.notion_status in DONE for e in entries.values()):
                    break
                if time.monotonic() > deadline:
                    fail(f"the demo did not finish within {timeout_min:g} minutes; see .vidgen/logs/serve.log and the Prefect UI")
                elapsed = time.monotonic() - started
                spinner.update(f"Producing... {elapsed:.0f} s")
                time.sleep(1)
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


def _show_previews(gateway, entry: VideoEntry, shown: dict[str, int]) -> None:
    """What the reviewer sees on the page: the gate's previews, as they were added to the page body."""
    from vidgen.previews import describe_page_blocks

    lines = describe_page_blocks(gateway, entry.page_id)
    new = lines[shown.get(entry.page_id, 0):]
    shown[entry.page_id] = len(lines)
    if new:
        _say(f"On the Notion page of [bold]{entry.title}[/] the reviewer sees:")
        for line in new:
            console.print(f"      {line}", highlight=False, markup=False)


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
