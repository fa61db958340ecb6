"""Notion's error object, raised anywhere in the server and rendered by one handler.

Every failure a client can see goes through `NotionAPIError` so that notion-client turns it into an
`APIResponseError` with the same `.code`/`.status` a real workspace would produce.
"""

from __future__ import annotations

from typing import Any


class NotionAPIError(Exception):
    """A request the server refuses, with Notion's HTTP status and error code."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "object": "error",
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "request_id": request_id,
        }


def validation_error(message: str) -> NotionAPIError:
    return NotionAPIError(400, "validation_error", message)


def body_validation_error(path: str, expectation: str, value: Any) -> NotionAPIError:
    """The wording Notion uses, e.g. 'body failed validation: body.page_size should be ≤ `100`, instead was `101`.'"""
    return validation_error(f"body failed validation: {path} {expectation}, instead was `{_shown(value)}`.")


def object_not_found(kind: str, object_id: str) -> NotionAPIError:
    return NotionAPIError(
        404,
        "object_not_found",
        f"Could not find {kind} with ID: {object_id}. "
        "Make sure the relevant pages and databases are shared with your integration.",
    )


def _shown(value: Any) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        import json

        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 80 else text[:77] + "..."
    return str(value)
