"""validate_entry: every kind of malformed entry is named, in words a person can act on."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from vidgen.channels import Channel, StyleConfig
from vidgen.models import VideoEntry
from vidgen.validation import STORY_DIRECTION_MAX, TITLE_MAX, TOPIC_MAX, normalized_title, validate_entry


def _channel(cid: str, value: str, *, active: bool = True) -> Channel:
    return Channel(id=cid, name=value, notion_value=value, active=active, style=StyleConfig(preamble="p"))


CHANNELS = {
    "wild_frontiers": _channel("wild_frontiers", "Wild Frontiers"),
    "chronicle_vault": _channel("chronicle_vault", "Chronicle Vault"),
    "retired_show": _channel("retired_show", "Retired Show", active=False),
}


def _entry(**fields: object) -> VideoEntry:
    base: dict[str, object] = {
        "page_id": "p-1",
        "title": "Wolves of Yellowstone",
        "channel": "Wild Frontiers",
        "topic": "How wolves changed the rivers of Yellowstone",
        "status": "Queued",
        "priority": "Normal",
        "created_time": datetime(2026, 1, 1, tzinfo=timezone.utc),
    }
    base.update(fields)
    return VideoEntry.model_validate(base)


def test_a_good_entry_has_no_reasons() -> None:
    assert validate_entry(_entry(), CHANNELS) == []


def test_channel_may_be_given_by_id_too() -> None:
    assert validate_entry(_entry(channel="wild_frontiers"), CHANNELS) == []


def test_empty_priority_defaults_to_normal_and_is_fine() -> None:
    assert validate_entry(_entry(priority=None), CHANNELS) == []
    assert validate_entry(_entry(priority=""), CHANNELS) == []


def test_long_story_direction_within_limit_and_multiline_is_fine() -> None:
    direction = "Open on the river.\n\nThen the wolves." + "x" * (STORY_DIRECTION_MAX - 40)
    assert validate_entry(_entry(story_direction=direction), CHANNELS) == []


def test_non_latin_topic_and_title_are_fine() -> None:
    assert validate_entry(_entry(title="狼の川", topic="狼"), CHANNELS) == []


# (fields, words the single reason must contain)
MALFORMED: list[tuple[str, dict[str, object], list[str]]] = [
    ("title empty", {"title": ""}, ["Title is empty"]),
    ("title only spaces", {"title": "   \u00a0 "}, ["Title is only spaces"]),
    ("title too long", {"title": "W" * (TITLE_MAX + 1)}, [f"{TITLE_MAX + 1} characters", f"{TITLE_MAX} or fewer"]),
    ("title with newline", {"title": "Wolves\nof Yellowstone"}, ["line break", "one line"]),
    ("title with control char", {"title": "Wolves\x07"}, ["U+0007"]),
    ("title only punctuation", {"title": "?!…"}, ["Title has no letters or digits"]),
    ("topic empty", {"topic": ""}, ["Topic is empty"]),
    ("topic only spaces", {"topic": " \t\n "}, ["Topic is only spaces"]),
    ("topic too long", {"topic": "t" * (TOPIC_MAX + 1)}, [f"{TOPIC_MAX} or fewer", "Story Direction"]),
    ("topic is a url", {"topic": "  https://en.wikipedia.org/wiki/Wolf  "}, ["Topic is only a link"]),
    ("topic is www link", {"topic": "www.example.com/wolves"}, ["Topic is only a link"]),
    ("topic only punctuation", {"topic": "--- ??? ---"}, ["Topic has no letters or digits"]),
    ("story direction too long", {"story_direction": "d" * (STORY_DIRECTION_MAX + 1)}, ["Story Direction", f"{STORY_DIRECTION_MAX}"]),
    ("channel missing", {"channel": None}, ["Channel is not set", "Chronicle Vault, Wild Frontiers"]),
    ("channel blank", {"channel": "  "}, ["Channel is not set"]),
    ("channel unknown", {"channel": "Cooking Corner"}, ["'Cooking Corner' is not a configured channel", "Wild Frontiers"]),
    ("channel inactive", {"channel": "Retired Show"}, ["'Retired Show' is inactive"]),
    ("priority unknown", {"priority": "Urgent"}, ["Priority 'Urgent' is not one of Low, Normal, High"]),
    ("priority wrong case", {"priority": "high"}, ["Priority 'high'"]),
    ("status unknown", {"status": "Rendering"}, ["Status 'Rendering' is not one of the board's 26 statuses"]),
    ("status empty", {"status": ""}, ["Status is empty"]),
]


@pytest.mark.parametrize(("kind", "fields", "words"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_each_malformed_kind_gives_one_reason(kind: str, fields: dict[str, object], words: list[str]) -> None:
    reasons = validate_entry(_entry(**fields), CHANNELS)
    assert len(reasons) == 1, reasons
    for word in words:
        assert word in reasons[0]


def test_inactive_channel_is_not_offered_as_a_choice() -> None:
    (reason,) = validate_entry(_entry(channel="Nope"), CHANNELS)
    assert "Retired Show" not in reason


def test_every_problem_is_reported_at_once() -> None:
    reasons = validate_entry(_entry(title="", topic="", channel=None, priority="Urgent", status="??"), CHANNELS)
    assert [r.split(" ", 1)[0] for r in reasons] == ["Title", "Channel", "Topic", "Priority", "Status"]


def test_duplicate_title_in_the_same_channel() -> None:
    other = _entry(page_id="p-2", title="  wolves of   YELLOWSTONE ", status="Upload Complete", url="https://notion.so/p2")
    (reason,) = validate_entry(_entry(), CHANNELS, others=[other])
    assert "duplicates another entry in this channel" in reason
    assert "Upload Complete" in reason and "https://notion.so/p2" in reason


def test_duplicate_found_when_the_other_names_the_channel_by_id() -> None:
    other = _entry(page_id="p-2", channel="wild_frontiers")
    assert validate_entry(_entry(), CHANNELS, others=[other])


def test_same_title_in_another_channel_is_not_a_duplicate() -> None:
    other = _entry(page_id="p-2", channel="Chronicle Vault")
    assert validate_entry(_entry(), CHANNELS, others=[other]) == []


def test_the_entry_itself_and_archived_entries_are_not_duplicates() -> None:
    itself = _entry()
    archived = _entry(page_id="p-3", archived=True)
    assert validate_entry(_entry(), CHANNELS, others=[itself, archived]) == []


def test_normalized_title_ignores_case_and_spacing() -> None:
    assert normalized_title("  Wolves  of\u00a0Yellowstone ") == normalized_title("wolves of yellowstone")
