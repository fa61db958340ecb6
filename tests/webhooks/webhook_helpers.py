"""Helpers for the receiver tests: signed events, and a receiver whose dispatch records what it was handed."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from vidgen.webhooks import WEBHOOK_PATH, ReceiverConfig, create_webhook_app, sign
from vidgen.webhooks.store import CandidateTokens, VerificationTokenStore, accept_token

TOKEN = "secret_receiver_test_token"
DATA_SOURCE = "0d5a1c3e-7b9f-4e2d-8a6c-1f3b5d7e9a0c"


def page(name: str) -> str:
    """A page id (a UUID, as every id the receiver accepts must be) that a test can name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"vidgen-test-page/{name}"))


PAGE_1 = page("page-1")


class Recorder:
    """dispatch(page_id, event_type), thread-safe; can be told to fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = False
        self._lock = threading.Lock()

    def __call__(self, page_id: str, event_type: str) -> None:
        if self.fail:
            raise RuntimeError("Prefect is not reachable")
        with self._lock:
            self.calls.append((page_id, event_type))


def event(
    page_id: str = PAGE_1,
    type: str = "page.properties_updated",
    *,
    event_id: str | None = None,
    attempt: int = 1,
    data_source_id: str = DATA_SOURCE,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "timestamp": (timestamp or datetime.now(timezone.utc)).isoformat().replace("+00:00", "Z"),
        "workspace_id": "ws",
        "subscription_id": "sub",
        "integration_id": "int",
        "type": type,
        "authors": [{"id": "u1", "type": "person"}],
        "attempt_number": attempt,
        "api_version": "2025-09-03",
        "entity": {"id": page_id, "type": "page"},
        "data": {"parent": {"id": "db", "type": "database", "data_source_id": data_source_id}, "updated_properties": ["st"]},
    }


def signed(body: dict[str, Any] | bytes, token: str = TOKEN) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, {"X-Notion-Signature": sign(raw, token), "Content-Type": "application/json"}


class Receiver:
    def __init__(self, client: TestClient, dispatch: Recorder, config: ReceiverConfig, announced: list[str]) -> None:
        self.client, self.dispatch, self.config, self.announced = client, dispatch, config, announced

    def verify(self, token: str = TOKEN) -> Any:
        return self.client.post(WEBHOOK_PATH, json={"verification_token": token})

    def accept(self, token: str = TOKEN) -> None:
        """What `vidgen webhooks accept TOKEN` does: the candidate becomes the signing key."""
        accept_token(VerificationTokenStore(self.config.token_file), CandidateTokens(self.config.candidates_file), token)

    def send(self, body: dict[str, Any] | bytes, token: str = TOKEN) -> Any:
        raw, headers = signed(body, token)
        return self.client.post(WEBHOOK_PATH, content=raw, headers=headers)


def make_receiver(home: Path, **settings: Any) -> Iterator[Receiver]:
    config = ReceiverConfig(
        token_file=home / "notion-webhook-token", events_db=home / "events.sqlite", data_source_id=DATA_SOURCE, **settings
    )
    dispatch = Recorder()
    announced: list[str] = []
    with TestClient(create_webhook_app(dispatch, config, announce=announced.append)) as client:
        yield Receiver(client, dispatch, config, announced)
