"""The local Notion server sends webhooks like Notion: verification, signed events with the documented
fields, merged property updates, retries with rising attempt_number, all to a receiver on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from notion_client import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vidgen.loopback import LoopbackServer
from vidgen.notion.server import LocalNotionServer
from vidgen.notion.server.webhooks import WebhookSender, subscription_file
from vidgen.webhooks import ReceiverConfig, create_webhook_app, verify_signature
from vidgen.webhooks.store import CandidateTokens, VerificationTokenStore, accept_token


class Inbox:
    """A loopback endpoint that records every request; it answers 500 to the first `fail_events`
    event deliveries and the first `fail_verifications` verification requests."""

    def __init__(self, fail_events: int = 0, fail_verifications: int = 0) -> None:
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        self.failures = {True: fail_events, False: fail_verifications}
        self._lock = threading.Lock()

        async def receive(request: Request) -> Response:
            raw = await request.body()
            with self._lock:
                self.requests.append((raw, dict(request.headers)))
                is_event = "type" in json.loads(raw)
                failing = self.failures[is_event] > 0
                self.failures[is_event] -= 1
            return Response(status_code=500 if failing else 200)

        self.server = LoopbackServer(Starlette(routes=[Route("/hook", receive, methods=["POST"])]), lifespan="off")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/hook"

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(raw) for raw, _ in self.requests]

    def events(self) -> list[dict[str, Any]]:
        return [b for b in self.bodies() if "type" in b]


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    made = Inbox()
    made.server.start()
    yield made
    made.server.stop()


def _server(tmp_path: Path, **sender: Any) -> LocalNotionServer:
    store = tmp_path / "store.sqlite"
    return LocalNotionServer(store, webhooks=WebhookSender(subscription_file(store), **sender))


def _table(server: LocalNotionServer, videos: Any) -> tuple[Client, str, str]:
    client = Client(auth=server.token, base_url=server.base_url)
    database_id, data_source_id = videos.create(client)
    return client, database_id, data_source_id


def test_verification_then_signed_events_with_the_documented_fields(tmp_path: Path, inbox: Inbox, videos: Any) -> None:
    with _server(tmp_path, merge_window_s=0.2) as server:
        client, database_id, data_source_id = _table(server, videos)
        subscribed = server.webhooks.subscribe(inbox.url)
        wait_for(lambda: len(inbox.requests) == 1)
        raw, headers = inbox.requests[0]
        assert json.loads(raw) == {"verification_token": subscribed.verification_token}
        assert "x-notion-signature" not in headers
        token = subscribed.verification_token
        assert token.startswith("secret_")

        page = client.pages.create(parent={"data_source_id": data_source_id}, properties=videos.props("One", status="Draft"))
        client.pages.update(page["id"], properties=videos.props("One", status="Queued"))
        client.pages.update(page["id"], in_trash=True)
        client.pages.update(page["id"], in_trash=False)
        wait_for(lambda: len(inbox.events()) == 4)
        status_id = client.data_sources.retrieve(data_source_id)["properties"]["Status"]["id"]

    for raw, headers in inbox.requests[1:]:
        assert verify_signature(raw, headers["x-notion-signature"], token)
    events = inbox.events()
    assert [e["type"] for e in events] == ["page.created", "page.properties_updated", "page.deleted", "page.undeleted"]
    for e in events:
        assert set(e) >= {"id", "timestamp", "workspace_id", "subscription_id", "integration_id", "type", "authors",
                          "attempt_number", "api_version", "entity", "data"}  # fmt: skip
        assert e["entity"] == {"id": page["id"], "type": "page"}
        assert e["data"]["parent"] == {"id": database_id, "type": "database", "data_source_id": data_source_id}
        assert e["attempt_number"] == 1 and e["subscription_id"] == subscribed.id
    assert len({e["id"] for e in events}) == 4
    assert events[1]["data"]["updated_properties"] == [status_id]


def test_property_updates_inside_the_window_are_merged(tmp_path: Path, inbox: Inbox, videos: Any) -> None:
    """The window is 2 s: with 0.5 s, four updates sent under load (load average 6, a chaos run beside
    the suite) outlasted it, and the third event went before the check."""
    with _server(tmp_path, merge_window_s=2.0) as server:
        client, _, data_source_id = _table(server, videos)
        server.webhooks.subscribe(inbox.url)
        page = client.pages.create(parent={"data_source_id": data_source_id}, properties=videos.props("Two"))
        client.pages.update(page["id"], properties={"Topic": {"rich_text": videos.text("a")}})  # sent at once
        wait_for(lambda: len(inbox.events()) == 2)
        client.pages.update(page["id"], properties={"Cost": {"number": 1.5}})
        client.pages.update(page["id"], properties={"Done": {"checkbox": True}})
        client.pages.update(page["id"], properties={"Cost": {"number": 2.5}})
        client.pages.update(page["id"], properties={"Cost": {"number": 2.5}})  # no change: no property
        time.sleep(0.2)
        assert len(inbox.events()) == 2  # the rest waits for the window to close
        wait_for(lambda: len(inbox.events()) == 3)
        time.sleep(0.6)
        schema = client.data_sources.retrieve(data_source_id)["properties"]

    updates = [e for e in inbox.events() if e["type"] == "page.properties_updated"]
    assert len(updates) == 2
    assert updates[0]["data"]["updated_properties"] == [schema["Topic"]["id"]]
    assert sorted(updates[1]["data"]["updated_properties"]) == sorted([schema["Cost"]["id"], schema["Done"]["id"]])


def test_non_2xx_is_retried_with_rising_attempt_number(tmp_path: Path, videos: Any) -> None:
    inbox = Inbox(fail_events=2, fail_verifications=1)
    inbox.server.start()
    try:
        with _server(tmp_path, retry_base_s=0.01) as server:
            client, _, data_source_id = _table(server, videos)
            subscribed = server.webhooks.subscribe(inbox.url)
            wait_for(lambda: len(inbox.requests) == 2)  # verification answered 500, then retried
            client.pages.create(parent={"data_source_id": data_source_id}, properties=videos.props("Three"))
            wait_for(lambda: len(inbox.events()) == 3)
    finally:
        inbox.server.stop()
    verifications = [b for b in inbox.bodies() if "type" not in b]
    assert verifications == [{"verification_token": subscribed.verification_token}] * 2
    events = inbox.events()
    assert [e["attempt_number"] for e in events] == [1, 2, 3]
    assert len({e["id"] for e in events}) == 1
    for raw, headers in inbox.requests:
        if b'"type"' in raw:
            assert verify_signature(raw, headers["x-notion-signature"], subscribed.verification_token)


def test_gives_up_after_eight_attempts(tmp_path: Path, videos: Any) -> None:
    inbox = Inbox(fail_events=10**6)
    inbox.server.start()
    try:
        with _server(tmp_path, retry_base_s=0.005, retry_max_s=0.02) as server:
            client, _, data_source_id = _table(server, videos)
            server.webhooks.subscribe(inbox.url)
            client.pages.create(parent={"data_source_id": data_source_id}, properties=videos.props("Four"))
            wait_for(lambda: len(inbox.events()) == 8)
            time.sleep(0.2)
    finally:
        inbox.server.stop()
    assert [e["attempt_number"] for e in inbox.events()] == list(range(1, 9))


def test_subscribing_over_http_and_the_subscription_survives_a_restart(tmp_path: Path, inbox: Inbox, videos: Any) -> None:
    import httpx

    store = tmp_path / "store.sqlite"
    with LocalNotionServer(store) as server:
        answer = httpx.post(
            f"{server.base_url}/v1/vidgen/webhook_subscription",
            json={"url": inbox.url},
            headers={"Authorization": f"Bearer {server.token}", "Notion-Version": "2025-09-03"},
        )
        assert answer.status_code == 200 and answer.json()["url"] == inbox.url
        refused = httpx.post(
            f"{server.base_url}/v1/vidgen/webhook_subscription", json={"url": inbox.url}, headers={"Notion-Version": "2025-09-03"}
        )
        assert refused.status_code == 401
        wait_for(lambda: len(inbox.requests) == 1)
    assert oct(subscription_file(store).stat().st_mode & 0o777) == "0o600"
    with LocalNotionServer(store) as server:  # no new verification: the same subscription goes on
        client, _, data_source_id = _table(server, videos)
        client.pages.create(parent={"data_source_id": data_source_id}, properties=videos.props("Five"))
        wait_for(lambda: len(inbox.events()) == 1)
    assert len(inbox.requests) == 2


def test_the_vidgen_receiver_verifies_and_dispatches_the_local_servers_events(tmp_path: Path, videos: Any) -> None:
    dispatched: list[tuple[str, str]] = []
    announced: list[str] = []
    config = ReceiverConfig(token_file=tmp_path / "token", events_db=tmp_path / "events.sqlite")
    receiver = LoopbackServer(
        create_webhook_app(lambda p, t: dispatched.append((p, t)), config, announce=announced.append), lifespan="off"
    )
    receiver.start()
    try:
        with _server(tmp_path) as server:
            client, _, data_source_id = _table(server, videos)
            subscribed = server.webhooks.subscribe(f"http://127.0.0.1:{receiver.port}/webhooks/notion")
            wait_for(lambda: announced == [subscribed.verification_token])  # held as a candidate
            accept_token(VerificationTokenStore(config.token_file), CandidateTokens(config.candidates_file),
                         subscribed.verification_token)  # what `vidgen webhooks accept TOKEN` does
            page = client.pages.create(parent={"data_source_id": data_source_id}, properties=videos.props("Six"))
            wait_for(lambda: len(dispatched) == 1)
            server.webhooks.subscribe(f"http://127.0.0.1:{receiver.port}/webhooks/notion")  # the same URL again
            time.sleep(0.1)
    finally:
        receiver.stop()
    assert config.token_file.read_text().strip() == subscribed.verification_token
    assert len(announced) == 1
    assert dispatched == [(page["id"], "page.created")]


def test_notion_serve_subscribes_the_url_from_the_environment(
    tmp_path: Path, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vidgen.notion.server.runner as runner

    served: list[Any] = []
    monkeypatch.setenv("VIDGEN_NOTION_WEBHOOK_URL", inbox.url)
    monkeypatch.setattr(runner.uvicorn, "run", lambda app, **_: served.append(app))
    runner.serve_forever(tmp_path / "store.sqlite", port=0)
    [app] = served
    assert app.state.webhooks.subscription.url == inbox.url
    wait_for(lambda: len(inbox.requests) == 1)
    assert inbox.bodies() == [{"verification_token": app.state.webhooks.subscription.verification_token}]
    app.state.webhooks.close()
