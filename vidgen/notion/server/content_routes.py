"""Routes for page content and files: /v1/blocks/..., /v1/file_uploads/..., and the file downloads.

Kept apart from app.py's object routes; `register_content_routes` adds them to the app and returns the
two services, so a test can shrink the workspace's file limit or move the upload clock
(`app.state.file_uploads`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from vidgen.notion.server.blocks import BlockService
from vidgen.notion.server.errors import NotionAPIError
from vidgen.notion.server.store import NotionStore
from vidgen.notion.server.uploads import FILES_PATH, MAX_SEND_BODY, FileUploadService, download_headers, too_large
from vidgen.request_limits import read_capped


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


JsonBody = Callable[[Request], Awaitable[dict[str, Any]]]
Reply = Callable[[Request, dict[str, Any]], JSONResponse]


def register_content_routes(
    app: FastAPI, store: NotionStore, json_body: JsonBody, ok: Reply
) -> tuple[FileUploadService, BlockService]:
    """Add the block and file-upload routes; `json_body` and `ok` are app.py's body parser and reply."""
    uploads = FileUploadService(store)
    blocks = BlockService(store, uploads)
    app.state.file_uploads, app.state.blocks = uploads, blocks

    # -- file uploads ---------------------------------------------------------------------------
    @app.post("/v1/file_uploads")
    async def file_uploads_create(request: Request) -> JSONResponse:
        return ok(request, uploads.response(uploads.create(await json_body(request)), _base_url(request)))

    @app.get("/v1/file_uploads/{upload_id}")
    async def file_uploads_retrieve(request: Request, upload_id: str) -> JSONResponse:
        return ok(request, uploads.response(uploads.retrieve(upload_id), _base_url(request)))

    @app.post("/v1/file_uploads/{upload_id}/send")
    async def file_uploads_send(request: Request, upload_id: str) -> JSONResponse:
        raw = await read_capped(request, MAX_SEND_BODY)
        if raw is None:
            raise too_large()
        record = uploads.send(upload_id, request.headers.get("content-type", ""), raw)
        return ok(request, uploads.response(record, _base_url(request)))

    @app.post("/v1/file_uploads/{upload_id}/complete")
    async def file_uploads_complete(request: Request, upload_id: str) -> JSONResponse:
        return ok(request, uploads.response(uploads.complete(upload_id), _base_url(request)))

    @app.get(FILES_PATH + "{upload_id}/{secret}/{filename}")
    async def file_download(upload_id: str, secret: str, filename: str) -> Response:
        try:
            data, content_type = uploads.download(upload_id, secret)
        except NotionAPIError:
            return Response(status_code=404)
        return Response(data, media_type=content_type, headers=download_headers(content_type, filename))

    # -- blocks ---------------------------------------------------------------------------------
    @app.get("/v1/blocks/{block_id}/children")
    async def blocks_children(request: Request, block_id: str) -> JSONResponse:
        params = request.query_params
        return ok(request, blocks.list_children(block_id, params.get("start_cursor"), params.get("page_size"),
                                                _base_url(request)))  # fmt: skip

    @app.patch("/v1/blocks/{block_id}/children")
    async def blocks_append(request: Request, block_id: str) -> JSONResponse:
        return ok(request, blocks.append_children(block_id, await json_body(request), _base_url(request)))

    @app.get("/v1/blocks/{block_id}")
    async def blocks_retrieve(request: Request, block_id: str) -> JSONResponse:
        return ok(request, blocks.retrieve(block_id, _base_url(request)))

    @app.delete("/v1/blocks/{block_id}")
    async def blocks_delete(request: Request, block_id: str) -> JSONResponse:
        return ok(request, blocks.delete(block_id, _base_url(request)))

    return uploads, blocks
