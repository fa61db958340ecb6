"""Notion ids (pages, data sources, blocks, file uploads) checked where they enter the program.

An id goes into a URL path (`pages/{id}`) and a folder name (`workspaces/<channel>/<page id>`), and
it may come from a webhook body, a command line or a Notion answer. httpx resolves `..` in a path,
so `entity.id = "../data_sources/…"` would address another endpoint: every id is checked to be a
UUID (with or without dashes, as Notion writes them) before it is used, and refused otherwise.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from vidgen.notion.errors import NotionError

_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


class InvalidNotionId(NotionError, ValueError):
    """Something that should be a Notion id is not a UUID (a ValueError too, so pydantic reports it)."""


def notion_id(value: object, what: str = "page id") -> str:
    """`value` unchanged when it is a UUID (32 hex digits, dashes optional); else InvalidNotionId.

    The text is kept as given (not re-formatted) so ids compare equal wherever they are stored.
    """
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        shown = repr(value)[:60]
        raise InvalidNotionId(f"{what} {shown} is not a Notion id (a UUID like 1f2e3d4c-…, as in the page's URL)")
    return value


def _page_id(value: str) -> str:
    return notion_id(value, "page id")


NotionId = Annotated[str, AfterValidator(_page_id)]
"""A pydantic field type: a Notion id, checked on validation."""
