"""Small waits and board moves the integration tests share (what a reviewer or clock would do)."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from notion_client import Client

from flows.poll_notion import PAUSING_GRACE_S, ready_for_input, repair_input_form, seconds_paused
from vidgen.config import notion_settings
from vidgen.models import VideoEntry
from vidgen.notion.gateway import NotionGateway
from vidgen.statuses import NotionStatus


def gateway() -> NotionGateway:
    return NotionGateway.from_settings(notion_settings())


def force_status(page_id: str, status: str) -> None:
    """Move a card by hand, as a person dragging it on the board would (no transition rules)."""
    s = notion_settings()
    Client(auth=s.token, base_url=s.base_url).pages.update(
        page_id, properties={"Status": {"select": {"name": status}}}
    )


def approve_in_notion(page_id: str, notes: str = "looks good") -> VideoEntry:
    gw = gateway()
    return gw.update_entry(gw.get_entry(page_id), review="Approve", review_notes=notes)


def run_for(page_id: str):
    from flows.poll_notion import runs_for_page
    from prefect.client.schemas.objects import StateType

    runs = runs_for_page(page_id, list(StateType))
    assert runs, f"no flow run for page {page_id}"
    return max(runs, key=lambda r: r.created)


def _fail_fast(stack, page_id: str) -> None:
    entry = gateway().get_entry(page_id)
    status = entry.notion_status
    if status is not None and status.value.startswith("Error"):
        log = stack.worker_log.read_text(errors="replace")[-4000:] if stack.worker_log else ""
        raise AssertionError(f"{entry.title} failed: {entry.status}: {entry.error}\n{log}")


def wait_paused_at(page_id: str, status: NotionStatus, stack, *, round_key: str | None = None, timeout_s: float = 240):
    """Until the page shows `status` and its run is suspended (at `round_key`, when given)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _fail_fast(stack, page_id)
        entry = gateway().get_entry(page_id)
        run = run_for(page_id)
        if entry.notion_status is status and run.state.is_paused():
            if round_key is None or run.state.state_details.pause_key == round_key:
                if ready_for_input(run):
                    return run
                if seconds_paused(run) > PAUSING_GRACE_S:  # the run's own form save gave up (SQLite 503s)
                    repair_input_form(run)  # what the poller does for it
                    return run
        time.sleep(1)
    log = stack.worker_log.read_text(errors="replace")[-4000:] if stack.worker_log else ""
    raise AssertionError(f"page never paused at {status.value} ({round_key}); it is {entry.status}, run {run.state_name}\n{log}")


def wait_status(page_id: str, status: NotionStatus, stack, *, timeout_s: float = 180) -> VideoEntry:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _fail_fast(stack, page_id)
        entry = gateway().get_entry(page_id)
        if entry.notion_status is status:
            return entry
        time.sleep(1)
    raise AssertionError(f"page never reached {status.value}; it is {entry.status}")


def wait_run_state(page_id: str, state_type: str, *, timeout_s: float = 90):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = run_for(page_id)
        if run.state.type.value == state_type:
            return run
        time.sleep(1)
    raise AssertionError(f"run for {page_id} never reached {state_type}; it is {run.state_name}")


def set_gate_timeout(channels_dir: Path, gate: str, *, hours: float) -> None:
    for path in channels_dir.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        data["review"][gate]["timeout_hours"] = hours
        path.write_text(yaml.safe_dump(data, sort_keys=False))


def task_runs(flow_run_id, name_prefix: str) -> list:
    """The task runs of a flow run whose names start with `name_prefix`, with their states and cache keys."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200)
    return [r for r in runs if r.name.startswith(name_prefix)]


def preview_rounds(page_id: str) -> dict[str, list[tuple[int | None, str]]]:
    """The page's preview rounds, read with notion-client: heading -> [(scene number, media kind)],
    every media file downloaded from its URL on the way (it must be there, and not empty)."""
    import httpx

    s = notion_settings()
    client = Client(auth=s.token, base_url=s.base_url)
    rounds: dict[str, list[tuple[int | None, str]]] = {}
    for block in client.blocks.children.list(page_id)["results"]:
        if block["type"] != "heading_2":
            continue
        heading = "".join(t["plain_text"] for t in block["heading_2"]["rich_text"])
        assert block["heading_2"]["is_toggleable"] and block["has_children"], heading  # every round folds
        scene, shown = None, []
        for child in client.blocks.children.list(block["id"])["results"]:
            kind = child["type"]
            if kind == "paragraph":
                words = "".join(t["plain_text"] for t in child["paragraph"]["rich_text"]).split()
                scene = int(words[1]) if words[:1] == ["Scene"] else None
            elif kind in ("image", "video", "audio"):
                url = child[kind]["file"]["url"]
                assert len(httpx.get(url, timeout=10).content) > 0, url
                shown.append((scene, kind))
        rounds[heading] = shown
    return rounds
