"""What every HTTP server of this package accepts from a request before it looks at it.

Both servers that take bodies from outside (the webhook receiver, the local Notion server) read
them through `read_capped`, so a chunked body with no Content-Length is refused as soon as it
passes the limit instead of being read whole into memory first; and the local Notion server
answers only requests addressed to this machine by name (`host_is_loopback`), which is what
stops a web page from reaching it through DNS rebinding.
"""

from __future__ import annotations

from starlette.requests import Request

LOOPBACK_HOST_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed `limit` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def host_is_loopback(host_header: str | None) -> bool:
    """Whether a Host header names this machine (127.0.0.1, localhost or ::1, any port)."""
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8765
        name, _, _ = host.partition("]")
        return name + "]" in LOOPBACK_HOST_NAMES
    name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    return name in LOOPBACK_HOST_NAMES and (not port or port.isdigit())
