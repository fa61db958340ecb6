"""The local Notion server's webhooks: it tells a subscribed URL about page changes the way Notion does.

- Subscribing (`WebhookSender.subscribe(url)`, the server's `POST /v1/vidgen/webhook_subscription`,
  `vidgen notion init --webhook-url`, or VIDGEN_NOTION_WEBHOOK_URL for `vidgen notion serve`) makes a
  verification token and POSTs `{"verification_token": ...}`, unsigned.
- Then every page create / properties update / trash / restore becomes an event with Notion's fields,
  signed `X-Notion-Signature: sha256=HMAC(token, body)`.
- `page.properties_updated` of one page inside `merge_window_s` of the first is merged into one event
  with the union of `updated_properties`; the first is sent at once (Notion's window is about a minute).
- A non-2xx answer (or no answer) is retried with exponential backoff, `attempt_number` counting up
  to 8, with the same event id.

Delivery happens in one background thread; the API call that caused an event never waits for it.
The subscription (with its token, a secret) is kept in a 0600 JSON file next to the store.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from vidgen.notion.server.errors import validation_error
from vidgen.notion.server.ids import BOT_USER_ID, WORKSPACE_NAME
from vidgen.notion.server.store import PageRecord
from vidgen.webhooks.events import MAX_ATTEMPTS, PAGE_CREATED, PAGE_DELETED, PAGE_PROPERTIES_UPDATED, PAGE_UNDELETED
from vidgen.webhooks.signature import SIGNATURE_HEADER, sign

WEBHOOK_URL_ENV = "VIDGEN_NOTION_WEBHOOK_URL"
WORKSPACE_ID = "8c1d4a6e-2f3b-4d5c-9e7f-0a1b2c3d4e5f"  # the local server's one workspace
INTEGRATION_ID = "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"
WEBHOOK_API_VERSION = "2025-09-03"
log = logging.getLogger(__name__)


class WebhookSubscription(BaseModel):
    id: str
    url: str
    verification_token: str
    created_time: str


def subscription_file(store_path: Path) -> Path:
    """Where a store's subscription is kept: next to it, e.g. notion-local.webhook.json."""
    return Path(store_path).with_suffix(".webhook.json")


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    body: dict[str, Any] = field(compare=False)
    signed: bool = field(compare=False, default=True)  # False only for the verification request
    attempt: int = field(compare=False, default=1)
    sealed: bool = field(compare=False, default=False)  # taken for sending: no more merging into it


@dataclass
class _MergeWindow:
    until: float
    pending: _Delivery | None = None


def _iso_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_parent(page: PageRecord) -> dict[str, Any]:
    """A page's parent as webhook events show it (with the data source for database pages)."""
    if page.data_source_id:
        return {"id": page.database_id, "type": "database", "data_source_id": page.data_source_id}
    if page.parent.get("type") == "page_id":
        return {"id": page.parent["page_id"], "type": "page"}
    return {"id": WORKSPACE_ID, "type": "space"}


class WebhookSender:
    """The subscription and its delivery thread; `page_event` is what the service calls after a write."""

    def __init__(
        self,
        subscription_path: Path,
        *,
        merge_window_s: float = 1.0,
        retry_base_s: float = 0.5,
        retry_max_s: float = 60.0,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.path = Path(subscription_path)
        self.merge_window_s = merge_window_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.timeout_s = timeout_s
        self._transport = transport
        self._lock = threading.Condition()
        self._queue: list[_Delivery] = []
        self._seq = itertools.count()
        self._windows: dict[str, _MergeWindow] = {}
        self._closed = False
        self._thread: threading.Thread | None = None
        self._subscription = self._load()

    # -- subscription -------------------------------------------------------------------------------
    def _load(self) -> WebhookSubscription | None:
        try:
            return WebhookSubscription.model_validate_json(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            log.warning("ignoring an unreadable webhook subscription file %s", self.path)
            return None

    @property
    def subscription(self) -> WebhookSubscription | None:
        return self._subscription

    def subscribe(self, url: str) -> WebhookSubscription:
        """Subscribe `url` (replacing another URL's subscription) and send it the verification request.

        The same URL again keeps its token and only re-sends the verification, so running
        `vidgen notion init --webhook-url` twice never makes the receiver refuse a second token.
        """
        with self._lock:
            current = self._subscription
            if current is None or current.url != url:
                current = WebhookSubscription(
                    id=str(uuid.uuid4()), url=url, verification_token="secret_" + secrets.token_urlsafe(32),
                    created_time=_iso_now(),
                )  # fmt: skip
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(current.model_dump_json())
                os.replace(tmp, self.path)
                self._subscription = current
                self._windows.clear()
            self._enqueue({"verification_token": current.verification_token}, signed=False)
        return current

    def unsubscribe(self) -> None:
        with self._lock:
            self._subscription = None
            self._queue.clear()
            self._windows.clear()
            self.path.unlink(missing_ok=True)

    # -- events -------------------------------------------------------------------------------------
    def page_created(self, page: PageRecord) -> None:
        self.page_event(PAGE_CREATED, page)

    def page_event(self, event_type: str, page: PageRecord, updated_properties: list[str] | None = None) -> None:
        """Queue an event about `page` (after its write committed); returns at once."""
        with self._lock:
            if self._subscription is None:
                return
            now = time.monotonic()
            data: dict[str, Any] = {"parent": event_parent(page)}
            if event_type != PAGE_PROPERTIES_UPDATED:
                self._enqueue(self._event(event_type, page.id, data))
                return
            window = self._windows.get(page.id)
            if window is None or now >= window.until:
                self._windows[page.id] = _MergeWindow(until=now + self.merge_window_s)
                self._enqueue(self._event(event_type, page.id, {**data, "updated_properties": sorted(set(updated_properties or []))}))
            elif window.pending is not None and not window.pending.sealed:
                merged = window.pending.body["data"]
                merged["updated_properties"] = sorted(set(merged["updated_properties"]) | set(updated_properties or []))
                window.pending.body["timestamp"] = _iso_now()
            else:
                body = self._event(event_type, page.id, {**data, "updated_properties": sorted(set(updated_properties or []))})
                window.pending = self._enqueue(body, due=window.until)
            self._prune_windows(now)

    def page_updated(self, before: PageRecord, after: PageRecord) -> None:
        """The events one page update makes: trashed / restored, and which property values changed."""
        if after.in_trash != before.in_trash:
            self.page_event(PAGE_DELETED if after.in_trash else PAGE_UNDELETED, after)
        changed = [pid for pid in after.values.keys() | before.values.keys() if after.values.get(pid) != before.values.get(pid)]
        if changed:
            self.page_event(PAGE_PROPERTIES_UPDATED, after, changed)

    def _prune_windows(self, now: float) -> None:
        if len(self._windows) > 1024:
            self._windows = {k: w for k, w in self._windows.items() if w.until > now or (w.pending and not w.pending.sealed)}

    def _event(self, event_type: str, page_id: str, data: dict[str, Any]) -> dict[str, Any]:
        assert self._subscription is not None
        return {
            "id": str(uuid.uuid4()),
            "timestamp": _iso_now(),
            "workspace_id": WORKSPACE_ID,
            "workspace_name": WORKSPACE_NAME,
            "subscription_id": self._subscription.id,
            "integration_id": INTEGRATION_ID,
            "type": event_type,
            "authors": [{"id": BOT_USER_ID, "type": "bot"}],
            "accessible_by": [{"id": BOT_USER_ID, "type": "bot"}],
            "attempt_number": 1,
            "api_version": WEBHOOK_API_VERSION,
            "entity": {"id": page_id, "type": "page"},
            "data": data,
        }

    # -- delivery -----------------------------------------------------------------------------------
    def _enqueue(self, body: dict[str, Any], *, signed: bool = True, due: float | None = None) -> _Delivery:
        """Under the lock: schedule a delivery and wake the thread (started on first use)."""
        delivery = _Delivery(due=due if due is not None else time.monotonic(), seq=next(self._seq), body=body, signed=signed)
        heapq.heappush(self._queue, delivery)
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="local-notion-webhooks", daemon=True)
            self._thread.start()
        self._lock.notify()
        return delivery

    def _next(self) -> tuple[_Delivery, WebhookSubscription] | None:
        with self._lock:
            while not self._closed:
                if self._queue and self._subscription is not None:
                    wait = self._queue[0].due - time.monotonic()
                    if wait <= 0:
                        delivery = heapq.heappop(self._queue)
                        delivery.sealed = True
                        return delivery, self._subscription
                    self._lock.wait(wait)
                else:
                    self._lock.wait()
        return None

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s, transport=self._transport) as http:
            while (taken := self._next()) is not None:
                self._send(http, *taken)

    def _send(self, http: httpx.Client, delivery: _Delivery, subscription: WebhookSubscription) -> None:
        raw = json.dumps(delivery.body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "notion-api (vidgen local)"}
        if delivery.signed:
            headers[SIGNATURE_HEADER] = sign(raw, subscription.verification_token)
        try:
            status = http.post(subscription.url, content=raw, headers=headers).status_code
        except httpx.HTTPError as exc:
            status, detail = 0, f"{type(exc).__name__}: {exc}"
        else:
            detail = f"HTTP {status}"
        if 200 <= status < 300:
            return
        attempt = delivery.attempt
        what = delivery.body.get("type", "verification request")
        if attempt >= MAX_ATTEMPTS:
            log.warning("webhook %s %s to %s gave up after %d attempts (%s)", what, delivery.body.get("id", ""), subscription.url, attempt, detail)
            return
        delay = min(self.retry_max_s, self.retry_base_s * 2 ** (attempt - 1))
        log.info("webhook %s to %s failed (%s); attempt %d in %.1f s", what, subscription.url, detail, attempt + 1, delay)
        with self._lock:
            if self._subscription is None or self._subscription.id != subscription.id:
                return  # unsubscribed meanwhile
            body = {**delivery.body, "attempt_number": attempt + 1} if delivery.signed else delivery.body
            retry = self._enqueue(body, signed=delivery.signed, due=time.monotonic() + delay)
            retry.attempt = attempt + 1

    def close(self) -> None:
        """Stop the delivery thread (when the server stops). Undelivered events stay queued and go
        out when the next event restarts the thread, as Notion keeps retrying an endpoint that is down."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._closed = True
            self._lock.notify_all()
        if thread is not None:
            thread.join(timeout=10)
        with self._lock:
            self._closed = False


def add_subscription_routes(app: FastAPI, sender: WebhookSender) -> None:
    """`POST /v1/vidgen/webhook_subscription {"url": ...}` subscribes (and sends the verification
    request); `DELETE` unsubscribes. Not part of Notion's API: Notion subscribes in its web UI."""

    @app.post("/v1/vidgen/webhook_subscription")
    async def subscribe(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise validation_error("body failed validation: body.url should be an http(s) URL.")
        subscription = sender.subscribe(url)
        # The caller holds the integration's token, so it may learn the subscription's: it is what
        # `vidgen notion init --webhook-url` accepts as the receiver's key (real Notion shows it in its UI).
        return JSONResponse({"object": "webhook_subscription", "id": subscription.id, "url": subscription.url,
                             "verification_sent": True,
                             "verification_token": subscription.verification_token})  # fmt: skip

    @app.delete("/v1/vidgen/webhook_subscription")
    async def unsubscribe() -> JSONResponse:
        sender.unsubscribe()
        return JSONResponse({"object": "webhook_subscription", "deleted": True})


def request_subscription(base_url: str, token: str, url: str, *, http: httpx.Client | None = None) -> dict[str, Any]:
    """Ask a running local server to subscribe `url` (what `vidgen notion init --webhook-url` does).

    Raises httpx.HTTPError when the server cannot be reached or refuses.
    """
    client = http or httpx.Client(timeout=10)
    try:
        answer = client.post(
            f"{base_url.rstrip('/')}/v1/vidgen/webhook_subscription",
            json={"url": url},
            headers={"Authorization": f"Bearer {token}", "Notion-Version": WEBHOOK_API_VERSION},
        )
        answer.raise_for_status()
        return dict(answer.json())
    finally:
        if http is None:
            client.close()
