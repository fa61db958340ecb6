"""Running the local Notion server: in a background thread (tests, benchmarks) or in the foreground (CLI)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from pathlib import Path
from types import TracebackType

import uvicorn

from vidgen.loopback import LoopbackServer
from vidgen.notion.server.app import create_app
from vidgen.notion.server.uploads import FileUploadService
from vidgen.notion.server.webhooks import WEBHOOK_URL_ENV, WebhookSender, subscription_file


def _require_loopback(host: str) -> None:
    """The local server is for this machine: its data and its token must never be reachable from another."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"refusing to serve the local Notion API on {host!r}: it is for this machine only; "
            "use 127.0.0.1, ::1 or localhost"
        )


_PROCESS_KEY = secrets.token_bytes(32)  # made at import: no token below is known outside this process


def store_token(store_path: Path) -> str:
    """A token for an in-process server nobody gave one: derived from a key random to this process and
    the store's path, so it is unguessable, never the old fixed token, and stable across restarts."""
    digest = hmac.new(_PROCESS_KEY, str(Path(store_path).resolve()).encode(), hashlib.sha256).hexdigest()
    return "secret_" + digest


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class LocalNotionServer:
    """A Notion-API-compatible server on loopback; hand `base_url` and `token` to notion-client.

    Without a `token` (tests, benchmarks) it uses `store_token(store_path)`: random, yet the same
    for a store restarted in this process, as a restarted installation keeps its token."""

    def __init__(
        self,
        store_path: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        rate_limit: float | None = None,
        webhooks: WebhookSender | None = None,
        legacy_token: bool = False,
    ) -> None:
        _require_loopback(host)
        self.store_path = Path(store_path)
        self.webhooks = webhooks or WebhookSender(subscription_file(store_path))  # .subscribe(url) to get events
        self.host = host
        self.token = token or store_token(self.store_path)
        self.rate_limit = rate_limit
        self.legacy_token = legacy_token  # also accept the old fixed token from loopback (an unrotated install)
        self._requested_port = port
        self._server: LoopbackServer | None = None

    @property
    def port(self) -> int:
        return self._server.port if self._server is not None else self._requested_port

    @property
    def base_url(self) -> str:
        """No trailing slash: notion-client appends '/v1/' itself."""
        if self._server is None:
            raise RuntimeError("LocalNotionServer is not started")
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def file_uploads(self) -> FileUploadService:
        """The running app's file-upload settings (workspace size limit, clock), for tests and benchmarks."""
        if self._server is None:
            raise RuntimeError("LocalNotionServer is not started")
        return self._server.app.state.file_uploads

    def start(self) -> LocalNotionServer:
        """Serve in a daemon thread; returns once the port accepts connections."""
        if self._server is None:
            app = create_app(self.store_path, self.token, self.rate_limit, self.webhooks, legacy_token=self.legacy_token)
            server = LoopbackServer(app, host=self.host, port=self._requested_port, name="local-notion")
            try:
                server.start()
            except RuntimeError as exc:
                raise RuntimeError(f"local Notion server did not start on {self.host}:{self.port}") from exc
            self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalNotionServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_forever(
    store_path: Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    rate_limit: float | None = None,
    *,
    legacy_token: bool = False,
) -> None:
    """Blocking; for `vidgen notion serve`. Refuses a non-loopback host with ValueError.
    With VIDGEN_NOTION_WEBHOOK_URL set, that URL is subscribed to the page events."""
    _require_loopback(host)
    webhooks = WebhookSender(subscription_file(store_path))
    if url := os.environ.get(WEBHOOK_URL_ENV):
        webhooks.subscribe(url)
    app = create_app(Path(store_path), token, rate_limit, webhooks, legacy_token=legacy_token)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
