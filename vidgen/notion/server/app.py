"""The HTTP face of the local Notion server: routes under /v1, auth, versioning, rate limit, errors.

Every response that is not a success is Notion's error object, so notion-client raises the same
`APIResponseError` (code, status, headers) it would against api.notion.com.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from vidgen.config import LEGACY_LOCAL_NOTION_TOKEN
from vidgen.notion.server.content_routes import register_content_routes
from vidgen.notion.server.errors import NotionAPIError, validation_error
from vidgen.notion.server.ratelimit import TokenBucket, retry_after_header
from vidgen.notion.server.service import NotionService, bot_user
from vidgen.notion.server.store import NotionStore
from vidgen.notion.server.uploads import FILES_PATH
from vidgen.notion.server.webhooks import WebhookSender, add_subscription_routes, subscription_file
from vidgen.request_limits import host_is_loopback, read_capped

API_VERSION = "2025-09-03"
MAX_BODY_BYTES = 500 * 1024
_VERSION_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
log = logging.getLogger(__name__)


def _error_response(error: NotionAPIError, request_id: str) -> JSONResponse:
    return JSONResponse(error.body(request_id), status_code=error.status, headers=error.headers)


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", None) or str(uuid.uuid4())


def _check_version(value: str | None) -> None:
    if not value:
        raise NotionAPIError(
            400,
            "missing_version",
            "Notion-Version header failed validation: Notion-Version header should be defined, "
            "instead was `undefined`.",
        )
    if not _VERSION_FORMAT.match(value) or value < API_VERSION:
        raise validation_error(
            f"Notion-Version header failed validation: this server speaks Notion-Version {API_VERSION} "
            f"(databases hold data sources), instead was `{value}`."
        )


def new_local_token() -> str:
    """A token for a server nobody configured (tests, benchmarks): random, never the old fixed one."""
    return "secret_" + secrets.token_urlsafe(32)


def _from_loopback(request: Request) -> bool:
    client = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(client).is_loopback
    except ValueError:
        return False


def _check_host(request: Request) -> None:
    """Only requests addressed to this machine by name: a web page that re-points its own domain at
    127.0.0.1 (DNS rebinding) sends `Host: its-domain`, and is refused before anything else."""
    if not host_is_loopback(request.headers.get("host")):
        raise NotionAPIError(
            400, "invalid_request", "This local Notion server answers only requests to 127.0.0.1, localhost or ::1."
        )


def _check_auth(request: Request, token: str, *, legacy_token: bool) -> None:
    """The installation's token, compared in constant time; the old fixed token too while `legacy_token`
    (an install that has not rotated it yet), and then only from loopback."""
    scheme, _, credential = (request.headers.get("authorization") or "").partition(" ")
    given = credential.strip().encode()
    if scheme.lower() == "bearer" and hmac.compare_digest(given, token.encode()):
        return
    if legacy_token and scheme.lower() == "bearer" and _from_loopback(request):
        if hmac.compare_digest(given, LEGACY_LOCAL_NOTION_TOKEN.encode()):
            return
    raise NotionAPIError(401, "unauthorized", "API token is invalid.")


async def _body(request: Request) -> dict[str, Any]:
    raw = await read_capped(request, MAX_BODY_BYTES)
    if raw is None:
        raise validation_error(f"Request body too large; the limit is {MAX_BODY_BYTES} bytes (500KB).")
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise NotionAPIError(400, "invalid_json", "Error parsing JSON body.") from None
    if not isinstance(parsed, dict):
        raise validation_error(
            f"body failed validation: body should be an object, instead was `{type(parsed).__name__}`."
        )
    return parsed


def _filter_properties(request: Request) -> list[str]:
    return request.query_params.getlist("filter_properties") + request.query_params.getlist("filter_properties[]")


def create_app(
    store_path: Path,
    token: str | None = None,
    rate_limit: float | None = None,
    webhooks: WebhookSender | None = None,
    *,
    legacy_token: bool = False,
) -> FastAPI:
    """A FastAPI app serving one SQLite store; `rate_limit` requests/second (None = unlimited);
    `webhooks` sends page events to a subscribed URL (default: the store's saved subscription, if any).
    `token` (random when not given) is what clients must send; `legacy_token` also accepts the old
    fixed one from loopback (see `vidgen.config.legacy_local_token_in_use`)."""
    token = token or new_local_token()
    store = NotionStore(Path(store_path))
    webhooks = webhooks or WebhookSender(subscription_file(store_path))
    service = NotionService(store, webhooks)
    bucket = TokenBucket(rate_limit) if rate_limit else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        for service_ in app.state.content_services:
            service_.close()
        webhooks.close()
        store.close()

    app = FastAPI(title="vidgen local Notion API", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.store = store
    app.state.webhooks = webhooks
    app.state.token = token

    @app.middleware("http")
    async def gatekeeper(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request.state.request_id = str(uuid.uuid4())
        try:
            _check_host(request)
        except NotionAPIError as error:
            return _error_response(error, request.state.request_id)
        if request.url.path.startswith(FILES_PATH):  # file URLs carry their own secret, as Notion's signed URLs do
            return await call_next(request)
        try:
            _check_auth(request, token, legacy_token=legacy_token)
            _check_version(request.headers.get("notion-version"))
            if bucket is not None and (wait := bucket.take()) > 0:
                raise NotionAPIError(
                    429,
                    "rate_limited",
                    "You have been rate limited. Please try again in a few minutes.",
                    headers={"Retry-After": retry_after_header(wait)},
                )
        except NotionAPIError as error:
            return _error_response(error, request.state.request_id)
        return await call_next(request)

    @app.exception_handler(NotionAPIError)
    async def notion_error(request: Request, error: NotionAPIError) -> JSONResponse:
        return _error_response(error, _request_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def unknown_route(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error_response(NotionAPIError(400, "invalid_request_url", "Invalid request URL."), _request_id(request))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("local Notion server failed on %s %s", request.method, request.url.path)
        failure = NotionAPIError(500, "internal_server_error", f"Unexpected error: {type(error).__name__}: {error}")
        return _error_response(failure, _request_id(request))

    def ok(request: Request, payload: dict[str, Any]) -> JSONResponse:
        return JSONResponse({**payload, "request_id": request.state.request_id})

    # -- users --------------------------------------------------------------------------------
    @app.get("/v1/users/me")
    async def users_me(request: Request) -> JSONResponse:
        return ok(request, bot_user())

    @app.get("/v1/users")
    async def users_list(request: Request) -> JSONResponse:
        return ok(request, {"object": "list", "results": [bot_user()], "next_cursor": None, "has_more": False,
                            "type": "user", "user": {}})  # fmt: skip

    @app.get("/v1/users/{user_id}")
    async def users_retrieve(request: Request, user_id: str) -> JSONResponse:
        user = bot_user()
        if user_id.replace("-", "") != user["id"].replace("-", ""):
            raise NotionAPIError(404, "object_not_found", f"Could not find user with ID: {user_id}.")
        return ok(request, user)

    # -- databases ----------------------------------------------------------------------------
    @app.post("/v1/databases")
    async def databases_create(request: Request) -> JSONResponse:
        return ok(request, service.create_database(await _body(request)))

    @app.get("/v1/databases/{database_id}")
    async def databases_retrieve(request: Request, database_id: str) -> JSONResponse:
        return ok(request, service.retrieve_database(database_id))

    @app.patch("/v1/databases/{database_id}")
    async def databases_update(request: Request, database_id: str) -> JSONResponse:
        return ok(request, service.update_database(database_id, await _body(request)))

    # -- data sources -------------------------------------------------------------------------
    @app.post("/v1/data_sources")
    async def data_sources_create(request: Request) -> JSONResponse:
        return ok(request, service.create_data_source(await _body(request)))

    @app.get("/v1/data_sources/{data_source_id}")
    async def data_sources_retrieve(request: Request, data_source_id: str) -> JSONResponse:
        return ok(request, service.retrieve_data_source(data_source_id))

    @app.patch("/v1/data_sources/{data_source_id}")
    async def data_sources_update(request: Request, data_source_id: str) -> JSONResponse:
        return ok(request, service.update_data_source(data_source_id, await _body(request)))

    @app.post("/v1/data_sources/{data_source_id}/query")
    async def data_sources_query(request: Request, data_source_id: str) -> JSONResponse:
        body = await _body(request)
        return ok(request, service.query_data_source(data_source_id, body, _filter_properties(request)))

    # -- pages --------------------------------------------------------------------------------
    @app.post("/v1/pages")
    async def pages_create(request: Request) -> JSONResponse:
        body = await _body(request)
        children = body.pop("children", None)  # the page body: blocks, kept by the block service
        page = service.create_page(body)
        if children is not None:
            app.state.blocks.append_children(page["id"], {"children": children}, str(request.base_url).rstrip("/"))
        return ok(request, page)

    @app.get("/v1/pages/{page_id}")
    async def pages_retrieve(request: Request, page_id: str) -> JSONResponse:
        return ok(request, service.retrieve_page(page_id, _filter_properties(request)))

    @app.patch("/v1/pages/{page_id}")
    async def pages_update(request: Request, page_id: str) -> JSONResponse:
        return ok(request, service.update_page(page_id, await _body(request)))

    # -- search -------------------------------------------------------------------------------
    @app.post("/v1/search")
    async def search(request: Request) -> JSONResponse:
        return ok(request, service.search(await _body(request)))

    uploads, blocks = register_content_routes(app, store, _body, ok)  # /v1/blocks, /v1/file_uploads, /files
    app.state.content_services = (uploads, blocks)
    add_subscription_routes(app, webhooks)
    return app
