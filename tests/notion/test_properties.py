"""Page JSON <-> VideoEntry: reading keeps raw values and never raises; writing respects Notion's limits."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from vidgen.models import VideoEntry
from vidgen.notion.errors import NotionInvalidEntry
from vidgen.notion.properties import (
    TRUNCATION_MARK,
    date_value,
    entry_from_page,
    new_entry_properties,
    property_changes,
    rich_text,
    select_value,
    stored_text,
    text_chunks,
    url_value,
)
from vidgen.notion.schema import Prop, database_properties
from vidgen.statuses import NotionStatus


def _rt(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": text, "link": None}, "plain_text": text, "annotations": {}}]


def _page(**props: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        Prop.TITLE: {"id": "title", "type": "title", "title": _rt("Wolves")},
        Prop.CHANNEL: {"id": "a", "type": "select", "select": {"id": "o1", "name": "Wild Frontiers", "color": "blue"}},
        Prop.TOPIC: {"id": "b", "type": "rich_text", "rich_text": _rt("Wolves ") + _rt("and rivers")},
        Prop.STORY_DIRECTION: {"id": "c", "type": "rich_text", "rich_text": []},
        Prop.STATUS: {"id": "d", "type": "select", "select": {"name": "Queued"}},
        Prop.PRIORITY: {"id": "e", "type": "select", "select": {"name": "High"}},
        Prop.ERROR: {"id": "f", "type": "rich_text", "rich_text": []},
        Prop.COST: {"id": "g", "type": "number", "number": 1.25},
        Prop.VIDEO_URL: {"id": "h", "type": "url", "url": None},
        Prop.WORKSPACE: {"id": "i", "type": "rich_text", "rich_text": _rt("/w/abc")},
        Prop.RUN: {"id": "j", "type": "url", "url": "http://127.0.0.1:4200/runs/flow-run/1"},
        Prop.REVIEW: {"id": "k", "type": "select", "select": None},
        Prop.REVIEW_NOTES: {"id": "l", "type": "rich_text", "rich_text": _rt("redo: 2")},
    }
    base.update(props)
    return {
        "object": "page",
        "id": "11111111-2222-3333-4444-555555555555",
        "created_time": "2026-01-02T03:04:00.000Z",
        "last_edited_time": "2026-01-02T05:00:00.000Z",
        "in_trash": False,
        "url": "https://www.notion.so/Wolves-111",
        "properties": {k: v for k, v in base.items() if v is not None},
    }


def test_reads_every_field() -> None:
    e = entry_from_page(_page())
    assert e.page_id == "11111111-2222-3333-4444-555555555555"
    assert (e.title, e.channel, e.topic, e.story_direction) == ("Wolves", "Wild Frontiers", "Wolves and rivers", "")
    assert (e.status, e.priority, e.cost_usd, e.video_url) == ("Queued", "High", 1.25, None)
    assert (e.workspace, e.run_url, e.review, e.review_notes) == ("/w/abc", "http://127.0.0.1:4200/runs/flow-run/1", None, "redo: 2")
    assert e.created_time == datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)
    assert e.last_edited_time == datetime(2026, 1, 2, 5, 0, tzinfo=timezone.utc)
    assert e.url == "https://www.notion.so/Wolves-111" and e.archived is False


def test_keeps_invalid_raw_values() -> None:
    page = _page(**{
        Prop.STATUS: {"type": "select", "select": {"name": "Rendering"}},
        Prop.PRIORITY: {"type": "select", "select": {"name": "Urgent"}},
        Prop.CHANNEL: {"type": "select", "select": {"name": "Cooking Corner"}},
    })
    e = entry_from_page(page)
    assert (e.status, e.priority, e.channel) == ("Rendering", "Urgent", "Cooking Corner")
    assert e.notion_status is None


def test_empty_status_is_kept_empty_not_defaulted() -> None:
    e = entry_from_page(_page(**{Prop.STATUS: {"type": "select", "select": None}}))
    assert e.status == "" and e.notion_status is None


@pytest.mark.parametrize(
    "page",
    [
        {},
        {"id": "x", "properties": None},
        {"id": "x", "properties": {"Title": "not a dict", "Status": {"type": "select", "select": "Queued"}}},
        {"id": "x", "properties": {"Title": {"type": "title", "title": [None, 5, {"text": "bad"}]}}},
        {"id": "x", "created_time": "yesterday", "properties": {"Cost": {"type": "number", "number": True}}},
        {"id": "x", "properties": {"Topic": {"type": "select", "select": {"name": "wrong type"}}}},
    ],
)
def test_malformed_pages_never_raise(page: dict[str, Any]) -> None:
    e = entry_from_page(page)
    assert e.title == "" and e.topic == "" and e.cost_usd is None and e.created_time is None


def test_missing_columns_read_as_empty() -> None:
    page = _page(**{Prop.CHANNEL: None, Prop.TOPIC: None, Prop.COST: None, Prop.RUN: None})
    e = entry_from_page(page)
    assert (e.channel, e.topic, e.cost_usd, e.run_url) == (None, "", None, None)


def test_renamed_title_column_is_still_found_by_type() -> None:
    page = _page(**{Prop.TITLE: None, "Name": {"type": "title", "title": _rt("Renamed")}})
    assert entry_from_page(page).title == "Renamed"


def test_trashed_page_is_archived() -> None:
    page = {**_page(), "in_trash": True}
    assert entry_from_page(page).archived is True
    assert entry_from_page({**_page(), "archived": True}).archived is True


def test_text_is_split_into_2000_char_chunks() -> None:
    text = "a" * 4500
    chunks = text_chunks(text)
    assert [len(c) for c in chunks] == [2000, 2000, 500]
    assert "".join(chunks) == text
    assert rich_text(text)[0] == {"type": "text", "text": {"content": "a" * 2000}}


def test_chunks_count_emoji_as_two_units_and_never_split_one() -> None:
    text = "🐺" * 1500  # 3000 UTF-16 units
    chunks = text_chunks(text)
    assert [len(c.encode("utf-16-le")) // 2 for c in chunks] == [2000, 1000]
    assert "".join(chunks) == text


def test_text_beyond_100_chunks_is_truncated_and_marked() -> None:
    text = "x" * 250_000
    chunks = text_chunks(text)
    assert len(chunks) == 100 and all(len(c) <= 2000 for c in chunks)
    assert stored_text(text).endswith(TRUNCATION_MARK)


def test_empty_text_is_an_empty_array() -> None:
    assert rich_text("") == []


def test_select_and_url_values_refuse_what_notion_refuses() -> None:
    assert select_value(None) == {"select": None}
    assert select_value("High") == {"select": {"name": "High"}}
    with pytest.raises(NotionInvalidEntry, match="commas"):
        select_value("Wolves, Bears")
    assert url_value("") == {"url": None}
    with pytest.raises(NotionInvalidEntry, match="2000"):
        url_value("https://x/" + "a" * 2000)


def test_date_value_is_iso_with_timezone() -> None:
    assert date_value(datetime(2026, 1, 2, 3, 4)) == {"date": {"start": "2026-01-02T03:04:00+00:00"}}


def test_new_entry_properties() -> None:
    props = new_entry_properties(
        title="T", channel="Wild Frontiers", topic="x", story_direction="", priority="Normal",
        status=NotionStatus.DRAFT, now=datetime(2026, 1, 1, tzinfo=timezone.utc),
    )
    assert props[Prop.STATUS] == {"select": {"name": "Draft"}}
    assert props[Prop.STORY_DIRECTION] == {"rich_text": []}
    assert set(props) == {Prop.TITLE, Prop.CHANNEL, Prop.TOPIC, Prop.STORY_DIRECTION, Prop.STATUS, Prop.PRIORITY, Prop.UPDATED}


def _entry(**fields: Any) -> VideoEntry:
    return VideoEntry.model_validate({"page_id": "p", "status": "Processing", **fields})


def test_property_changes_only_include_what_differs() -> None:
    entry = _entry(error="boom", cost_usd=1.5, run_url="http://r/1", review="Approve")
    assert property_changes(entry, {"error": "boom", "cost_usd": 1.5, "run_url": "http://r/1", "status": "Processing"}) == {}
    payload = property_changes(entry, {"error": "", "cost_usd": 2, "run_url": "", "review": None, "status": NotionStatus.ASSETS_GENERATING})
    assert payload == {
        Prop.ERROR: {"rich_text": []},
        Prop.COST: {"number": 2},
        Prop.RUN: {"url": None},
        Prop.REVIEW: {"select": None},
        Prop.STATUS: {"select": {"name": "Assets Generating"}},
    }


def test_a_long_error_already_stored_truncated_is_not_rewritten() -> None:
    long_error = "e" * 300_000
    entry = _entry(error=stored_text(long_error))
    assert property_changes(entry, {"error": long_error}) == {}


def test_property_changes_refuse_fields_the_pipeline_does_not_write() -> None:
    with pytest.raises(ValueError, match="title"):
        property_changes(_entry(), {"title": "new"})


def test_schema_has_every_column_with_its_type() -> None:
    schema = database_properties({})
    types = {name: next(iter(spec)) for name, spec in schema.items()}
    assert types == {
        "Title": "title", "Channel": "select", "Topic": "rich_text", "Story Direction": "rich_text",
        "Status": "select", "Priority": "select", "Error": "rich_text", "Cost": "number", "Video URL": "url",
        "Workspace": "rich_text", "Run": "url", "Review": "select", "Review Notes": "rich_text",
        "Updated": "date", "Created": "created_time", "Last Edited": "last_edited_time",
    }
    assert [o["name"] for o in schema["Status"]["select"]["options"]] == [s.value for s in NotionStatus]
    assert schema["Cost"] == {"number": {"format": "dollar"}}
    assert {o["name"] for o in schema["Priority"]["select"]["options"]} == {"Low", "Normal", "High"}
    assert [o["name"] for o in schema["Review"]["select"]["options"]] == ["Approve", "Reject"]
