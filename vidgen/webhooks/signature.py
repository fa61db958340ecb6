"""Notion's webhook signature: `X-Notion-Signature: sha256=<hex>`, an HMAC-SHA256 of the raw body.

The key is the verification token Notion sent when the subscription was made. The digest is over the
bytes exactly as they arrived: re-serialising the JSON would change spacing or key order and break it.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Notion-Signature"
_PREFIX = "sha256="


def sign(raw_body: bytes, token: str) -> str:
    """The header value Notion sends with `raw_body` (also used by the local server's sender)."""
    return _PREFIX + hmac.new(token.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()


def verify_signature(raw_body: bytes, header: str | None, token: str) -> bool:
    """True only when `header` is the signature of `raw_body` under `token`; compared in constant time."""
    if not header or not token or not header.startswith(_PREFIX):
        return False
    return hmac.compare_digest(header.encode("ascii", "replace"), sign(raw_body, token).encode("ascii"))
