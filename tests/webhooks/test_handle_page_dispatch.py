"""The receiver's dispatch: each event becomes a handle-page flow run in a worker thread, at once,
one page's events one after another."""

from __future__ import annotations

import threading
import time

import flows.handle_page as handle_page_module


class RecordingFlow:
    def __init__(self):
        self.calls: list[tuple[str, str]] = []
        self.active: dict[str, int] = {}
        self.overlap = False
        self.lock = threading.Lock()

    def with_options(self, flow_run_name: str):
        def run(page_id: str):
            with self.lock:
                self.active[page_id] = self.active.get(page_id, 0) + 1
                self.overlap |= self.active[page_id] > 1
            time.sleep(0.05)
            with self.lock:
                self.active[page_id] -= 1
                self.calls.append((flow_run_name, page_id))
        return run


def test_dispatch_returns_at_once_and_runs_each_event_once_serially_per_page(monkeypatch) -> None:
    recorder = RecordingFlow()
    monkeypatch.setattr(handle_page_module, "handle_page", recorder)
    dispatch = handle_page_module.PageDispatcher(workers=4)
    started = time.monotonic()
    for i in range(3):
        dispatch("page-7", "page.properties_updated")
        dispatch(f"other-{i}", "page.created")
    assert time.monotonic() - started < 0.05  # the receiver is never held
    dispatch.close()
    assert sorted(p for _name, p in recorder.calls) == ["other-0", "other-1", "other-2", "page-7", "page-7", "page-7"]
    assert ("page.created other-1", "other-1") in recorder.calls
    assert not recorder.overlap


def test_the_flow_is_named_for_its_deployment() -> None:
    assert handle_page_module.handle_page.name == handle_page_module.HANDLE_PAGE_DEPLOYMENT.split("/")[0]
