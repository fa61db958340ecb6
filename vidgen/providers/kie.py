"""KIE.ai's HTTP conventions, shared by its file upload API and its Kling market model.

KIE answers with an envelope `{"code": ..., "msg": ..., "data": ...}` whose `code` can say "failed"
while the HTTP status still says 200, so both must be read before a body is trusted. Documented
codes (https://docs.kie.ai/market/kling/v2-5-turbo-image-to-video-pro, "Response status code"):
200 success, 401 unauthorized, 402 insufficient credits, 404 not found, 422 validation error,
429 rate limited, 455 service unavailable (maintenance), 500 server error, 501 generation failed,
505 feature disabled.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from vidgen.errors import (
    ApiFailureError,
    InvalidInputError,
    ProviderError,
    RetriableError,
    classify_http,
    parse_retry_after,
)

# Codes whose meaning at KIE differs from the generic HTTP reading in `classify_http`.
_KIE_CODE_CLASS: dict[int, type[ProviderError]] = {
    455: RetriableError,  # maintenance: it comes back on its own
    501: ApiFailureError,  # generation failed: retrying the same request is not known to help
    505: ApiFailureError,  # feature disabled on the account: a person must act
}
_KIE_CODE_MEANING: dict[int, str] = {
    401: "unauthorized (check KIE_API_KEY)",
    402: "insufficient credits (top up the KIE.ai account)",
    404: "not found",
    422: "validation error",
    429: "rate limited",
    455: "service unavailable (maintenance)",
    500: "server error",
    501: "generation failed",
    505: "feature disabled",
}

# Words KIE and Kling use when a prompt or image is refused on content grounds.
CONTENT_POLICY_MARKERS = ("content policy", "sensitive", "violat", "nsfw", "prohibited", "inappropriate", "safety")


def looks_like_content_policy(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in CONTENT_POLICY_MARKERS)


def kie_error(code: int, message: str, *, provider: str, retry_after: float | None = None) -> ProviderError:
    """The error class for a KIE status code (HTTP status or envelope `code`), with its documented meaning."""
    meaning = _KIE_CODE_MEANING.get(code)
    text = f"{meaning}: {message}" if meaning and message else (meaning or message or "no message")
    if code in (400, 422, 501) and looks_like_content_policy(message):
        return InvalidInputError(
            f"HTTP {code}: content policy: {message}", provider=provider, status_code=code, retry_after=retry_after
        )
    cls = _KIE_CODE_CLASS.get(code)
    if cls is not None:
        return cls(f"HTTP {code}: {text}", provider=provider, status_code=code, retry_after=retry_after)
    return classify_http(code, text, provider=provider, retry_after=retry_after)


def _message_of(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("msg", "message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    return ""


def read_envelope(response: httpx.Response, *, provider: str) -> dict[str, Any]:
    """The `data` of a successful KIE response; otherwise the right ProviderError, Retry-After included."""
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = None
    if response.status_code >= 400:
        message = _message_of(body) or response.text[:200] or response.reason_phrase
        raise kie_error(response.status_code, message, provider=provider, retry_after=retry_after)
    if not isinstance(body, dict):
        raise ApiFailureError(
            f"malformed JSON from {response.request.url.path}: {response.text[:200]!r}",
            provider=provider,
            status_code=response.status_code,
        )
    code = body.get("code", 200)
    if body.get("success") is False and code == 200:
        code = 500  # the upload API can say success=false without a code of its own
    if not isinstance(code, int):
        try:
            code = int(code)
        except (TypeError, ValueError):
            raise ApiFailureError(f"unexpected response code {code!r}", provider=provider) from None
    if code != 200:
        raise kie_error(code, _message_of(body), provider=provider, retry_after=retry_after)
    data = body.get("data")
    if not isinstance(data, dict):
        raise ApiFailureError(
            f"response from {response.request.url.path} has no data object: {response.text[:200]!r}",
            provider=provider,
            status_code=response.status_code,
        )
    return data


def send(client: httpx.Client, request: httpx.Request, *, provider: str, stream: bool = False) -> httpx.Response:
    """Send one request, turning transport failures into RetriableError (they are worth another try)."""
    try:
        return client.send(request, stream=stream)
    except httpx.TimeoutException as e:
        raise RetriableError(f"timed out talking to {request.url.host}: {e}", provider=provider) from e
    except httpx.TransportError as e:
        raise RetriableError(f"could not reach {request.url.host}: {e}", provider=provider) from e
