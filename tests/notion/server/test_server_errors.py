"""Failures come back as Notion's error object, so notion-client raises APIResponseError with the right code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import notion_client
import pytest
from notion_client import APIErrorCode, APIResponseError

from vidgen.notion.server import LocalNotionServer


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[notion_client.Client]:
    """One server for the tests that each make their own database (servers cost ~0.3 s to start/stop)."""
    with LocalNotionServer(tmp_path_factory.mktemp("notion") / "store.sqlite") as server:
        client = notion_client.Client(auth=server.token, base_url=server.base_url)
        yield client
        client.close()


def raises(code: APIErrorCode, status: int, call: Any, *args: Any, **kwargs: Any) -> APIResponseError:
    with pytest.raises(APIResponseError) as caught:
        call(*args, **kwargs)
    assert (caught.value.code, caught.value.status) == (code, status), str(caught.value)
    body = json.loads(caught.value.body)
    assert body["object"] == "error" and body["request_id"]
    return caught.value


def test_wrong_or_missing_token_is_unauthorized(notion_server: LocalNotionServer) -> None:
    wrong = notion_client.Client(auth="secret_wrong", base_url=notion_server.base_url)
    raises(APIErrorCode.Unauthorized, 401, wrong.users.me)
    anonymous = notion_client.Client(base_url=notion_server.base_url)
    raises(APIErrorCode.Unauthorized, 401, anonymous.search)


def test_server_started_with_its_own_token(tmp_path: Path) -> None:
    with LocalNotionServer(tmp_path / "s.sqlite", token="secret_custom") as server:
        assert notion_client.Client(auth="secret_custom", base_url=server.base_url).users.me()["type"] == "bot"
        raises(
            APIErrorCode.Unauthorized,
            401,
            notion_client.Client(auth=server.token + "x", base_url=server.base_url).users.me,
        )


def test_unknown_objects_are_not_found(shared: notion_client.Client, videos: Any) -> None:
    missing = "6a0f1e2d-3c4b-4a59-8d7e-0f1a2b3c4d5e"
    error = raises(APIErrorCode.ObjectNotFound, 404, shared.pages.retrieve, missing)
    assert missing in str(error)
    raises(APIErrorCode.ObjectNotFound, 404, shared.pages.update, missing.replace("-", ""), archived=True)
    raises(APIErrorCode.ObjectNotFound, 404, shared.databases.retrieve, missing)
    raises(APIErrorCode.ObjectNotFound, 404, shared.data_sources.query, missing)
    database_id, _ = videos.create(shared)
    raises(APIErrorCode.ObjectNotFound, 404, shared.data_sources.retrieve, database_id)


def test_malformed_ids_and_routes(shared: notion_client.Client) -> None:
    raises(APIErrorCode.ValidationError, 400, shared.pages.retrieve, "not-a-uuid")
    raises(APIErrorCode.InvalidRequestURL, 400, shared.request, "no/such/route", "GET")
    raises(APIErrorCode.InvalidRequestURL, 400, shared.request, "users/me", "DELETE")


@pytest.mark.parametrize(
    ("body", "message_part"),
    [
        ({"filter": {"property": "Nope", "select": {"equals": "x"}}}, "Could not find property with name or id: Nope"),
        ({"filter": {"property": "Channel", "status": {"equals": "tech"}}}, "use a `select` filter"),
        ({"filter": {"property": "Channel", "select": {"contains": "t"}}}, "not a `select` filter condition"),
        ({"filter": {"property": "Cost", "number": {"greater_than": "5"}}}, "should be a number"),
        ({"filter": {"property": "Updated", "date": {"after": "yesterday"}}}, "ISO 8601"),
        ({"filter": {"property": "Topic", "rich_text": {"is_empty": False}}}, "should be `true`"),
        ({"filter": {"and": {"property": "Cost"}}}, "should be an array"),
        ({"filter": {"whatever": 1}}, "property filter"),
        ({"filter": {"timestamp": "edited", "edited": {}}}, "created_time"),
        ({"sorts": [{"property": "Nope", "direction": "ascending"}]}, "Nope"),
        ({"sorts": [{"property": "Cost", "direction": "up"}]}, "ascending"),
        ({"page_size": 101}, "body.page_size should be ≤ `100`, instead was `101`"),
        ({"page_size": 0}, "page_size"),
        ({"start_cursor": "garbage!"}, "start_cursor"),
    ],
)
def test_bad_queries_are_validation_errors(
    shared: notion_client.Client, videos: Any, body: dict[str, Any], message_part: str
) -> None:
    _, ds = videos.create(shared)
    error = raises(APIErrorCode.ValidationError, 400, shared.data_sources.query, ds, **body)
    assert message_part in str(error)


def test_cursor_from_other_sorts_is_refused(shared: notion_client.Client, videos: Any) -> None:
    _, ds = videos.create(shared)
    for i in range(3):
        shared.pages.create(parent={"data_source_id": ds}, properties=videos.props(f"p{i}", cost=i))
    cursor = shared.data_sources.query(ds, page_size=1)["next_cursor"]
    by_cost = [{"property": "Cost", "direction": "ascending"}]
    raises(APIErrorCode.ValidationError, 400, shared.data_sources.query, ds, sorts=by_cost, start_cursor=cursor)


def test_raw_http_errors(notion_server: LocalNotionServer) -> None:
    """What notion-client never sends but other clients might: no version header, broken JSON."""
    auth = {"Authorization": f"Bearer {notion_server.token}"}
    with httpx.Client(base_url=notion_server.base_url) as http:
        missing_version = http.get("/v1/users/me", headers=auth)
        assert missing_version.status_code == 400
        assert missing_version.json()["code"] == "missing_version"
        old_version = http.get("/v1/users/me", headers={**auth, "Notion-Version": "2022-06-28"})
        assert (old_version.status_code, old_version.json()["code"]) == (400, "validation_error")
        headers = {**auth, "Notion-Version": "2025-09-03", "Content-Type": "application/json"}
        broken = http.post("/v1/search", headers=headers, content=b"{not json")
        assert (broken.status_code, broken.json()["code"]) == (400, "invalid_json")
        not_object = http.post("/v1/search", headers=headers, content=b"[1, 2]")
        assert (not_object.status_code, not_object.json()["code"]) == (400, "validation_error")
        too_big = http.post("/v1/search", headers=headers, content=json.dumps({"query": "x" * 600_000}).encode())
        assert (too_big.status_code, too_big.json()["code"]) == (400, "validation_error")
        body = http.get("/v1/users/me", headers=headers).json()
        assert body["object"] == "user" and body["type"] == "bot"


def test_rate_limited_server_answers_429_with_retry_after(tmp_path: Path) -> None:
    with LocalNotionServer(tmp_path / "s.sqlite", rate_limit=1.0) as server:
        no_retry = notion_client.Client(auth=server.token, base_url=server.base_url, retry=False)
        no_retry.users.me()
        error = raises(APIErrorCode.RateLimited, 429, no_retry.users.me)
        assert error.headers["retry-after"] == "1"
        patient = notion_client.Client(auth=server.token, base_url=server.base_url)  # retries after Retry-After
        assert patient.users.me()["object"] == "user"


def test_rate_limit_ignores_rejected_tokens(tmp_path: Path) -> None:
    """Only the integration's own requests spend its quota (Notion limits per integration)."""
    with LocalNotionServer(tmp_path / "s.sqlite", rate_limit=1.0) as server:
        stranger = notion_client.Client(auth="secret_other", base_url=server.base_url, retry=False)
        for _ in range(3):
            raises(APIErrorCode.Unauthorized, 401, stranger.users.me)
        assert (
            notion_client.Client(auth=server.token, base_url=server.base_url, retry=False).users.me()["type"] == "bot"
        )
