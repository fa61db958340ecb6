"""Is this Notion entry something the pipeline can make a video from? Every reason, in plain words.

The reasons are written back onto the page (the Error column) when a Queued entry is refused, so
each one names the column and says what to change. All problems are reported at once: a person
fixing one column per poll would wait a minute per mistake.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from vidgen.channels import Channel, channel_for_notion_value
from vidgen.models import OVERLONG_READ_FACTOR, STORY_DIRECTION_MAX, TITLE_MAX, TOPIC_MAX, Priority, VideoEntry
from vidgen.statuses import NotionStatus

__all__ = ["STORY_DIRECTION_MAX", "TITLE_MAX", "TOPIC_MAX", "normalized_title", "validate_entry"]

_URL_ONLY = re.compile(r"^(?:https?://|www\.)\S+$", re.IGNORECASE)


def _control_chars(text: str) -> list[str]:
    """Newlines, tabs and other invisible control characters (Unicode category Cc)."""
    return [ch for ch in text if unicodedata.category(ch) == "Cc"]


def _describe_control(chars: list[str]) -> str:
    names = {"\n": "line break", "\r": "carriage return", "\t": "tab"}
    seen = sorted({names.get(ch, f"control character U+{ord(ch):04X}") for ch in chars})
    return ", ".join(seen)


def _length(text: str, limit: int) -> str:
    """How long a too-long value is, in words a person reads ("at least" when it was cut on reading)."""
    if len(text) >= limit * OVERLONG_READ_FACTOR:
        return f"at least {len(text)} characters long"
    return f"{len(text)} characters long"


def _has_word_characters(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def normalized_title(title: str) -> str:
    """The form duplicate checks compare: case, surrounding and repeated spaces do not make a new title."""
    return " ".join(title.split()).casefold()


def _title_reasons(title: str) -> list[str]:
    if not title:
        return ["Title is empty — give the video a title"]
    if not title.strip():
        return ["Title is only spaces — give the video a title"]
    reasons: list[str] = []
    if len(title) > TITLE_MAX:
        reasons.append(f"Title is {_length(title, TITLE_MAX)} — keep it to {TITLE_MAX} or fewer")
    control = _control_chars(title)
    if control:
        reasons.append(f"Title contains a {_describe_control(control)} — keep the title on one line")
    if not _has_word_characters(title):
        reasons.append("Title has no letters or digits — give the video a real title")
    return reasons


def _topic_reasons(topic: str) -> list[str]:
    if not topic:
        return ["Topic is empty — say what the video is about"]
    if not topic.strip():
        return ["Topic is only spaces — say what the video is about"]
    reasons: list[str] = []
    if len(topic) > TOPIC_MAX:
        reasons.append(f"Topic is {_length(topic, TOPIC_MAX)} — keep it to {TOPIC_MAX} or fewer (put detail in Story Direction)")
    stripped = topic.strip()
    if _URL_ONLY.match(stripped):
        reasons.append("Topic is only a link — describe the subject in words (the writer cannot open links)")
    elif not _has_word_characters(stripped):
        reasons.append("Topic has no letters or digits — describe the subject in words")
    return reasons


def _story_direction_reasons(direction: str) -> list[str]:
    if len(direction) > STORY_DIRECTION_MAX:
        return [
            f"Story Direction is {_length(direction, STORY_DIRECTION_MAX)} — keep it to {STORY_DIRECTION_MAX} or fewer "
            "(it guides the script; it is not the script)"
        ]
    return []


def _channel_reasons(channel: str | None, channels: dict[str, Channel]) -> list[str]:
    configured = ", ".join(sorted(ch.notion_value for ch in channels.values() if ch.active)) or "none"
    if channel is None or not channel.strip():
        return [f"Channel is not set — pick one of: {configured}"]
    found = channel_for_notion_value(channels, channel)
    if found is None:
        return [f"Channel {channel!r} is not a configured channel — pick one of: {configured} (or add a file in channels/)"]
    if not found.active:
        return [f"Channel {channel!r} is inactive (active: false in its channel file) — pick an active channel or reactivate it"]
    return []


def _priority_reasons(priority: str | None) -> list[str]:
    if priority is None or priority == "":
        return []  # Normal by default
    try:
        Priority(priority)
    except ValueError:
        allowed = ", ".join(p.value for p in Priority)
        return [f"Priority {priority!r} is not one of {allowed} — pick one (or leave it empty for Normal)"]
    return []


def _status_reasons(status: str) -> list[str]:
    if NotionStatus.parse(status) is not None:
        return []
    if not status:
        return ["Status is empty — set it to Draft, or Queued to start the video"]
    return [f"Status {status!r} is not one of the board's 26 statuses — set it to Draft or Queued"]


def _duplicate_reasons(entry: VideoEntry, channels: dict[str, Channel], others: Iterable[VideoEntry]) -> list[str]:
    key = normalized_title(entry.title)
    if not key:
        return []
    mine = channel_for_notion_value(channels, entry.channel)
    mine_id = mine.id if mine else entry.channel
    for other in others:
        if other.page_id == entry.page_id or other.archived:
            continue
        theirs = channel_for_notion_value(channels, other.channel)
        if (theirs.id if theirs else other.channel) != mine_id:
            continue
        if normalized_title(other.title) == key:
            where = f" ({other.url})" if other.url else ""
            return [
                f"Title duplicates another entry in this channel, {other.title!r} (status {other.status or 'empty'}){where} "
                "— rename one, or archive the other"
            ]
    return []


def validate_entry(entry: VideoEntry, channels: dict[str, Channel], *, others: Iterable[VideoEntry] = ()) -> list[str]:
    """Why `entry` cannot be produced; an empty list means it can.

    `others` are entries to check for duplicate titles (the entry itself and archived ones are
    ignored). Never raises: whatever a page holds becomes a reason, not an exception.
    """
    return [
        *_title_reasons(entry.title),
        *_channel_reasons(entry.channel, channels),
        *_topic_reasons(entry.topic),
        *_story_direction_reasons(entry.story_direction),
        *_priority_reasons(entry.priority),
        *_status_reasons(entry.status),
        *_duplicate_reasons(entry, channels, others),
    ]
