"""NotionGateway's page-content methods (file uploads, blocks) against the local Notion server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from vidgen.notion.errors import NotionInvalidEntry, NotionNotFound, NotionUnavailable
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.ratelimit import RetryPolicy, TokenBucket
from vidgen.notion.server import LocalNotionServer

FAST = RetryPolicy(attempts=3, initial_wait_s=0.01, max_wait_s=0.05, jitter_s=0.01)
PARENT = {"type": "page_id", "page_id": "0c1b2a39-48d7-4e65-a3f2-1b0c9d8e7f6a"}


@pytest.fixture
def gateway(notion_server: LocalNotionServer) -> Iterator[NotionGateway]:
    with NotionGateway(notion_server.token, base_url=notion_server.base_url, limiter=TokenBucket.unlimited(),
                       retry=FAST) as gw:  # fmt: skip
        yield gw


@pytest.fixture
def page_id(notion_client_sync) -> str:
    return notion_client_sync.pages.create(parent=PARENT, properties={"title": {"title": [{"text": {"content": "c"}}]}})["id"]


def paragraph(text: str) -> dict:
    return {"type": "paragraph", "paragraph": {"rich_text": [{"type": "text", "text": {"content": text}}]}}


def test_a_small_file_takes_two_requests_and_can_be_attached(gateway, page_id, tmp_path):
    still = tmp_path / "scene-01.jpg"
    still.write_bytes(b"\xff\xd8" + bytes(5000))
    before = gateway.requests_sent
    upload_id = gateway.upload_file(still, "image/jpeg")
    assert gateway.requests_sent - before == 2  # create + send

    (block,) = gateway.append_blocks(page_id, [{"type": "image", "image": {"type": "file_upload",
                                                                          "file_upload": {"id": upload_id}}}])
    assert block["type"] == "image"
    (listed,) = gateway.list_blocks(page_id)
    assert httpx.get(listed["image"]["file"]["url"]).content == still.read_bytes()


def test_a_file_over_20_mb_goes_in_parts(notion_server, gateway, page_id, tmp_path):
    notion_server.file_uploads.max_file_bytes = 30_000_000
    big = tmp_path / "final.mp4"
    big.write_bytes(b"v" * 21_000_000)
    before = gateway.requests_sent
    upload_id = gateway.upload_file(big, "video/mp4")
    assert gateway.requests_sent - before == 1 + 3 + 1  # create, three 10 MB parts, complete
    gateway.append_blocks(page_id, [{"type": "video", "video": {"type": "file_upload", "file_upload": {"id": upload_id}}}])
    (listed,) = gateway.list_blocks(page_id)
    assert len(httpx.get(listed["video"]["file"]["url"]).content) == 21_000_000


def test_listing_reads_every_page_of_children_and_after_inserts_in_place(gateway, page_id):
    created = gateway.append_blocks(page_id, [paragraph(f"p{i}") for i in range(150)])
    assert len(created) == 150
    gateway.append_blocks(page_id, [paragraph("between")], after=created[0]["id"])
    texts = [b["paragraph"]["rich_text"][0]["plain_text"] for b in gateway.list_blocks(page_id)]
    assert len(texts) == 151 and texts[:3] == ["p0", "between", "p1"]

    gateway.delete_block(created[0]["id"])
    assert [b["id"] for b in gateway.list_blocks(page_id)][0] != created[0]["id"]


def test_errors_are_typed(notion_server, gateway, page_id, tmp_path):
    notion_server.file_uploads.max_file_bytes = 10
    big = tmp_path / "big.jpg"
    big.write_bytes(b"x" * 11)
    with pytest.raises(NotionInvalidEntry, match="file size limit"):
        gateway.upload_file(big, "image/jpeg")
    with pytest.raises(NotionNotFound):
        gateway.list_blocks("5b0b4f6e-2a3c-4c1d-9e8f-0a1b2c3d4e5f")
    with pytest.raises(OSError):
        gateway.upload_file(tmp_path / "missing.jpg", "image/jpeg")


def test_an_append_is_not_resent_after_a_5xx(tmp_path):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(502, json={"object": "error", "status": 502, "code": "bad_gateway", "message": "x"})

    client = httpx.Client(transport=httpx.MockTransport(handler), base_url="https://api.notion.com")
    gw = NotionGateway("secret_x", client=client, limiter=TokenBucket.unlimited(), retry=FAST)
    with pytest.raises(NotionUnavailable):
        gw.append_blocks("5b0b4f6e-2a3c-4c1d-9e8f-0a1b2c3d4e5f", [paragraph("once")])
    assert len(seen) == 1
