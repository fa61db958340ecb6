"""The receiver's dispatch: each event becomes a handle-page flow run in a worker thread, at once,
one page's events one after another and coalesced, with a bounded number of pages waiting."""

from __future__ import annotations

import threading
import time

import pytest

import flows.handle_page as handle_page_module


class RecordingFlow:
    def __init__(self):
        self.calls: list[tuple[str, str]] = []
        self.started: dict[str, list[float]] = {}
        self.release = threading.Event()
        self.release.set()
        self.active: dict[str, int] = {}
        self.overlap = False
        self.lock = threading.Lock()

    def with_options(self, flow_run_name: str):
        def run(page_id: str):
            self.release.wait(10)
            with self.lock:
                self.started.setdefault(page_id, []).append(time.monotonic())
                self.active[page_id] = self.active.get(page_id, 0) + 1
                self.overlap |= self.active[page_id] > 1
            time.sleep(0.05)
            with self.lock:
                self.active[page_id] -= 1
                self.calls.append((flow_run_name, page_id))
        return run


def test_dispatch_returns_at_once_and_handles_every_page_after_its_last_event_serially(monkeypatch) -> None:
    recorder = RecordingFlow()
    monkeypatch.setattr(handle_page_module, "handle_page", recorder)
    dispatch = handle_page_module.PageDispatcher(workers=4)
    started = time.monotonic()
    for i in range(3):
        dispatch("page-7", "page.properties_updated")
        dispatch(f"other-{i}", "page.created")
    last_event = time.monotonic()
    assert last_event - started < 0.05  # the receiver is never held
    dispatch.close()
    pages = sorted(p for _name, p in recorder.calls)
    assert [p for p in pages if p.startswith("other")] == ["other-0", "other-1", "other-2"]
    assert 1 <= pages.count("page-7") <= 3  # events for a page that already waits are one run
    assert max(recorder.started["page-7"]) >= last_event - 0.001  # a run began after the last event
    assert ("page.created other-1", "other-1") in recorder.calls
    assert not recorder.overlap


def test_events_for_waiting_pages_coalesce_and_the_queue_is_bounded(monkeypatch) -> None:
    recorder = RecordingFlow()
    recorder.release.clear()  # the worker holds its first page until told
    monkeypatch.setattr(handle_page_module, "handle_page", recorder)
    dispatch = handle_page_module.PageDispatcher(workers=1, max_pending=3)
    dispatch("busy", "page.created")
    deadline = time.monotonic() + 10
    while dispatch.waiting() and time.monotonic() < deadline:  # the worker took "busy"
        time.sleep(0.005)
    for _ in range(1000):  # a flood for pages already waiting takes no more room
        for page in ("a", "b", "busy"):
            dispatch(page, "page.properties_updated")
    assert dispatch.waiting() == 3
    with pytest.raises(handle_page_module.DispatchQueueFull):
        dispatch("c", "page.created")
    recorder.release.set()
    dispatch.close()
    assert sorted(p for _name, p in recorder.calls) == ["a", "b", "busy", "busy"]  # busy: once more, after its events


def test_the_flow_is_named_for_its_deployment() -> None:
    assert handle_page_module.handle_page.name == handle_page_module.HANDLE_PAGE_DEPLOYMENT.split("/")[0]
