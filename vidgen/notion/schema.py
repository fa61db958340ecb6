"""The "Video Pipeline" database: property names, select options, and the schema sent to Notion.

Property names live here and nowhere else, because they are the contract with the person's board:
renaming a column in code without renaming it in Notion silently breaks every read and write.
"""

from __future__ import annotations

from typing import Any, Final

from vidgen.channels import Channel
from vidgen.models import Priority
from vidgen.statuses import ERROR_STATUSES, REVIEW_STATUSES, NotionStatus

DATABASE_TITLE: Final = "Video Pipeline"


class Prop:
    """The database's property (column) names."""

    TITLE: Final = "Title"
    CHANNEL: Final = "Channel"
    TOPIC: Final = "Topic"
    STORY_DIRECTION: Final = "Story Direction"
    STATUS: Final = "Status"
    PRIORITY: Final = "Priority"
    ERROR: Final = "Error"
    COST: Final = "Cost"
    VIDEO_URL: Final = "Video URL"
    WORKSPACE: Final = "Workspace"
    RUN: Final = "Run"
    REVIEW: Final = "Review"
    REVIEW_NOTES: Final = "Review Notes"
    UPDATED: Final = "Updated"
    CREATED: Final = "Created"
    LAST_EDITED: Final = "Last Edited"


REVIEW_APPROVE: Final = "Approve"
REVIEW_REJECT: Final = "Reject"
REVIEW_OPTIONS: Final = (REVIEW_APPROVE, REVIEW_REJECT)

# Notion sorts a select by its option order, so High comes first when the poll sorts ascending.
PRIORITY_OPTIONS: Final = (Priority.HIGH.value, Priority.NORMAL.value, Priority.LOW.value)

# Notion's documented limits for property values.
RICH_TEXT_CHUNK: Final = 2000  # characters per rich_text object
RICH_TEXT_MAX_CHUNKS: Final = 100  # rich_text objects per property value
URL_MAX: Final = 2000
SELECT_OPTION_MAX: Final = 100  # characters in a select option's name


def status_color(status: NotionStatus) -> str:
    """A board colour that lets a person see at a glance where attention is needed."""
    if status in ERROR_STATUSES:
        return "red"
    if status in REVIEW_STATUSES:
        return "yellow"
    if status in (NotionStatus.DRAFT, NotionStatus.READY_FOR_PLANNING, NotionStatus.ARCHIVED):
        return "gray"
    if status is NotionStatus.QUEUED:
        return "purple"
    if status in (NotionStatus.REVIEW_APPROVED, NotionStatus.UPLOAD_COMPLETE):
        return "green"
    if status is NotionStatus.REVIEW_REJECTED:
        return "orange"
    return "blue"


_PRIORITY_COLORS: Final = {Priority.HIGH.value: "red", Priority.NORMAL.value: "default", Priority.LOW.value: "gray"}
_CHANNEL_COLORS: Final = ("blue", "green", "purple", "orange", "pink", "brown", "yellow", "red", "gray", "default")


def _select(options: list[dict[str, str]]) -> dict[str, Any]:
    return {"select": {"options": options}}


def channel_options(channels: dict[str, Channel]) -> list[dict[str, str]]:
    """One option per configured channel (active or not: an inactive channel's old entries keep their value)."""
    values = sorted({ch.notion_value for ch in channels.values()})
    return [{"name": v, "color": _CHANNEL_COLORS[i % len(_CHANNEL_COLORS)]} for i, v in enumerate(values)]


def database_properties(channels: dict[str, Channel]) -> dict[str, dict[str, Any]]:
    """The full property schema for `initial_data_source.properties` when creating the database."""
    return {
        Prop.TITLE: {"title": {}},
        Prop.CHANNEL: _select(channel_options(channels)),
        Prop.TOPIC: {"rich_text": {}},
        Prop.STORY_DIRECTION: {"rich_text": {}},
        Prop.STATUS: _select([{"name": s.value, "color": status_color(s)} for s in NotionStatus]),
        Prop.PRIORITY: _select([{"name": p, "color": _PRIORITY_COLORS[p]} for p in PRIORITY_OPTIONS]),
        Prop.ERROR: {"rich_text": {}},
        Prop.COST: {"number": {"format": "dollar"}},
        Prop.VIDEO_URL: {"url": {}},
        Prop.WORKSPACE: {"rich_text": {}},
        Prop.RUN: {"url": {}},
        Prop.REVIEW: _select([{"name": REVIEW_APPROVE, "color": "green"}, {"name": REVIEW_REJECT, "color": "red"}]),
        Prop.REVIEW_NOTES: {"rich_text": {}},
        Prop.UPDATED: {"date": {}},
        Prop.CREATED: {"created_time": {}},
        Prop.LAST_EDITED: {"last_edited_time": {}},
    }


def property_type(schema_entry: dict[str, Any]) -> str:
    """The Notion type of one schema entry (`{"select": {...}}` -> "select"), whichever form it came in.

    Notion answers with `{"id": ..., "name": ..., "type": "select", "select": {...}}`; what we send has
    only the type key. Both are accepted so schema comparisons work on either.
    """
    if "type" in schema_entry:
        return str(schema_entry["type"])
    keys = [k for k in schema_entry if k not in ("id", "name", "description")]
    return keys[0] if keys else ""
