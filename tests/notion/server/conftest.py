"""A Video-Pipeline-like table for the local Notion server tests, built through notion-client."""

from __future__ import annotations

from typing import Any

import pytest

VIDEO_SCHEMA: dict[str, Any] = {
    "Title": {"title": {}},
    "Channel": {"select": {"options": [{"name": "tech", "color": "blue"}, {"name": "cooking", "color": "green"}]}},
    "Topic": {"rich_text": {}},
    "Status": {"select": {"options": [{"name": "Draft"}, {"name": "Queued"}, {"name": "Error"}]}},
    "Priority": {"select": {"options": [{"name": "High"}, {"name": "Normal"}, {"name": "Low"}]}},
    "Cost": {"number": {"format": "dollar"}},
    "Updated": {"date": {}},
    "Done": {"checkbox": {}},
    "Video URL": {"url": {}},
    "Stage": {"status": {}},
    "Created": {"created_time": {}},
    "Last Edited": {"last_edited_time": {}},
}


def text(content: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": content}}]


def video_properties(
    title: str,
    *,
    channel: str | None = None,
    topic: str | None = None,
    status: str | None = None,
    priority: str | None = None,
    cost: float | None = None,
    updated: str | None = None,
    done: bool | None = None,
    url: str | None = None,
    stage: str | None = None,
) -> dict[str, Any]:
    """Request properties for one row; None leaves a property unset."""
    props: dict[str, Any] = {"Title": {"title": text(title)}}
    if channel is not None:
        props["Channel"] = {"select": {"name": channel}}
    if topic is not None:
        props["Topic"] = {"rich_text": text(topic)}
    if status is not None:
        props["Status"] = {"select": {"name": status}}
    if priority is not None:
        props["Priority"] = {"select": {"name": priority}}
    if cost is not None:
        props["Cost"] = {"number": cost}
    if updated is not None:
        props["Updated"] = {"date": {"start": updated}}
    if done is not None:
        props["Done"] = {"checkbox": done}
    if url is not None:
        props["Video URL"] = {"url": url}
    if stage is not None:
        props["Stage"] = {"status": {"name": stage}}
    return props


def title_of(page: dict[str, Any]) -> str:
    return "".join(item["plain_text"] for item in page["properties"]["Title"]["title"])


class VideoTable:
    """Helpers the server tests share (exposed as a fixture: tests have no packages to import from)."""

    schema = VIDEO_SCHEMA
    props = staticmethod(video_properties)
    title_of = staticmethod(title_of)
    text = staticmethod(text)

    @staticmethod
    def create(client: Any, title: str = "Video Pipeline") -> tuple[str, str]:
        """(database_id, data_source_id) of a new table."""
        database = client.databases.create(
            parent={"type": "page_id", "page_id": "0c1b2a39-48d7-4e65-a3f2-1b0c9d8e7f6a"},
            title=text(title),
            initial_data_source={"properties": VIDEO_SCHEMA},
        )
        return database["id"], database["data_sources"][0]["id"]

    @staticmethod
    def query_all(
        client: Any, data_source_id: str, start_cursor: str | None = None, **body: Any
    ) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        cursor = start_cursor
        while True:
            response = client.data_sources.query(data_source_id, start_cursor=cursor, **body)
            results.extend(response["results"])
            cursor = response["next_cursor"]
            if not response["has_more"]:
                return results


@pytest.fixture(scope="session")
def videos() -> type[VideoTable]:
    return VideoTable
