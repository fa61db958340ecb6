"""File uploads and block children on the local Notion server, read and written through notion-client.

Documented behaviour checked: https://developers.notion.com/reference/file-upload (statuses, expiry),
create-a-file-upload / send-a-file-upload / complete-a-file-upload (modes, parts, form data),
patch-block-children (after, nesting), get-block-children (pagination), delete-a-block (archives).
"""

from __future__ import annotations

import io
from typing import Any

import httpx
import notion_client
import pytest
from notion_client import APIResponseError

PARENT = {"type": "page_id", "page_id": "0c1b2a39-48d7-4e65-a3f2-1b0c9d8e7f6a"}
MB = 1_000_000


def new_page(client: notion_client.Client, title: str = "Card") -> str:
    return client.pages.create(parent=PARENT, properties={"title": {"title": [{"text": {"content": title}}]}})["id"]


def paragraph(text: str) -> dict[str, Any]:
    return {"type": "paragraph", "paragraph": {"rich_text": [{"type": "text", "text": {"content": text}}]}}


def uploaded(client: notion_client.Client, data: bytes, name: str = "still.jpg", mime: str = "image/jpeg") -> str:
    upload = client.file_uploads.create(filename=name, content_type=mime)
    client.file_uploads.send(upload["id"], file=(name, io.BytesIO(data), mime))
    return upload["id"]


def image_block(upload_id: str) -> dict[str, Any]:
    return {"type": "image", "image": {"type": "file_upload", "file_upload": {"id": upload_id}}}


def test_a_single_part_upload_attached_to_a_page_is_downloadable(notion_client_sync):
    page = new_page(notion_client_sync)
    created = notion_client_sync.file_uploads.create(filename="still.jpg", content_type="image/jpeg")
    assert created["object"] == "file_upload" and created["status"] == "pending"
    assert created["upload_url"].endswith(f"/v1/file_uploads/{created['id']}/send") and created["expiry_time"]

    data = bytes(range(256)) * 40 + b"\r\n--boundary-lookalike\r\n"
    sent = notion_client_sync.file_uploads.send(created["id"], file=("still.jpg", io.BytesIO(data), "image/jpeg"))
    assert sent["status"] == "uploaded" and sent["content_length"] == len(data)

    notion_client_sync.blocks.children.append(page, children=[image_block(created["id"])])
    (block,) = notion_client_sync.blocks.children.list(page)["results"]
    assert block["image"]["type"] == "file" and block["image"]["file"]["expiry_time"]
    assert httpx.get(block["image"]["file"]["url"]).content == data
    assert notion_client_sync.file_uploads.retrieve(created["id"])["expiry_time"] is None  # attached: no expiry


def test_a_multi_part_upload_is_sent_in_parts_then_completed(notion_server, notion_client_sync):
    notion_server.file_uploads.max_file_bytes = 30 * MB
    parts = [b"a" * (5 * MB), b"b" * 1234]
    upload = notion_client_sync.file_uploads.create(mode="multi_part", filename="final.mp4",
                                                    content_type="video/mp4", number_of_parts=2)
    assert upload["number_of_parts"] == {"total": 2, "sent": 0}
    with pytest.raises(APIResponseError) as early:
        notion_client_sync.file_uploads.complete(upload["id"])
    assert early.value.status == 400
    for number, part in enumerate(parts, start=1):
        notion_client_sync.file_uploads.send(upload["id"], file=("final.mp4", io.BytesIO(part), "video/mp4"),
                                             part_number=str(number))
    assert notion_client_sync.file_uploads.retrieve(upload["id"])["status"] == "pending"
    done = notion_client_sync.file_uploads.complete(upload["id"])
    assert done["status"] == "uploaded" and done["content_length"] == sum(map(len, parts))

    page = new_page(notion_client_sync)
    notion_client_sync.blocks.children.append(page, children=[{"type": "video", "video": {
        "type": "file_upload", "file_upload": {"id": upload["id"]}}}])
    (block,) = notion_client_sync.blocks.children.list(page)["results"]
    assert httpx.get(block["video"]["file"]["url"]).content == b"".join(parts)


def test_a_file_larger_than_the_workspace_allows_is_a_400_validation_error(notion_server, notion_client_sync):
    notion_server.file_uploads.max_file_bytes = 1000
    upload = notion_client_sync.file_uploads.create(filename="big.jpg", content_type="image/jpeg")
    with pytest.raises(APIResponseError) as caught:
        notion_client_sync.file_uploads.send(upload["id"], file=("big.jpg", io.BytesIO(b"x" * 1001), "image/jpeg"))
    assert (caught.value.status, caught.value.code) == (400, "validation_error")
    assert "file size limit" in str(caught.value)
    assert notion_client_sync.file_uploads.retrieve(upload["id"])["status"] == "pending"


def test_an_upload_not_attached_within_an_hour_expires(notion_server, notion_client_sync):
    now = [1_800_000_000.0]
    notion_server.file_uploads.clock = lambda: now[0]
    upload_id = uploaded(notion_client_sync, b"jpeg")
    now[0] += 3601
    assert notion_client_sync.file_uploads.retrieve(upload_id)["status"] == "expired"
    with pytest.raises(APIResponseError) as caught:
        notion_client_sync.blocks.children.append(new_page(notion_client_sync), children=[image_block(upload_id)])
    assert caught.value.status == 400 and "expired" in str(caught.value)


def test_uploads_refuse_what_the_documentation_refuses(notion_client_sync):
    with pytest.raises(APIResponseError, match="filename"):
        notion_client_sync.file_uploads.create(mode="multi_part", number_of_parts=2)
    single = notion_client_sync.file_uploads.create(filename="a.jpg")
    with pytest.raises(APIResponseError, match="part_number"):
        notion_client_sync.file_uploads.send(single["id"], file=("a.jpg", io.BytesIO(b"x"), "image/jpeg"),
                                             part_number="1")
    audio = uploaded(notion_client_sync, b"mp3", "narration.mp3", "audio/mpeg")
    with pytest.raises(APIResponseError, match="content type"):  # an image block cannot show audio
        notion_client_sync.blocks.children.append(new_page(notion_client_sync), children=[image_block(audio)])
    with pytest.raises(APIResponseError) as missing:
        notion_client_sync.file_uploads.retrieve("5b0b4f6e-2a3c-4c1d-9e8f-0a1b2c3d4e5f")
    assert missing.value.status == 404


def test_block_children_nest_insert_after_paginate_and_delete(notion_client_sync):
    page = new_page(notion_client_sync)
    first = notion_client_sync.blocks.children.append(page, children=[paragraph(f"p{i}") for i in range(5)])
    toggle = {"type": "toggle", "toggle": {"rich_text": [{"type": "text", "text": {"content": "Round 1"}}],
                                           "children": [paragraph("old")]}}
    notion_client_sync.blocks.children.append(page, children=[toggle], after=first["results"][1]["id"])

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        answer = notion_client_sync.blocks.children.list(page, start_cursor=cursor, page_size=2)
        seen += answer["results"]
        cursor = answer["next_cursor"]
        if not answer["has_more"]:
            break
    assert [b["type"] for b in seen] == ["paragraph", "paragraph", "toggle", "paragraph", "paragraph", "paragraph"]
    folded = seen[2]
    assert folded["has_children"] is True
    (inner,) = notion_client_sync.blocks.children.list(folded["id"])["results"]
    assert inner["paragraph"]["rich_text"][0]["plain_text"] == "old"
    assert inner["parent"] == {"type": "block_id", "block_id": folded["id"]}

    deleted = notion_client_sync.blocks.delete(seen[0]["id"])
    assert deleted["in_trash"] is True and deleted["archived"] is True
    assert notion_client_sync.blocks.retrieve(seen[0]["id"])["in_trash"] is True
    assert len(notion_client_sync.blocks.children.list(page)["results"]) == 5


def test_a_trashed_page_takes_no_more_blocks(notion_client_sync):
    page = new_page(notion_client_sync)
    notion_client_sync.pages.update(page, in_trash=True)
    with pytest.raises(APIResponseError) as caught:
        notion_client_sync.blocks.children.append(page, children=[paragraph("late")])
    assert caught.value.status == 400 and "archived" in str(caught.value)


def test_blocks_given_at_page_creation_are_listed_first(notion_client_sync):
    page = notion_client_sync.pages.create(parent=PARENT, properties={"title": {"title": [{"text": {"content": "t"}}]}},
                                           children=[paragraph("created with the page")])["id"]
    notion_client_sync.blocks.children.append(page, children=[paragraph("appended")])
    texts = [b["paragraph"]["rich_text"][0]["plain_text"] for b in notion_client_sync.blocks.children.list(page)["results"]]
    assert texts == ["created with the page", "appended"]


def test_file_urls_need_their_secret(notion_client_sync):
    page = new_page(notion_client_sync)
    notion_client_sync.blocks.children.append(page, children=[image_block(uploaded(notion_client_sync, b"jpeg"))])
    url = notion_client_sync.blocks.children.list(page)["results"][0]["image"]["file"]["url"]
    secret = url.split("/files/")[1].split("/")[1]
    assert httpx.get(url.replace(secret, "guess")).status_code == 404
