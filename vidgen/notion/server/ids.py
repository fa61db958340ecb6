"""Identifiers and timestamps in the exact textual forms Notion uses."""

from __future__ import annotations

import functools
import re
import secrets
import string
import time
import uuid

from vidgen.notion.server.errors import validation_error

BOT_USER_ID = "5f1a8e2c-3b7d-4c6e-9a0b-7d2e4f6a8c10"  # the one integration (bot) user of the local server
WORKSPACE_NAME = "vidgen local workspace"
_PROPERTY_ID_ALPHABET = string.ascii_letters + string.digits
_NON_WORD = re.compile(r"[\W_]+")


def new_id() -> str:
    return str(uuid.uuid4())


def normalize_id(raw: str, label: str) -> str:
    """Accept ids with or without dashes (Notion does); reject anything that is not a UUID."""
    try:
        return str(uuid.UUID(raw.strip()))
    except (ValueError, AttributeError):
        message = f"path failed validation: path.{label} should be a valid uuid, instead was `{raw}`."
        raise validation_error(message) from None


def parse_id_in_body(raw: object, path: str) -> str:
    if not isinstance(raw, str):
        raise validation_error(f"body failed validation: {path} should be a string, instead was `{raw}`.")
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError:
        raise validation_error(f"body failed validation: {path} should be a valid uuid, instead was `{raw}`.") from None


def new_property_id(taken: set[str]) -> str:
    """Short ids like Notion's; letters and digits only so they never need URL-encoding."""
    while True:
        candidate = "".join(secrets.choice(_PROPERTY_ID_ALPHABET) for _ in range(4))
        if candidate not in taken and candidate != "title":
            return candidate


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@functools.lru_cache(maxsize=65536)
def iso_from_ms(ms: int) -> str:
    """Notion's timestamp form: '2020-03-17T19:10:04.968Z' (cached: every query renders many)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def notion_url(object_id: str, title: str = "") -> str:
    """The shape notion-client's `get_id` can read back (slug + 32 hex)."""
    slug = _NON_WORD.sub("-", title).strip("-")
    hex_id = object_id.replace("-", "")
    return f"https://www.notion.so/{slug + '-' if slug else ''}{hex_id}"


def bot_partial_user() -> dict[str, str]:
    return {"object": "user", "id": BOT_USER_ID}
