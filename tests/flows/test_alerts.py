"""Alerts on a real Prefect server: setup creates each automation once, and a failed video run's
alerts reach a webhook receiver on 127.0.0.1 within a bounded time (the seed promises 5 minutes)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ALERT_WAIT_S = 60


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append(json.loads(self.rfile.read(length) or b"{}"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A webhook receiver on 127.0.0.1: (its URL, the JSON bodies it got)."""
    received: list[dict] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()


def _wait_for(received: list[dict], text: str) -> dict:
    deadline = time.monotonic() + ALERT_WAIT_S
    while time.monotonic() < deadline:
        for body in list(received):
            if text in body.get("subject", ""):
                return body
        time.sleep(0.5)
    raise AssertionError(f"no alert with {text!r} within {ALERT_WAIT_S} s; received: {received}")


def test_setup_twice_makes_each_automation_once_and_a_failed_run_is_reported(prefect_api, webhook):
    from prefect import flow
    from prefect.client.orchestration import get_client

    from blocks import automations

    url, received = webhook
    first = automations.register_automations(url)
    second = automations.register_automations(url)
    names = [automations.ZOMBIE_AUTOMATION, automations.RUN_FAILED_AUTOMATION, automations.CARD_ERROR_AUTOMATION,
             automations.GATE_WAITING_AUTOMATION, automations.COST_AUTOMATION]
    with get_client(sync_client=True) as client:
        for name in names:
            assert len(client.read_automations_by_name(name)) == 1, (name, first, second)
    assert all(line.endswith("created") for line in first if line.startswith("automation")), first
    assert all(not line.endswith("created") for line in second if line.startswith("automation")), second

    @flow(name="produce-video", flow_run_name="history: The Fall of Rome")
    def produce_video(page_id: str, channel_id: str) -> None:
        automations.emit_card_error(page_id=page_id, title="The Fall of Rome", channel_id=channel_id, step="clips",
                                    status="Error: API Failure", reason="kling: HTTP 401: key rejected",
                                    card_url="http://127.0.0.1:9/card")
        raise RuntimeError("kling: HTTP 401: key rejected")

    started = time.monotonic()
    state = produce_video(page_id="2b1c-77aa", channel_id="history", return_state=True)
    assert state.is_failed()

    run_alert = _wait_for(received, "Video run failed: history: The Fall of Rome")
    card_alert = _wait_for(received, "Card at Error: API Failure")
    elapsed = time.monotonic() - started
    assert "Channel: history" in run_alert["text"] and "kling: HTTP 401" in run_alert["text"]
    assert "Card: https://www.notion.so/2b1c77aa" in run_alert["text"]
    assert str(state.state_details.flow_run_id) in card_alert["text"], card_alert  # the run link
    assert "Step: clips" in card_alert["text"] and "Card: http://127.0.0.1:9/card" in card_alert["text"]
    print(f"alerts arrived {elapsed:.1f} s after the run started")
