"""Databases, data sources and pages through unmodified notion-client: shapes, writes, trash, persistence."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import notion_client
import pytest
from notion_client import APIErrorCode, APIResponseError

from vidgen.notion.server import LocalNotionServer

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[notion_client.Client]:
    """One server for the tests that each make their own database (servers cost ~0.3 s to start/stop)."""
    with LocalNotionServer(tmp_path_factory.mktemp("notion") / "store.sqlite") as server:
        client = notion_client.Client(auth=server.token, base_url=server.base_url)
        yield client
        client.close()


def validation(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(APIResponseError) as caught:
        call(*args, **kwargs)
    assert (caught.value.code, caught.value.status) == (APIErrorCode.ValidationError, 400), str(caught.value)
    return str(caught.value)


def test_database_and_data_source_shapes(shared: notion_client.Client, videos: Any) -> None:
    database_id, ds_id = videos.create(shared, "Video Pipeline")
    database = shared.databases.retrieve(database_id.replace("-", ""))
    assert database["object"] == "database" and database["id"] == database_id
    assert database["data_sources"] == [{"id": ds_id, "name": "Video Pipeline"}]
    assert database["parent"] == {"type": "page_id", "page_id": "0c1b2a39-48d7-4e65-a3f2-1b0c9d8e7f6a"}
    assert database["title"][0]["plain_text"] == "Video Pipeline" and ISO_MS.match(database["created_time"])

    source = shared.data_sources.retrieve(ds_id)
    assert source["object"] == "data_source" and source["parent"] == {"type": "database_id", "database_id": database_id}
    props = source["properties"]
    assert list(props) == list(videos.schema)
    assert props["Title"] == {"id": "title", "name": "Title", "type": "title", "description": None, "title": {}}
    assert props["Cost"]["number"] == {"format": "dollar"}
    channel = props["Channel"]["select"]["options"]
    assert [(o["name"], o["color"]) for o in channel] == [("tech", "blue"), ("cooking", "green")]
    assert all(UUID.match(o["id"]) for o in channel)
    stage = props["Stage"]["status"]
    assert [o["name"] for o in stage["options"]] == ["Not started", "In progress", "Done"]
    assert sorted(i for g in stage["groups"] for i in g["option_ids"]) == sorted(o["id"] for o in stage["options"])
    assert len({p["id"] for p in props.values()}) == len(props)


def test_workspace_parent_and_default_title(shared: notion_client.Client) -> None:
    database = shared.databases.create(parent={"type": "workspace", "workspace": True}, title=[])
    source = shared.data_sources.retrieve(database["data_sources"][0]["id"])
    assert database["parent"] == {"type": "workspace", "workspace": True}
    assert source["properties"]["Name"]["type"] == "title"


def test_page_round_trip_of_every_property_type(shared: notion_client.Client, videos: Any) -> None:
    database_id, ds_id = videos.create(shared)
    props = videos.props(
        "First video", channel="tech", topic="GPUs", status="Queued", priority="High", cost=1.25,
        updated="2024-05-01T10:00:00.000+00:00", done=True, url="https://example.com/v", stage="In progress",
    )  # fmt: skip
    props["Topic"] = {"rich_text": [{"type": "text", "text": {"content": "GPUs", "link": {"url": "https://x.y"}},
                                     "annotations": {"bold": True}}]}  # fmt: skip
    created = shared.pages.create(parent={"type": "data_source_id", "data_source_id": ds_id}, properties=props)
    page = shared.pages.retrieve(created["id"].replace("-", ""))
    assert page == {**created, "request_id": page["request_id"]}
    assert page["object"] == "page" and UUID.match(page["id"])
    assert page["parent"] == {"type": "data_source_id", "data_source_id": ds_id, "database_id": database_id}
    assert ISO_MS.match(page["created_time"]) and page["created_time"] == page["last_edited_time"]
    assert page["archived"] is False and page["in_trash"] is False
    assert page["created_by"]["object"] == "user" and page["url"].endswith(page["id"].replace("-", ""))
    p = page["properties"]
    assert p["Title"]["title"] == [{
        "type": "text", "text": {"content": "First video", "link": None},
        "annotations": {"bold": False, "italic": False, "strikethrough": False, "underline": False, "code": False,
                        "color": "default"},
        "plain_text": "First video", "href": None,
    }]  # fmt: skip
    assert p["Topic"]["rich_text"][0]["annotations"]["bold"] is True
    assert p["Topic"]["rich_text"][0]["href"] == "https://x.y"
    assert {k: v for k, v in p["Channel"]["select"].items() if k != "id"} == {"name": "tech", "color": "blue"}
    assert p["Stage"] == {
        "id": p["Stage"]["id"],
        "type": "status",
        "status": {**p["Stage"]["status"], "name": "In progress"},
    }
    assert p["Cost"]["number"] == 1.25 and p["Done"]["checkbox"] is True
    assert p["Updated"]["date"] == {"start": "2024-05-01T10:00:00.000+00:00", "end": None, "time_zone": None}
    assert p["Video URL"]["url"] == "https://example.com/v"
    assert p["Created"]["created_time"] == page["created_time"]
    assert p["Last Edited"]["last_edited_time"] == page["last_edited_time"]
    assert all(value["id"] and value["type"] in value for value in p.values())


def test_unset_properties_read_as_empty(shared: notion_client.Client, videos: Any) -> None:
    _, ds_id = videos.create(shared)
    p = shared.pages.create(parent={"data_source_id": ds_id}, properties={})["properties"]
    assert p["Title"]["title"] == [] and p["Topic"]["rich_text"] == []
    assert p["Channel"]["select"] is None and p["Stage"]["status"] is None
    assert p["Cost"]["number"] is None and p["Updated"]["date"] is None
    assert p["Done"]["checkbox"] is False and p["Video URL"]["url"] is None


def test_database_parent_maps_to_its_first_data_source(shared: notion_client.Client, videos: Any) -> None:
    database_id, ds_id = videos.create(shared)
    page = shared.pages.create(parent={"database_id": database_id}, properties=videos.props("via db"))
    assert page["parent"]["data_source_id"] == ds_id
    assert [videos.title_of(r) for r in shared.data_sources.query(ds_id)["results"]] == ["via db"]


def test_writing_a_new_select_option_adds_it(shared: notion_client.Client, videos: Any) -> None:
    _, ds_id = videos.create(shared)
    page = shared.pages.create(parent={"data_source_id": ds_id}, properties=videos.props("x", channel="travel"))
    options = shared.data_sources.retrieve(ds_id)["properties"]["Channel"]["select"]["options"]
    assert [o["name"] for o in options] == ["tech", "cooking", "travel"]
    assert page["properties"]["Channel"]["select"]["id"] == options[2]["id"]
    message = validation(shared.pages.create, parent={"data_source_id": ds_id},
                         properties=videos.props("y", stage="Shipped"))  # fmt: skip
    assert "Shipped" in message


def test_update_properties_and_timestamps(shared: notion_client.Client, videos: Any) -> None:
    _, ds_id = videos.create(shared)
    page = shared.pages.create(
        parent={"data_source_id": ds_id}, properties=videos.props("v", channel="tech", url="https://a", topic="t")
    )
    time.sleep(0.005)
    updated = shared.pages.update(
        page["id"],
        properties={"Channel": {"select": None}, "Video URL": {"url": None}, "Topic": {"rich_text": []},
                    "Cost": {"number": 3}, "Status": {"select": {"name": "Error"}}},
    )  # fmt: skip
    p = updated["properties"]
    assert p["Channel"]["select"] is None and p["Video URL"]["url"] is None and p["Topic"]["rich_text"] == []
    assert p["Cost"]["number"] == 3 and p["Status"]["select"]["name"] == "Error"
    assert videos.title_of(updated) == "v"
    assert updated["last_edited_time"] > page["last_edited_time"] and updated["created_time"] == page["created_time"]
    assert p["Last Edited"]["last_edited_time"] == updated["last_edited_time"]


def test_property_addressed_by_id(shared: notion_client.Client, videos: Any) -> None:
    _, ds_id = videos.create(shared)
    cost_id = shared.data_sources.retrieve(ds_id)["properties"]["Cost"]["id"]
    page = shared.pages.create(parent={"data_source_id": ds_id}, properties={cost_id: {"number": 7}})
    assert page["properties"]["Cost"]["number"] == 7
    found = shared.data_sources.query(ds_id, filter={"property": cost_id, "number": {"equals": 7}})
    assert [r["id"] for r in found["results"]] == [page["id"]]


@pytest.mark.parametrize(
    ("properties", "message_part"),
    [
        ({"Nope": {"rich_text": []}}, "Nope is not a property that exists"),
        ({"Cost": {"number": "12"}}, "body.properties.Cost.number should be a number"),
        ({"Channel": {"rich_text": []}}, "Channel is expected to be select"),
        ({"Done": {"checkbox": None}}, "should be a boolean"),
        ({"Updated": {"date": {"start": "May 1st"}}}, "ISO 8601"),
        ({"Created": {"created_time": "2024-01-01T00:00:00Z"}}, "cannot be written"),
        ({"Topic": {"rich_text": [{"text": {"content": "x" * 2001}}]}}, "should be ≤ `2000`, instead was `2001`"),
        ({"Channel": {"select": {"name": "a,b"}}}, "commas"),
    ],
)
def test_bad_page_values_are_validation_errors(
    shared: notion_client.Client, videos: Any, properties: dict[str, Any], message_part: str
) -> None:
    _, ds_id = videos.create(shared)
    assert message_part in validation(shared.pages.create, parent={"data_source_id": ds_id}, properties=properties)


def test_trash_hides_and_restores_a_page(shared: notion_client.Client, videos: Any) -> None:
    _, ds_id = videos.create(shared)
    keep = shared.pages.create(parent={"data_source_id": ds_id}, properties=videos.props("keep"))
    gone = shared.pages.create(parent={"data_source_id": ds_id}, properties=videos.props("gone"))
    archived = shared.pages.update(gone["id"], archived=True)
    assert archived["archived"] is True and archived["in_trash"] is True
    assert [r["id"] for r in shared.data_sources.query(ds_id)["results"]] == [keep["id"]]
    assert [r["id"] for r in shared.data_sources.query(ds_id, in_trash=True)["results"]] == [gone["id"]]
    assert shared.pages.retrieve(gone["id"])["in_trash"] is True
    assert "archived" in validation(shared.pages.update, gone["id"], properties=videos.props("edit"))
    shared.pages.update(gone["id"], in_trash=False)
    assert len(shared.data_sources.query(ds_id)["results"]) == 2


def test_update_data_source_schema(shared: notion_client.Client, videos: Any) -> None:
    _, ds_id = videos.create(shared)
    page = shared.pages.create(
        parent={"data_source_id": ds_id}, properties=videos.props("p", channel="tech", topic="kept")
    )
    options = shared.data_sources.retrieve(ds_id)["properties"]["Channel"]["select"]["options"]
    kept = [{"id": o["id"], "name": o["name"]} for o in options]
    updated = shared.data_sources.update(
        ds_id,
        properties={
            "Channel": {"select": {"options": [*kept, {"name": "history", "color": "brown"}]}},
            "Topic": {"name": "Subject"},
            "Review": {"select": {"options": [{"name": "Approve"}]}},
            "Video URL": None,
        },
    )
    props = updated["properties"]
    assert [(o["name"], o["color"]) for o in props["Channel"]["select"]["options"]] == [
        ("tech", "blue"), ("cooking", "green"), ("history", "brown")
    ]  # fmt: skip
    assert [o["id"] for o in props["Channel"]["select"]["options"][:2]] == [o["id"] for o in options]
    assert "Topic" not in props and "Video URL" not in props and props["Review"]["type"] == "select"
    again = shared.pages.retrieve(page["id"])["properties"]
    assert again["Subject"]["rich_text"][0]["plain_text"] == "kept"
    assert again["Channel"]["select"]["name"] == "tech" and "Video URL" not in again
    assert "title" in validation(shared.data_sources.update, ds_id, properties={"Title": None})


def test_failed_writes_leave_the_store_intact(
    notion_client_sync: notion_client.Client, notion_server: LocalNotionServer, videos: Any
) -> None:
    _, ds_id = videos.create(notion_client_sync)
    page = notion_client_sync.pages.create(parent={"data_source_id": ds_id}, properties=videos.props("orig", cost=1))
    schema_before = notion_client_sync.data_sources.retrieve(ds_id)["properties"]
    page_before = notion_client_sync.pages.retrieve(page["id"])

    bad_create = {**videos.props("half", channel="brand-new"), "Cost": {"number": "NaN"}}
    validation(notion_client_sync.pages.create, parent={"data_source_id": ds_id}, properties=bad_create)
    bad_update = {**videos.props("renamed", channel="another-new"), "Done": {"checkbox": "yes"}}
    validation(notion_client_sync.pages.update, page["id"], properties=bad_update)
    validation(notion_client_sync.data_sources.update, ds_id, properties={"Extra": {"number": {}}, "Title": None})
    headers = {"Authorization": f"Bearer {notion_server.token}", "Notion-Version": "2025-09-03"}
    truncated = httpx.patch(
        f"{notion_server.base_url}/v1/pages/{page['id']}", headers=headers, content=b'{"properties": {'
    )
    assert truncated.json()["code"] == "invalid_json"

    assert notion_client_sync.data_sources.retrieve(ds_id)["properties"] == schema_before
    after = notion_client_sync.pages.retrieve(page["id"])
    assert {k: v for k, v in after.items() if k != "request_id"} == {
        k: v for k, v in page_before.items() if k != "request_id"
    }
    assert [r["id"] for r in notion_client_sync.data_sources.query(ds_id)["results"]] == [page["id"]]


def test_store_survives_restart(tmp_path: Path, videos: Any) -> None:
    store = tmp_path / "store.sqlite"
    with LocalNotionServer(store) as server:
        client = notion_client.Client(auth=server.token, base_url=server.base_url)
        database_id, ds_id = videos.create(client)
        ids = [client.pages.create(parent={"data_source_id": ds_id}, properties=videos.props(f"p{i}", cost=i))["id"]
               for i in range(3)]  # fmt: skip
        client.pages.update(ids[0], in_trash=True)
        cursor = client.data_sources.query(ds_id, page_size=1)["next_cursor"]
        schema = client.data_sources.retrieve(ds_id)["properties"]
    with LocalNotionServer(store) as server:
        client = notion_client.Client(auth=server.token, base_url=server.base_url)
        assert client.databases.retrieve(database_id)["data_sources"][0]["id"] == ds_id
        assert client.data_sources.retrieve(ds_id)["properties"] == schema
        assert [r["id"] for r in client.data_sources.query(ds_id)["results"]] == [ids[2], ids[1]]
        assert [r["id"] for r in client.data_sources.query(ds_id, start_cursor=cursor)["results"]] == [ids[1]]
        assert client.pages.update(ids[1], properties={"Cost": {"number": 9}})["properties"]["Cost"]["number"] == 9


def test_a_second_server_sees_writes_of_the_first(tmp_path: Path, videos: Any) -> None:
    """Two servers on one store (e.g. a CLI run beside a test) never serve stale cached pages."""
    store = tmp_path / "store.sqlite"
    with LocalNotionServer(store) as first, LocalNotionServer(store) as second:
        one = notion_client.Client(auth=first.token, base_url=first.base_url)
        two = notion_client.Client(auth=second.token, base_url=second.base_url)
        _, ds_id = videos.create(one)
        assert two.data_sources.query(ds_id)["results"] == []
        one.pages.create(parent={"data_source_id": ds_id}, properties=videos.props("from first"))
        assert [videos.title_of(r) for r in two.data_sources.query(ds_id)["results"]] == ["from first"]


def test_users_search_blocks_and_standalone_pages(shared: notion_client.Client, videos: Any) -> None:
    me = shared.users.me()
    assert me["type"] == "bot" and shared.users.retrieve(me["id"])["id"] == me["id"]
    assert shared.users.list()["results"] == [{k: v for k, v in me.items() if k != "request_id"}]
    _, ds_id = videos.create(shared, "Searchable Board")
    page = shared.pages.create(
        parent={"data_source_id": ds_id},
        properties=videos.props("Searchable notes"),
        children=[{"paragraph": {"rich_text": videos.text("first")}}],
    )
    shared.blocks.children.append(
        page["id"], children=[{"type": "heading_2", "heading_2": {"rich_text": videos.text("second")}}]
    )
    blocks = shared.blocks.children.list(page["id"])["results"]
    assert [(b["type"], b[b["type"]]["rich_text"][0]["plain_text"]) for b in blocks] == [
        ("paragraph", "first"),
        ("heading_2", "second"),
    ]
    found = shared.search(query="SEARCHABLE")["results"]
    assert [(r["object"], r["id"]) for r in found] == [
        ("page", page["id"]),
        ("data_source", ds_id),
    ]  # newest edit first
    only_sources = shared.search(query="searchable", filter={"property": "object", "value": "data_source"})
    assert [r["id"] for r in only_sources["results"]] == [ds_id]
    note = shared.pages.create(parent={"page_id": page["id"]}, properties={"title": {"title": videos.text("child")}})
    assert note["parent"] == {"type": "page_id", "page_id": page["id"]}
    assert note["properties"]["title"]["title"][0]["plain_text"] == "child"


def test_request_bodies_notion_client_sends_are_plain_json(notion_server: LocalNotionServer) -> None:
    """A user's own script may use any HTTP client: the API is plain JSON over HTTP."""
    headers = {"Authorization": f"Bearer {notion_server.token}", "Notion-Version": "2025-09-03"}
    with httpx.Client(base_url=f"{notion_server.base_url}/v1/", headers=headers) as http:
        database = http.post(
            "databases", json={"parent": {"page_id": "p"}, "initial_data_source": {"properties": {"N": {"title": {}}}}}
        )
        ds_id = database.json()["data_sources"][0]["id"]
        http.post(
            "pages",
            json={"parent": {"data_source_id": ds_id}, "properties": {"N": {"title": [{"text": {"content": "a"}}]}}},
        )
        listing = http.post(f"data_sources/{ds_id}/query", content=b"")
    assert listing.status_code == 200
    assert json.loads(listing.text)["results"][0]["properties"]["N"]["title"][0]["plain_text"] == "a"
