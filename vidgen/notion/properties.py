"""Notion page JSON <-> `VideoEntry`, both ways.

Reading never raises: a person can put anything in a Notion page (delete a column, pick an option
that no longer exists, leave the title blank), and one odd page must not stop a poll over all the
others. Values are kept as found so validation can say exactly what is wrong.

Writing respects Notion's limits (2,000 characters per rich_text object, 100 objects per value,
2,000-character URLs) so a long error message or traceback never turns into a rejected request.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from vidgen.models import Priority, VideoEntry
from vidgen.notion.errors import NotionInvalidEntry
from vidgen.notion.schema import RICH_TEXT_CHUNK, RICH_TEXT_MAX_CHUNKS, SELECT_OPTION_MAX, URL_MAX, Prop
from vidgen.statuses import NotionStatus

TRUNCATION_MARK = " […]"


# --- reading -------------------------------------------------------------------------------------


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def plain_text(items: Any) -> str:
    """The text of a rich_text/title array; unknown item shapes contribute nothing instead of failing."""
    if not isinstance(items, list):
        return ""
    parts: list[str] = []
    for item in items:
        item = _as_dict(item)
        text = item.get("plain_text")
        if not isinstance(text, str):
            text = _as_dict(item.get("text")).get("content")
        if isinstance(text, str):
            parts.append(text)
    return "".join(parts)


def _typed(props: Mapping[str, Any], name: str, kind: str) -> Any:
    """The value of property `name` if it exists with type `kind`; None when missing or of another type."""
    prop = _as_dict(props.get(name))
    declared = prop.get("type", kind)
    if declared != kind or kind not in prop:
        return None
    return prop[kind]


def _text(props: Mapping[str, Any], name: str) -> str:
    return plain_text(_typed(props, name, "rich_text"))


def _select_name(props: Mapping[str, Any], name: str) -> str | None:
    value = _as_dict(_typed(props, name, "select"))
    option = value.get("name")
    return option if isinstance(option, str) else None


def _url(props: Mapping[str, Any], name: str) -> str | None:
    value = _typed(props, name, "url")
    return value if isinstance(value, str) and value else None


def _number(props: Mapping[str, Any], name: str) -> float | None:
    value = _typed(props, name, "number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _title(props: Mapping[str, Any]) -> str:
    """The title, found by name first and by type second (a person may rename the title column)."""
    value = _typed(props, Prop.TITLE, "title")
    if value is None:
        for prop in props.values():
            prop = _as_dict(prop)
            if prop.get("type") == "title":
                value = prop.get("title")
                break
    return plain_text(value)


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp as an aware datetime (UTC when Notion gives no offset); None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def entry_from_page(page: Mapping[str, Any]) -> VideoEntry:
    """A `VideoEntry` from a Notion page object, keeping raw values even when they are invalid."""
    props = _as_dict(page.get("properties"))
    status = _select_name(props, Prop.STATUS)
    return VideoEntry(
        page_id=str(page.get("id") or ""),
        title=_title(props),
        channel=_select_name(props, Prop.CHANNEL),
        topic=_text(props, Prop.TOPIC),
        story_direction=_text(props, Prop.STORY_DIRECTION),
        status=status if status is not None else "",
        priority=_select_name(props, Prop.PRIORITY),
        created_time=parse_time(page.get("created_time")),
        last_edited_time=parse_time(page.get("last_edited_time")),
        error=_text(props, Prop.ERROR),
        cost_usd=_number(props, Prop.COST),
        video_url=_url(props, Prop.VIDEO_URL),
        workspace=_text(props, Prop.WORKSPACE) or None,
        run_url=_url(props, Prop.RUN),
        review=_select_name(props, Prop.REVIEW),
        review_notes=_text(props, Prop.REVIEW_NOTES),
        url=page.get("url") if isinstance(page.get("url"), str) else None,
        archived=bool(page.get("in_trash") or page.get("archived")),
        data_source_id=_as_dict(page.get("parent")).get("data_source_id"),
    )


# --- writing -------------------------------------------------------------------------------------


def _utf16_len(text: str) -> int:
    """Length as Notion counts it (JavaScript string length: an emoji outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def text_chunks(text: str) -> list[str]:
    """`text` cut into pieces Notion accepts; text beyond 100 pieces is cut and marked as truncated."""
    if not text:
        return []
    limit = RICH_TEXT_CHUNK * RICH_TEXT_MAX_CHUNKS
    if _utf16_len(text) > limit:
        text = _cut_to_units(text, limit - _utf16_len(TRUNCATION_MARK)) + TRUNCATION_MARK
    if _utf16_len(text) == len(text):  # no characters outside the BMP: plain slicing is exact
        return [text[i : i + RICH_TEXT_CHUNK] for i in range(0, len(text), RICH_TEXT_CHUNK)]
    chunks: list[str] = []
    current: list[str] = []
    units = 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if units + width > RICH_TEXT_CHUNK:
            chunks.append("".join(current))
            current, units = [], 0
        current.append(ch)
        units += width
    if current:
        chunks.append("".join(current))
    return chunks


def _cut_to_units(text: str, units: int) -> str:
    out: list[str] = []
    used = 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > units:
            break
        out.append(ch)
        used += width
    return "".join(out)


def stored_text(text: str) -> str:
    """What Notion will hold after writing `text` (identical unless it had to be truncated)."""
    return "".join(text_chunks(text))


def rich_text(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": chunk}} for chunk in text_chunks(text)]


def title_value(text: str) -> dict[str, Any]:
    return {"title": rich_text(text)}


def text_value(text: str) -> dict[str, Any]:
    return {"rich_text": rich_text(text)}


def select_value(name: str | None) -> dict[str, Any]:
    """A select value; None clears it. Names Notion would refuse are refused here, with the reason."""
    if name is None or name == "":
        return {"select": None}
    if "," in name:
        raise NotionInvalidEntry(f"Notion select options cannot contain commas: {name!r}")
    if len(name) > SELECT_OPTION_MAX:
        raise NotionInvalidEntry(f"Notion select options are at most {SELECT_OPTION_MAX} characters: {name[:40]!r}…")
    return {"select": {"name": name}}


def url_value(url: str | None) -> dict[str, Any]:
    """A URL value; None or "" clears it."""
    if not url:
        return {"url": None}
    if len(url) > URL_MAX:
        raise NotionInvalidEntry(f"Notion URLs are at most {URL_MAX} characters; got {len(url)}")
    return {"url": url}


def number_value(value: float | None) -> dict[str, Any]:
    return {"number": value}


def date_value(when: datetime) -> dict[str, Any]:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return {"date": {"start": when.isoformat()}}


def new_entry_properties(
    *,
    title: str,
    channel: str,
    topic: str,
    story_direction: str,
    priority: Priority | str,
    status: NotionStatus | str,
    now: datetime,
) -> dict[str, dict[str, Any]]:
    """The `properties` of a new page."""
    return {
        Prop.TITLE: title_value(title),
        Prop.CHANNEL: select_value(channel),
        Prop.TOPIC: text_value(topic),
        Prop.STORY_DIRECTION: text_value(story_direction),
        Prop.STATUS: select_value(str(status)),
        Prop.PRIORITY: select_value(str(priority)),
        Prop.UPDATED: date_value(now),
    }


# Fields the pipeline writes back: VideoEntry field -> (property, kind).
WRITABLE_FIELDS: dict[str, tuple[str, str]] = {
    "status": (Prop.STATUS, "select"),
    "error": (Prop.ERROR, "text"),
    "cost_usd": (Prop.COST, "number"),
    "video_url": (Prop.VIDEO_URL, "url"),
    "workspace": (Prop.WORKSPACE, "text"),
    "run_url": (Prop.RUN, "url"),
    "review": (Prop.REVIEW, "select"),
    "review_notes": (Prop.REVIEW_NOTES, "text"),
}


def _normalized(kind: str, value: Any) -> Any:
    """The value as Notion will hold it, so that "nothing changed" is judged on what is stored."""
    if kind == "text":
        return stored_text(value or "")
    if kind in ("url", "select"):
        return value or None
    if kind == "number":
        return None if value is None else float(value)
    raise ValueError(f"unknown property kind {kind!r}")


def _encode(kind: str, value: Any) -> dict[str, Any]:
    if kind == "text":
        return text_value(value or "")
    if kind == "url":
        return url_value(value)
    if kind == "select":
        return select_value(value)
    return number_value(value)


def property_changes(entry: VideoEntry, changes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The property payload for the `changes` (field -> new value) that differ from `entry`.

    Only fields in WRITABLE_FIELDS are accepted; an empty result means no request is needed.
    """
    payload: dict[str, dict[str, Any]] = {}
    for field, new in changes.items():
        if field not in WRITABLE_FIELDS:
            raise ValueError(f"{field!r} is not a field the pipeline writes to Notion")
        prop, kind = WRITABLE_FIELDS[field]
        new = str(new) if kind == "select" and new is not None else new
        if _normalized(kind, new) != _normalized(kind, getattr(entry, field)):
            payload[prop] = _encode(kind, new)
    return payload
