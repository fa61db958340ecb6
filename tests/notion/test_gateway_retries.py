"""What the gateway retries, what it does not, and the typed error each failure becomes (HTTP-level mocks).

The end-to-end behaviour against the local Notion server is in test_gateway.py; these cover
failures a healthy server does not produce on demand (5xx, dropped connections, foreign servers).
"""

from __future__ import annotations

import json
import httpx
import pytest

from vidgen.models import VideoEntry
from vidgen.notion.errors import NotionInvalidEntry, NotionRateLimited, NotionUnavailable
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.ids import InvalidNotionId
from vidgen.notion.ratelimit import RetryPolicy, TokenBucket

EMPTY = {"object": "list", "results": [], "next_cursor": None, "has_more": False}
PAGE = {"object": "page", "id": "1f2e3d4c-0000-4000-8000-0000000000a1", "properties": {}, "created_time": "2026-01-01T00:00:00.000Z"}
FAST = RetryPolicy(attempts=3, initial_wait_s=0.001, max_wait_s=0.005, jitter_s=0.001, max_retry_after_s=1)


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"object": "error", "status": status, "code": code, "message": code}, headers=headers)


def _gateway(responses: list[httpx.Response | Exception], seen: list[httpx.Request], **kwargs: object) -> NotionGateway:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses.pop(0) if len(responses) > 1 else responses[0]
        if isinstance(item, Exception):
            raise item
        return item

    return NotionGateway(
        "tok",
        base_url="http://127.0.0.1:9",
        data_source_id="00000000-0000-4000-8000-0000000000d1",
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        limiter=kwargs.pop("limiter", TokenBucket.unlimited()),  # type: ignore[arg-type]
        retry=FAST,
    )


def _create(gw: NotionGateway) -> VideoEntry:
    return gw.create_entry(title="T", channel="Wild Frontiers", topic="x")


def test_5xx_on_a_read_is_retried_until_it_succeeds() -> None:
    seen: list[httpx.Request] = []
    gw = _gateway([_error(503, "service_unavailable"), _error(500, "internal_server_error"), httpx.Response(200, json=EMPTY)], seen)
    assert gw.find_work() == []
    assert len(seen) == 3 and gw.requests_sent == 3


def test_persistent_5xx_becomes_unavailable_after_the_attempts() -> None:
    seen: list[httpx.Request] = []
    gw = _gateway([_error(502, "internal_server_error")], seen)
    with pytest.raises(NotionUnavailable) as info:
        gw.list_entries()
    assert len(seen) == FAST.attempts
    message = str(info.value)
    assert "Notion at http://127.0.0.1:9 is not reachable — start it with `uv run vidgen notion serve --port 9`" in message
    assert "\n" not in message


def test_read_timeouts_are_retried() -> None:
    seen: list[httpx.Request] = []
    gw = _gateway([httpx.ReadTimeout("slow"), httpx.Response(200, json=EMPTY)], seen)
    assert gw.find_work() == [] and len(seen) == 2


def test_dropped_connection_on_a_read_is_retried() -> None:
    seen: list[httpx.Request] = []
    gw = _gateway([httpx.RemoteProtocolError("peer closed"), httpx.Response(200, json=EMPTY)], seen)
    assert gw.find_work() == [] and len(seen) == 2


def test_a_create_is_not_resent_after_a_5xx_or_a_lost_response() -> None:
    """The server may have made the page already; sending again would make a duplicate entry."""
    for failure in (_error(500, "internal_server_error"), httpx.ReadTimeout("lost")):
        seen: list[httpx.Request] = []
        gw = _gateway([failure, httpx.Response(200, json=PAGE)], seen)
        with pytest.raises(NotionUnavailable):
            _create(gw)
        assert len(seen) == 1


def test_a_create_is_resent_when_the_connection_never_opened_or_was_rate_limited() -> None:
    for failure in (httpx.ConnectError("refused"), _error(429, "rate_limited", {"Retry-After": "0"})):
        seen: list[httpx.Request] = []
        gw = _gateway([failure, httpx.Response(200, json=PAGE)], seen)
        assert _create(gw).page_id == PAGE["id"]
        assert len(seen) == 2


def test_retry_after_longer_than_we_wait_is_reported_at_once_with_the_delay() -> None:
    seen: list[httpx.Request] = []
    gw = _gateway([_error(429, "rate_limited", {"Retry-After": "120"})], seen)
    with pytest.raises(NotionRateLimited) as info:
        gw.find_work()
    assert len(seen) == 1
    assert info.value.retry_after == 120
    assert "120 s" in str(info.value)


def test_rate_limited_after_every_attempt() -> None:
    seen: list[httpx.Request] = []
    gw = _gateway([_error(429, "rate_limited", {"Retry-After": "0"})], seen)
    with pytest.raises(NotionRateLimited):
        gw.find_work()
    assert len(seen) == FAST.attempts


def test_a_429_holds_the_shared_limiter() -> None:
    held: list[float] = []

    class Recording(TokenBucket):
        def hold_off(self, seconds: float) -> None:
            held.append(seconds)

    seen: list[httpx.Request] = []
    gw = _gateway([_error(429, "rate_limited", {"Retry-After": "0.01"}), httpx.Response(200, json=EMPTY)], seen, limiter=Recording(1000))
    gw.find_work()
    assert held == [0.01]


def test_validation_error_is_not_retried() -> None:
    seen: list[httpx.Request] = []
    gw = _gateway([_error(400, "validation_error")], seen)
    with pytest.raises(NotionInvalidEntry):
        _create(gw)
    assert len(seen) == 1


def test_something_that_is_not_notion_at_the_url() -> None:
    seen: list[httpx.Request] = []
    gw = _gateway([httpx.Response(404, text="<html>Not Found</html>")], seen)
    with pytest.raises(NotionUnavailable, match="not the Notion API"):
        gw.find_work()


def test_requests_carry_token_version_and_json_body() -> None:
    seen: list[httpx.Request] = []
    gw = _gateway([httpx.Response(200, json=EMPTY)], seen)
    gw.find_work()
    (request,) = seen
    assert request.url == httpx.URL("http://127.0.0.1:9/v1/data_sources/00000000-0000-4000-8000-0000000000d1/query")
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.headers["Notion-Version"] == "2025-09-03"
    body = json.loads(request.content)
    assert body["page_size"] == 100 and "filter" in body and body["sorts"][0]["property"] == "Priority"



@pytest.mark.parametrize("page_id", ["../data_sources/00000000-0000-4000-8000-0000000000d1", "p1", "", f"{PAGE['id']}/.."])
def test_an_id_that_is_not_a_uuid_never_reaches_a_url(page_id: str) -> None:
    seen: list[httpx.Request] = []
    gw = _gateway([httpx.Response(200, json=PAGE)], seen)
    with pytest.raises(InvalidNotionId):
        gw.get_entry(page_id)
    with pytest.raises(InvalidNotionId):
        gw.archive(page_id)
    with pytest.raises(InvalidNotionId):
        gw.list_blocks(page_id)
    assert seen == []


def test_a_page_with_a_bad_id_in_notions_answer_is_skipped_not_fatal() -> None:
    seen: list[httpx.Request] = []
    odd = dict(PAGE, id="../../v1/users")
    gw = _gateway([httpx.Response(200, json=dict(EMPTY, results=[odd, PAGE]))], seen)
    assert [e.page_id for e in gw.find_work()] == [PAGE["id"]]
    answered_odd = _gateway([httpx.Response(200, json=odd)], [])
    with pytest.raises(InvalidNotionId):
        answered_odd.get_entry(PAGE["id"])
