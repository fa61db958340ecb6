"""Querying a data source through unmodified notion-client: every filter kind, sorts, and pagination."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import notion_client
import pytest
from notion_client.helpers import async_collect_paginated_api, collect_paginated_api

from vidgen.notion.server import LocalNotionServer

ROWS: list[dict[str, Any]] = [
    dict(title="Alpha launch", channel="tech", topic="GPU news", status="Queued", priority="High", cost=1.5,
         updated="2024-03-01", done=False, url="https://example.com/a", stage="In progress"),
    dict(title="beta Review", channel="cooking", topic="Pasta recipes", status="Draft", priority="Low", cost=0,
         updated="2024-03-02T10:00:00Z", done=True, stage="Done"),
    dict(title="Gamma", channel="tech", status="Queued", priority="Normal", done=False),
    dict(title="Delta alpha", topic="alpha topic", status="Error", priority="High", cost=12.25,
         updated="2024-02-28", done=True, url="https://example.com/d", stage="Not started"),
    dict(title="Epsilon", channel="cooking", topic="pasta", status="Draft", priority="Normal", cost=-3,
         updated="2024-03-01T23:30:00Z", done=False),
]  # fmt: skip
ALL = {row["title"] for row in ROWS}
PAGED = 250


class Seeded:
    def __init__(self, server: LocalNotionServer, client: notion_client.Client, rows_ds: str, paged_ds: str,
                 created: dict[str, str], edited_title: str, edited_after: str) -> None:  # fmt: skip
        self.server, self.client, self.rows_ds, self.paged_ds = server, client, rows_ds, paged_ds
        self.created, self.edited_title, self.edited_after = created, edited_title, edited_after


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, videos: Any) -> Iterator[Seeded]:
    """One server for the module's read-only queries: the 5 designed rows and a 250-row table."""
    with LocalNotionServer(tmp_path_factory.mktemp("notion") / "store.sqlite") as server:
        client = notion_client.Client(auth=server.token, base_url=server.base_url)
        _, rows_ds = videos.create(client, "Filters")
        created = {}
        for row in ROWS:
            page = client.pages.create(parent={"data_source_id": rows_ds}, properties=videos.props(**row))
            created[row["title"]] = page["created_time"]
        _, paged_ds = videos.create(client, "Paging")
        for i in range(PAGED):
            props = videos.props(f"row {i:03d}", cost=i % 7, channel="tech" if i % 2 else "cooking")
            client.pages.create(parent={"data_source_id": paged_ds}, properties=props)
        last_created = max(created.values())
        time.sleep(0.01)
        gamma = client.data_sources.query(rows_ds, filter={"property": "Title", "title": {"equals": "Gamma"}})
        client.pages.update(gamma["results"][0]["id"], properties={"Topic": {"rich_text": videos.text("edited")}})
        client.pages.update(gamma["results"][0]["id"], properties={"Topic": {"rich_text": []}})
        yield Seeded(server, client, rows_ds, paged_ds, created, "Gamma", last_created)
        client.close()


def titles(seeded: Seeded, videos: Any, **body: Any) -> set[str]:
    return {videos.title_of(p) for p in videos.query_all(seeded.client, seeded.rows_ds, **body)}


def ordered_titles(seeded: Seeded, videos: Any, sorts: list[dict[str, Any]]) -> list[str]:
    return [videos.title_of(p) for p in videos.query_all(seeded.client, seeded.rows_ds, sorts=sorts)]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"property": "Title", "title": {"equals": "Gamma"}}, {"Gamma"}),
        ({"property": "Title", "title": {"equals": "gamma"}}, set()),
        ({"property": "Title", "title": {"does_not_equal": "Gamma"}}, ALL - {"Gamma"}),
        ({"property": "Title", "title": {"contains": "ALPHA"}}, {"Alpha launch", "Delta alpha"}),
        ({"property": "Title", "title": {"does_not_contain": "alpha"}}, {"beta Review", "Gamma", "Epsilon"}),
        ({"property": "Title", "title": {"starts_with": "Be"}}, {"beta Review"}),
        ({"property": "Title", "title": {"ends_with": "A"}}, {"Gamma", "Delta alpha"}),
        ({"property": "Title", "rich_text": {"contains": "launch"}}, {"Alpha launch"}),
        ({"property": "Topic", "rich_text": {"is_empty": True}}, {"Gamma"}),
        ({"property": "Topic", "rich_text": {"is_not_empty": True}}, ALL - {"Gamma"}),
        ({"property": "Topic", "rich_text": {"contains": "pasta"}}, {"beta Review", "Epsilon"}),
        ({"property": "Video URL", "url": {"contains": "example.com/d"}}, {"Delta alpha"}),
        ({"property": "Video URL", "url": {"is_empty": True}}, {"beta Review", "Gamma", "Epsilon"}),
        ({"property": "Channel", "select": {"equals": "tech"}}, {"Alpha launch", "Gamma"}),
        ({"property": "Channel", "select": {"does_not_equal": "tech"}}, {"beta Review", "Delta alpha", "Epsilon"}),
        ({"property": "Channel", "select": {"is_empty": True}}, {"Delta alpha"}),
        ({"property": "Channel", "select": {"is_not_empty": True}}, ALL - {"Delta alpha"}),
        ({"property": "Stage", "status": {"equals": "Done"}}, {"beta Review"}),
        ({"property": "Stage", "status": {"does_not_equal": "Done"}}, ALL - {"beta Review"}),
        ({"property": "Stage", "status": {"is_empty": True}}, {"Gamma", "Epsilon"}),
        ({"property": "Stage", "status": {"is_not_empty": True}}, {"Alpha launch", "beta Review", "Delta alpha"}),
        ({"property": "Cost", "number": {"equals": 0}}, {"beta Review"}),
        ({"property": "Cost", "number": {"does_not_equal": 0}}, ALL - {"beta Review"}),
        ({"property": "Cost", "number": {"greater_than": 1.5}}, {"Delta alpha"}),
        ({"property": "Cost", "number": {"less_than": 0}}, {"Epsilon"}),
        ({"property": "Cost", "number": {"greater_than_or_equal_to": 1.5}}, {"Alpha launch", "Delta alpha"}),
        ({"property": "Cost", "number": {"less_than_or_equal_to": 0}}, {"beta Review", "Epsilon"}),
        ({"property": "Cost", "number": {"is_empty": True}}, {"Gamma"}),
        ({"property": "Cost", "number": {"is_not_empty": True}}, ALL - {"Gamma"}),
        ({"property": "Updated", "date": {"equals": "2024-03-01"}}, {"Alpha launch", "Epsilon"}),
        ({"property": "Updated", "date": {"before": "2024-03-01"}}, {"Delta alpha"}),
        ({"property": "Updated", "date": {"after": "2024-03-01"}}, {"beta Review"}),
        ({"property": "Updated", "date": {"on_or_before": "2024-03-01"}}, {"Alpha launch", "Delta alpha", "Epsilon"}),
        ({"property": "Updated", "date": {"on_or_after": "2024-03-01"}}, {"Alpha launch", "beta Review", "Epsilon"}),
        ({"property": "Updated", "date": {"after": "2024-03-01T12:00:00Z"}}, {"beta Review", "Epsilon"}),
        ({"property": "Updated", "date": {"is_empty": True}}, {"Gamma"}),
        ({"property": "Updated", "date": {"is_not_empty": True}}, ALL - {"Gamma"}),
        ({"property": "Done", "checkbox": {"equals": True}}, {"beta Review", "Delta alpha"}),
        ({"property": "Done", "checkbox": {"does_not_equal": True}}, {"Alpha launch", "Gamma", "Epsilon"}),
    ],
)
def test_property_filters(seeded: Seeded, videos: Any, condition: dict[str, Any], expected: set[str]) -> None:
    assert titles(seeded, videos, filter=condition) == expected


def test_compound_filters_nest(seeded: Seeded, videos: Any) -> None:
    both = {"and": [
        {"property": "Channel", "select": {"equals": "tech"}},
        {"property": "Status", "select": {"equals": "Queued"}},
        {"property": "Priority", "select": {"equals": "High"}},
    ]}  # fmt: skip
    assert titles(seeded, videos, filter=both) == {"Alpha launch"}
    either = {
        "or": [{"property": "Cost", "number": {"greater_than": 10}}, {"property": "Done", "checkbox": {"equals": True}}]
    }
    assert titles(seeded, videos, filter=either) == {"beta Review", "Delta alpha"}
    nested = {"or": [
        {"and": [
            {"property": "Channel", "select": {"equals": "cooking"}},
            {"property": "Cost", "number": {"less_than": 0}},
        ]},
        {"property": "Title", "title": {"equals": "Gamma"}},
    ]}  # fmt: skip
    assert titles(seeded, videos, filter=nested) == {"Epsilon", "Gamma"}


def test_timestamp_filters(seeded: Seeded, videos: Any) -> None:
    cut = seeded.created["beta Review"]
    later = {t for t, created in seeded.created.items() if created > cut}
    assert "Epsilon" in later
    assert titles(seeded, videos, filter={"timestamp": "created_time", "created_time": {"after": cut}}) == later
    assert titles(seeded, videos, filter={"property": "Created", "created_time": {"after": cut}}) == later
    assert titles(seeded, videos, filter={"property": "Created", "date": {"on_or_before": cut}}) == ALL - later
    edited = {"timestamp": "last_edited_time", "last_edited_time": {"after": seeded.edited_after}}
    assert titles(seeded, videos, filter=edited) == {seeded.edited_title}
    assert (
        titles(seeded, videos, filter={"timestamp": "last_edited_time", "last_edited_time": {"past_week": {}}}) == ALL
    )


@pytest.mark.parametrize(
    ("sorts", "expected"),
    [
        (
            [{"property": "Cost", "direction": "ascending"}],
            ["Epsilon", "beta Review", "Alpha launch", "Delta alpha", "Gamma"],
        ),
        (
            [{"property": "Cost", "direction": "descending"}],
            ["Delta alpha", "Alpha launch", "beta Review", "Epsilon", "Gamma"],
        ),
        (
            [{"property": "Title", "direction": "ascending"}],
            ["Alpha launch", "beta Review", "Delta alpha", "Epsilon", "Gamma"],
        ),
        (
            [{"property": "Priority", "direction": "ascending"}, {"property": "Title", "direction": "descending"}],
            ["Delta alpha", "Alpha launch", "Gamma", "Epsilon", "beta Review"],
        ),
        (
            [{"property": "Updated", "direction": "descending"}],
            ["beta Review", "Epsilon", "Alpha launch", "Delta alpha", "Gamma"],
        ),
        ([{"timestamp": "created_time", "direction": "ascending"}], [row["title"] for row in ROWS]),
        ([{"timestamp": "created_time", "direction": "descending"}], [row["title"] for row in reversed(ROWS)]),
        (
            [{"timestamp": "last_edited_time", "direction": "descending"}],
            ["Gamma"] + [r["title"] for r in reversed(ROWS) if r["title"] != "Gamma"],
        ),
    ],
)
def test_sorts(seeded: Seeded, videos: Any, sorts: list[dict[str, Any]], expected: list[str]) -> None:
    assert ordered_titles(seeded, videos, sorts) == expected


def test_pagination_sees_every_page_exactly_once(seeded: Seeded) -> None:
    responses = []
    cursor = None
    while True:
        response = seeded.client.data_sources.query(seeded.paged_ds, page_size=100, start_cursor=cursor)
        responses.append(response)
        cursor = response["next_cursor"]
        if not response["has_more"]:
            break
    assert [len(r["results"]) for r in responses] == [100, 100, 50]
    assert [r["has_more"] for r in responses] == [True, True, False]
    assert responses[-1]["next_cursor"] is None
    assert all(r["object"] == "list" and r["type"] == "page_or_data_source" for r in responses)
    ids = [page["id"] for r in responses for page in r["results"]]
    assert len(ids) == len(set(ids)) == PAGED


def test_pagination_under_sorts_with_ties_keeps_order(seeded: Seeded, videos: Any) -> None:
    sorts = [{"property": "Cost", "direction": "descending"}, {"property": "Channel", "direction": "ascending"}]
    pages = collect_paginated_api(
        seeded.client.data_sources.query, data_source_id=seeded.paged_ds, sorts=sorts, page_size=30
    )
    assert len({p["id"] for p in pages}) == PAGED == len(pages)
    costs = [p["properties"]["Cost"]["number"] for p in pages]
    assert costs == sorted(costs, reverse=True)
    single = seeded.client.data_sources.query(seeded.paged_ds, sorts=sorts)["results"]  # default page_size 100
    assert [p["id"] for p in single] == [p["id"] for p in pages[:100]]


async def test_async_client_paginates(seeded: Seeded) -> None:
    async with notion_client.AsyncClient(auth=seeded.server.token, base_url=seeded.server.base_url) as client:
        pages = await async_collect_paginated_api(
            client.data_sources.query,
            data_source_id=seeded.paged_ds,
            page_size=100,
            filter={"property": "Channel", "select": {"equals": "tech"}},
        )
    assert len(pages) == len({p["id"] for p in pages}) == PAGED // 2
    assert all(p["properties"]["Channel"]["select"]["name"] == "tech" for p in pages)


def test_filter_properties_limits_returned_properties(seeded: Seeded) -> None:
    schema = seeded.client.data_sources.retrieve(seeded.rows_ds)["properties"]
    wanted = [schema["Title"]["id"], schema["Cost"]["id"]]
    page = seeded.client.data_sources.query(seeded.rows_ds, filter_properties=wanted, page_size=1)["results"][0]
    assert set(page["properties"]) == {"Title", "Cost"}


def test_cursor_resumes_by_position_when_rows_change(tmp_path: Path, videos: Any) -> None:
    """Rows added or trashed between requests neither repeat nor hide the rows not yet seen."""
    with LocalNotionServer(tmp_path / "store.sqlite") as server:
        client = notion_client.Client(auth=server.token, base_url=server.base_url)
        _, ds = videos.create(client)
        for i in range(30):
            client.pages.create(parent={"data_source_id": ds}, properties=videos.props(f"r{i:02d}"))
        oldest_first = [{"timestamp": "created_time", "direction": "ascending"}]
        first = client.data_sources.query(ds, sorts=oldest_first, page_size=10)
        client.pages.update(first["results"][0]["id"], in_trash=True)
        client.pages.create(parent={"data_source_id": ds}, properties=videos.props("late"))
        rest = videos.query_all(client, ds, sorts=oldest_first, page_size=10, start_cursor=first["next_cursor"])
        seen = [videos.title_of(p) for p in first["results"] + rest]
        assert seen == [f"r{i:02d}" for i in range(30)] + ["late"]
        client.close()
