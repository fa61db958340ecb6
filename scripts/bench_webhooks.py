"""How fast a Notion webhook reaches `dispatch`: the receiver's own latency, and entry -> dispatch.

Starts, in this process, the local Notion server (subscribed to the receiver, as `vidgen notion init
--webhook-url` does) and the webhook receiver (`vidgen.webhooks.create_webhook_app`), on temporary
state, with a dispatch that only records when it was called. No Prefect is involved.

The receiver is served as `start_webhook_server` serves it (uvicorn on loopback in a thread), wrapped
to note each request's arrival. Then:

* receiver: N signed events POSTed straight to the receiver; request arrival -> dispatch called
  (measured inside the receiver's process), and the sender's full round trip (request -> answer);
* entry -> dispatch: N entries created Queued through the gateway; API call -> dispatch called for
  that page (the local server's delivery thread, HTTP, verification, dedupe, dispatch).

Goal: the receiver answers well within 200 ms (exit status 1 if its p95 round trip does not).

    uv run python scripts/bench_webhooks.py [--events 50] [--entries 30]
"""

from __future__ import annotations

import argparse
import contextvars
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vidgen.channels import load_channels  # noqa: E402
from vidgen.notion.gateway import NotionGateway  # noqa: E402
from vidgen.notion.ratelimit import TokenBucket  # noqa: E402
from vidgen.notion.server import LocalNotionServer  # noqa: E402
from vidgen.notion.server.webhooks import WebhookSender, subscription_file  # noqa: E402
from vidgen.statuses import NotionStatus  # noqa: E402
from vidgen.loopback import LoopbackServer  # noqa: E402
from vidgen.webhooks import WEBHOOK_PATH, ReceiverConfig, create_webhook_app, sign  # noqa: E402

RECEIVER_BUDGET_MS = 200.0
_arrived: contextvars.ContextVar[float] = contextvars.ContextVar("arrived", default=0.0)


class Timed:
    """ASGI wrapper: notes when each request arrived, for the dispatch it leads to (context is copied
    into the receiver's worker thread)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        _arrived.set(time.perf_counter())
        await self.app(scope, receive, send)


class Recorder:
    """The dispatch under test: records (page, event type) -> perf_counter() and the in-receiver delay."""

    def __init__(self) -> None:
        self.called: dict[str, float] = {}
        self.in_receiver_ms: list[float] = []
        self.done = threading.Condition()

    def __call__(self, page_id: str, event_type: str) -> None:
        now = time.perf_counter()
        with self.done:
            if arrived := _arrived.get():
                self.in_receiver_ms.append((now - arrived) * 1000)
            self.called.setdefault(page_id, now)
            self.done.notify_all()

    def wait_for(self, page_id: str, timeout: float = 10.0) -> float:
        with self.done:
            if not self.done.wait_for(lambda: page_id in self.called, timeout):
                raise TimeoutError(f"no dispatch for {page_id} within {timeout} s")
            return self.called[page_id]


def _figures(label: str, values_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(values_ms)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    print(f"{label:<44} n={len(ordered):<4} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   max {ordered[-1]:7.1f} ms")
    return p50, p95


def _event(page_id: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()), "timestamp": datetime.now(timezone.utc).isoformat(), "type": "page.properties_updated",
        "attempt_number": 1, "api_version": "2025-09-03", "authors": [], "entity": {"id": page_id, "type": "page"},
        "data": {"parent": {"id": "db", "type": "database"}, "updated_properties": ["st"]},
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50, help="signed events sent straight to the receiver (>= 30)")
    parser.add_argument("--entries", type=int, default=30, help="entries created Queued on the local server (>= 30)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vidgen-bench-webhooks-") as tmp:
        home = Path(tmp)
        recorder = Recorder()
        config = ReceiverConfig(token_file=home / "notion-webhook-token", events_db=home / "events.sqlite")
        app = create_webhook_app(recorder, config, announce=lambda _: None)
        receiver = LoopbackServer(Timed(app), name="notion-webhooks", lifespan="off").start()
        receiver_url = f"http://127.0.0.1:{receiver.port}{WEBHOOK_PATH}"
        store = home / "notion.sqlite"
        sender = WebhookSender(subscription_file(store), merge_window_s=1.0)
        try:
            with LocalNotionServer(store, webhooks=sender) as server:
                subscription = sender.subscribe(receiver_url)
                deadline = time.monotonic() + 10
                while not config.token_file.exists():
                    if time.monotonic() > deadline:
                        raise TimeoutError("the verification request never reached the receiver")
                    time.sleep(0.01)

                print(f"receiver {receiver_url}; local Notion {server.base_url}; no Prefect\n")
                round_trips: list[float] = []
                with httpx.Client() as http:
                    for i in range(args.events):
                        raw = json.dumps(_event(f"direct-{i}")).encode()
                        headers = {"X-Notion-Signature": sign(raw, subscription.verification_token)}
                        start = time.perf_counter()
                        answer = http.post(receiver_url, content=raw, headers=headers)
                        round_trips.append((time.perf_counter() - start) * 1000)
                        assert answer.status_code == 200 and answer.json()["outcome"] == "dispatched", answer.text
                _figures("receiver: request arrived -> dispatch called", recorder.in_receiver_ms)
                _, p95_round_trip = _figures("receiver: request sent -> answer received", round_trips)

                channels = load_channels(REPO / "channels")
                channel = next(c for c in channels.values() if c.active)
                gateway = NotionGateway(server.token, base_url=server.base_url, limiter=TokenBucket.unlimited())
                gateway.create_database(parent_page_id=None, title="Video Pipeline", channels=channels)
                entry_ms: list[float] = []
                for i in range(args.entries):
                    start = time.perf_counter()
                    entry = gateway.create_entry(
                        title=f"Bench {i}", channel=channel.notion_value, topic="webhook latency", status=NotionStatus.QUEUED
                    )
                    entry_ms.append((recorder.wait_for(entry.page_id) - start) * 1000)
                gateway.close()
                _figures("entry created -> dispatch called (end to end)", entry_ms)
        finally:
            receiver.stop()
            app.state.receiver.close()
    ok = p95_round_trip <= RECEIVER_BUDGET_MS
    print(f"\nreceiver p95 {p95_round_trip:.1f} ms {'within' if ok else 'OVER'} the {RECEIVER_BUDGET_MS:.0f} ms budget")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
