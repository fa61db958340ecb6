"""The webhook receiver: `POST /webhooks/notion`, answered in milliseconds.

It verifies, filters and deduplicates, then hands the page id to `dispatch` and answers; the work
(reading the page, starting or resuming a run) happens elsewhere (a Prefect `handle-page` run).
What each request gets:

- unsigned `{"verification_token": ...}`: the token is held as a *candidate* (0600 file) and announced
  once (to the terminal); it signs nothing until a person accepts it (`vidgen webhooks accept
  TOKEN`) or configuration names the key (NOTION_WEBHOOK_TOKEN). Candidates expire after an hour and
  are rate-limited (429 beyond); the accepted key again answers "already verified";
- body over 1 MB: 413; missing or wrong `X-Notion-Signature`: 401 and nothing else happens;
- JSON nested too deeply (before the signature is checked, like the size): 400;
- malformed JSON, no `type`/`entity`, or an `entity.id` / data source id that is not a UUID: 400;
- an event seen before (same `id`): 200, no second dispatch;
- another data source, a type that does not matter here, or older than `max_event_age_s`: 200,
  logged, ignored;
- a page event: `dispatch(page_id, event_type)`, 200. If dispatch raises, the id is forgotten and
  503 is answered, so Notion's retry gets another chance.
"""

from __future__ import annotations

import hmac
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from vidgen.config import Paths, mask_secret
from vidgen.loopback import LoopbackServer
from vidgen.notion.ratelimit import TokenBucket
from vidgen.request_limits import read_capped
from vidgen.webhooks.events import DATA_SOURCE_SCHEMA_UPDATED, PAGE_EVENT_TYPES, NotionWebhookEvent
from vidgen.webhooks.signature import SIGNATURE_HEADER, verify_signature
from vidgen.webhooks.store import (
    CANDIDATE_BURST,
    CANDIDATES_PER_MINUTE,
    CandidateTokens,
    SeenEvents,
    VerificationTokenStore,
)

WEBHOOK_PATH = "/webhooks/notion"
MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_EVENT_AGE_S = 3600.0
MAX_TOKEN_CHARS = 200  # Notion's are "secret_" and 43 more; a candidate file must stay small
CLOCK_SKEW_S = 300.0  # an event stamped a little in the future (another clock) is still accepted

Dispatch = Callable[[str, str], None]
"""dispatch(page_id, event_type): start the work for one page; must return quickly."""

log = logging.getLogger(__name__)


class ReceiverConfig(BaseModel):
    """Where the receiver keeps its state and what it accepts."""

    token_file: Path  # the accepted signing key
    events_db: Path
    data_source_id: str | None = None  # None: accept events of any data source
    signing_token: str | None = None  # the key from configuration (NOTION_WEBHOOK_TOKEN); wins over token_file
    max_event_age_s: float = DEFAULT_MAX_EVENT_AGE_S

    @property
    def candidates_file(self) -> Path:
        """Verification tokens waiting to be accepted, next to the key."""
        return self.token_file.with_name(self.token_file.name + ".candidates.json")

    @classmethod
    def from_paths(cls, paths: Paths, **settings: Any) -> ReceiverConfig:
        """State under VIDGEN_HOME: `notion-webhook-token` and `notion-webhook-events.sqlite`."""
        return cls(
            token_file=paths.home / "notion-webhook-token",
            events_db=paths.home / "notion-webhook-events.sqlite",
            **settings,
        )


def announce_candidate(token: str) -> None:
    """Show a candidate once: in full on a terminal (the person pastes it into Notion's form and
    accepts it here), masked anywhere else, since a redirected stdout is a log file."""
    shown = token if sys.stdout.isatty() else f"{mask_secret(token)} (`uv run vidgen webhooks pending --reveal` shows it)"
    print(
        f"Notion webhook verification token: {shown}\n"
        "  paste it into Notion (integration settings > Webhooks > Verify), then run "
        "`uv run vidgen webhooks accept TOKEN` on this machine",
        flush=True,
    )


def _answer(status: int, outcome: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"outcome": outcome, **extra}, status_code=status)


def _verification_token(parsed: Any) -> str | None:
    """The token of a verification request, which is the only unsigned body Notion sends."""
    if isinstance(parsed, dict) and "type" not in parsed and isinstance(parsed.get("verification_token"), str):
        return parsed["verification_token"]
    return None


class WebhookReceiver:
    """The request handling, separate from HTTP so each rule reads in one place."""

    def __init__(
        self, dispatch: Dispatch, config: ReceiverConfig, announce: Callable[[str], None] = announce_candidate
    ) -> None:
        self.dispatch = dispatch
        self.config = config
        self.announce = announce
        self.tokens = VerificationTokenStore(config.token_file)
        self.candidates = CandidateTokens(config.candidates_file)
        self.candidate_pace = TokenBucket(CANDIDATES_PER_MINUTE / 60.0, CANDIDATE_BURST)
        self.seen = SeenEvents(config.events_db, retention_s=max(7 * 24 * 3600.0, 2 * config.max_event_age_s))

    def close(self) -> None:
        self.seen.close()

    def signing_key(self) -> str | None:
        """The key events are checked with: configuration's, else the accepted one. Never a candidate."""
        return self.config.signing_token or self.tokens.read()

    def verify(self, token: str) -> JSONResponse:
        """An unsigned verification request: hold its token as a candidate, never as the key."""
        if not 0 < len(token) <= MAX_TOKEN_CHARS:
            return _answer(400, "malformed", detail=f"a verification token has 1 to {MAX_TOKEN_CHARS} characters")
        key = self.signing_key()
        if key is not None and hmac.compare_digest(key.encode(), token.encode()):
            return _answer(200, "already verified")
        if not self.candidate_pace.try_acquire():
            log.warning("Notion webhook verification request refused: too many of them (at most %.0f a minute)",
                        CANDIDATES_PER_MINUTE)  # fmt: skip
            return _answer(429, "too many verification requests")
        if self.candidates.offer(token):
            log.warning("Notion webhook verification token %s received; it signs nothing until accepted "
                        "(`vidgen webhooks accept TOKEN`)", mask_secret(token))  # fmt: skip
            self.announce(token)
        return _answer(200, "pending", detail="accept the token with `vidgen webhooks accept TOKEN` on the receiver's machine")

    def handle_event(self, raw: bytes, parsed: Any, signature: str | None) -> JSONResponse:
        token = self.signing_key()
        if token is None:
            log.warning("Notion webhook refused: no signing key yet (accept the verification token first)")
            return _answer(401, "unverified")
        if not verify_signature(raw, signature, token):
            log.warning("Notion webhook refused: missing or wrong %s", SIGNATURE_HEADER)
            return _answer(401, "bad signature")
        if not isinstance(parsed, dict) or "type" not in parsed or "entity" not in parsed:
            return _answer(400, "malformed", detail="a Notion event is a JSON object with `type` and `entity`")
        try:
            event = NotionWebhookEvent.model_validate(parsed)
        except ValidationError as exc:
            return _answer(400, "malformed", detail=str(exc.errors(include_url=False, include_input=False)[:3]))
        except RecursionError:
            return _answer(400, "malformed", detail="the JSON is nested too deeply")
        return self.act(event)

    def _ignored_because(self, event: NotionWebhookEvent) -> str | None:
        if event.type not in PAGE_EVENT_TYPES and event.type != DATA_SOURCE_SCHEMA_UPDATED:
            return f"type {event.type} does not concern the pipeline"
        wanted = self.config.data_source_id
        source = event.data_source_id()
        if wanted and source and source.replace("-", "") != wanted.replace("-", ""):
            return f"data source {source} is not the pipeline's ({wanted})"
        stamp = event.timestamp if event.timestamp.tzinfo else event.timestamp.replace(tzinfo=timezone.utc)
        age = (datetime.now(timezone.utc) - stamp).total_seconds()
        if age > self.config.max_event_age_s:
            return f"older than {self.config.max_event_age_s:.0f} s ({timedelta(seconds=int(age))})"
        if age < -CLOCK_SKEW_S:
            return f"stamped {-age:.0f} s in the future"
        return None

    def act(self, event: NotionWebhookEvent) -> JSONResponse:
        if reason := self._ignored_because(event):
            log.info("Notion event %s (%s, %s) ignored: %s", event.id, event.type, event.entity.id, reason)
            return _answer(200, "ignored", detail=reason)
        if not self.seen.claim(event.id):
            log.info("Notion event %s (attempt %d) seen before; not acted on again", event.id, event.attempt_number)
            return _answer(200, "duplicate")
        if event.type == DATA_SOURCE_SCHEMA_UPDATED:
            log.warning(
                "The Notion database's columns changed (event %s); run `uv run vidgen notion init` to check them", event.id
            )
            return _answer(200, "noted")
        try:
            self.dispatch(event.entity.id, event.type)
        except Exception:
            self.seen.release(event.id)
            log.exception("Notion event %s for page %s could not be dispatched", event.id, event.entity.id)
            return _answer(503, "dispatch failed")
        return _answer(200, "dispatched", page_id=event.entity.id)


def create_webhook_app(
    dispatch: Dispatch, config: ReceiverConfig, *, announce: Callable[[str], None] = announce_candidate
) -> Starlette:
    """The receiver as an ASGI app (`POST /webhooks/notion`); `app.state.receiver` is the handler."""
    receiver = WebhookReceiver(dispatch, config, announce)

    async def notion_webhook(request: Request) -> JSONResponse:
        raw = await read_capped(request, MAX_BODY_BYTES)
        if raw is None:
            return _answer(413, "too large", detail=f"the limit is {MAX_BODY_BYTES} bytes")
        try:
            parsed: Any = json.loads(raw)
        except RecursionError:  # "[[[[…" 200,000 deep: refused like an oversized body, before any key is used
            return _answer(400, "malformed", detail="the JSON is nested too deeply")
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if (token := _verification_token(parsed)) is not None:
            return await run_in_threadpool(receiver.verify, token)
        return await run_in_threadpool(receiver.handle_event, raw, parsed, request.headers.get(SIGNATURE_HEADER))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        receiver.close()

    app = Starlette(routes=[Route(WEBHOOK_PATH, notion_webhook, methods=["POST"])], lifespan=lifespan)
    app.state.receiver = receiver
    return app


class WebhookServer:
    """The receiver served by uvicorn in a daemon thread (from `vidgen serve`); `.stop()` ends it."""

    def __init__(self, app: Starlette, server: LoopbackServer) -> None:
        self.app = app
        self._server = server

    @property
    def url(self) -> str:
        host = f"[{self._server.host}]" if ":" in self._server.host else self._server.host
        return f"http://{host}:{self._server.port}{WEBHOOK_PATH}"

    def stop(self) -> None:
        self._server.stop()
        self.app.state.receiver.close()


def start_webhook_server(
    port: int,
    dispatch: Dispatch,
    config: ReceiverConfig,
    *,
    host: str = "127.0.0.1",
    announce: Callable[[str], None] = announce_candidate,
) -> WebhookServer:
    """Serve the receiver on `host:port` (0 = any free port) and return once it accepts requests.

    It listens on loopback by default: expose it to Notion through an HTTPS reverse proxy or tunnel.
    """
    app = create_webhook_app(dispatch, config, announce=announce)
    server = LoopbackServer(app, host=host, port=port, name="notion-webhooks", lifespan="off")
    server.start()
    return WebhookServer(app, server)
