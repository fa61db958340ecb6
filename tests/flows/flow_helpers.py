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
