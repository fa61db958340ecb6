"""NotionGateway end to end against the local Notion server, through unmodified notion-client."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from notion_client import Client

from vidgen.channels import Channel, StyleConfig, load_channels
from vidgen.models import Priority, VideoEntry
from vidgen.notion.errors import NotionInvalidEntry, NotionNotFound, NotionUnauthorized, NotionUnavailable
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.ratelimit import RetryPolicy, TokenBucket
from vidgen.notion.schema import Prop
from vidgen.notion.server import LocalNotionServer
from vidgen.statuses import IllegalTransition, NotionStatus

S = NotionStatus
REPO = Path(__file__).resolve().parents[2]
FAST = RetryPolicy(attempts=3, initial_wait_s=0.01, max_wait_s=0.05, jitter_s=0.01)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNotionServer]:
    """One server for the module (like the shared `notion_server`, started once); every test gets
    its own database in it, which isolates tests just as well at a fraction of the start-up cost."""
    with LocalNotionServer(tmp_path_factory.mktemp("notion") / "store.sqlite") as srv:
        yield srv


@pytest.fixture(scope="module")
def channels() -> dict[str, Channel]:
    return load_channels(REPO / "channels")


def _gateway(server: LocalNotionServer, **kwargs: object) -> NotionGateway:
    options: dict[str, object] = {"base_url": server.base_url, "limiter": TokenBucket.unlimited(), "retry": FAST}
    options.update(kwargs)
    return NotionGateway(server.token, **options)  # type: ignore[arg-type]


@pytest.fixture
def gateway(server: LocalNotionServer, channels: dict[str, Channel]) -> Iterator[NotionGateway]:
    """A fresh database in the shared server, so tests do not see each other's pages."""
    with _gateway(server) as gw:
        gw.create_database(parent_page_id=None, title="Video Pipeline", channels=channels)
        yield gw


def _spent(gw: NotionGateway, action: object) -> int:
    before = gw.requests_sent
    if callable(action):
        action()
    return gw.requests_sent - before


def _bulk_create(gw: NotionGateway, count: int, prefix: str, status: NotionStatus, channel: str = "Wild Frontiers") -> list[str]:
    """Many pages at once: the gateway is thread-safe, and the server's latency, not its work, is the cost."""
    def make(i: int) -> str:
        return gw.create_entry(title=f"{prefix}{i}", channel=channel, topic="t", status=status).page_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(make, range(count)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- database --------------------------------------------------------------------------------------


def test_create_database_makes_the_full_schema(server: LocalNotionServer, channels: dict[str, Channel]) -> None:
    with _gateway(server) as gw:
        database_id, data_source_id = gw.create_database(parent_page_id=None, title="Video Pipeline", channels=channels)
        assert gw.data_source_id == data_source_id and database_id != data_source_id
    with httpx.Client(base_url=f"{server.base_url}/v1/") as http:
        headers = {"Authorization": f"Bearer {server.token}", "Notion-Version": "2025-09-03"}
        source = http.get(f"data_sources/{data_source_id}", headers=headers).json()
    props = source["properties"]
    assert props[Prop.STATUS]["type"] == "select"
    assert [o["name"] for o in props[Prop.STATUS]["select"]["options"]] == [s.value for s in NotionStatus]
    assert {o["name"] for o in props[Prop.CHANNEL]["select"]["options"]} == {"Wild Frontiers", "Chronicle Vault"}
    assert props[Prop.COST]["number"]["format"] == "dollar"
    assert props[Prop.RUN]["type"] == "url" and props[Prop.CREATED]["type"] == "created_time"


def test_sync_channel_options_writes_only_when_something_is_missing(gateway: NotionGateway, channels: dict[str, Channel]) -> None:
    before = gateway.requests_sent
    assert gateway.sync_channel_options(channels) is False
    assert gateway.requests_sent - before == 1  # one read, no write
    more = dict(channels)
    more["deep_space"] = Channel(id="deep_space", name="Deep Space", notion_value="Deep Space", style=StyleConfig(preamble="p"))
    assert gateway.sync_channel_options(more) is True
    assert gateway.sync_channel_options(more) is False
    entry = gateway.create_entry(title="Pulsars", channel="Deep Space", topic="How pulsars keep time")
    assert entry.channel == "Deep Space"


def test_sync_adds_missing_columns_and_refuses_retyped_ones(
    server: LocalNotionServer, gateway: NotionGateway, channels: dict[str, Channel]
) -> None:
    notion = Client(auth=server.token, base_url=server.base_url)
    ds = gateway.data_source_id
    assert ds is not None
    notion.data_sources.update(ds, properties={Prop.RUN: None})  # a database made before Run existed
    assert gateway.sync_channel_options(channels) is True
    assert notion.data_sources.retrieve(ds)["properties"][Prop.RUN]["type"] == "url"
    notion.data_sources.update(ds, properties={Prop.COST: {"rich_text": {}}})  # someone retyped a column
    with pytest.raises(NotionInvalidEntry, match="Cost is 'rich_text' \\(vidgen needs 'number'\\)"):
        gateway.sync_channel_options(channels)


# --- entries ---------------------------------------------------------------------------------------


def test_create_entry_defaults_to_draft_and_normal(gateway: NotionGateway) -> None:
    entry = gateway.create_entry(title="Wolves", channel="Wild Frontiers", topic="Wolves and rivers", story_direction="Slow.")
    assert (entry.status, entry.priority, entry.channel) == ("Draft", "Normal", "Wild Frontiers")
    assert (entry.title, entry.topic, entry.story_direction) == ("Wolves", "Wolves and rivers", "Slow.")
    assert entry.page_id and entry.created_time is not None and not entry.archived
    queued = gateway.create_entry(title="Bears", channel="Wild Frontiers", topic="Bears", priority=Priority.HIGH, status=S.QUEUED)
    assert (queued.status, queued.priority) == ("Queued", "High")


def test_get_and_list_entries_skip_archived(gateway: NotionGateway) -> None:
    a = gateway.create_entry(title="A", channel="Wild Frontiers", topic="a topic")
    b = gateway.create_entry(title="B", channel="Chronicle Vault", topic="b topic")
    assert gateway.get_entry(a.page_id) == a
    assert [e.page_id for e in gateway.list_entries()] == [a.page_id, b.page_id]
    gateway.archive(a.page_id)
    assert [e.page_id for e in gateway.list_entries()] == [b.page_id]
    assert gateway.get_entry(a.page_id).archived is True


def test_long_text_round_trips_in_chunks(gateway: NotionGateway) -> None:
    entry = gateway.create_entry(title="Long", channel="Wild Frontiers", topic="t", story_direction="d" * 4500)
    assert entry.story_direction == "d" * 4500
    error = "traceback line\n" * 400  # 6,000 characters
    assert gateway.update_entry(entry, error=error).error == error


def _make(gateway: NotionGateway, title: str, status: NotionStatus, **updates: object) -> VideoEntry:
    entry = gateway.create_entry(title=title, channel="Wild Frontiers", topic=f"{title} topic", status=status)
    return gateway.update_entry(entry, **updates) if updates else entry  # type: ignore[arg-type]


def test_find_work_returns_exactly_what_needs_the_orchestrator(gateway: NotionGateway) -> None:
    run = "http://127.0.0.1:4200/runs/flow-run/abc"
    wanted = {
        _make(gateway, "queued", S.QUEUED).page_id,
        _make(gateway, "assets decided", S.ASSETS_READY, review="Approve").page_id,
        _make(gateway, "videos decided", S.VIDEOS_READY, review="Reject", review_notes="redo: 1").page_id,
        _make(gateway, "audio decided", S.AUDIO_READY, review="Approve").page_id,
        _make(gateway, "final decided", S.READY_FOR_REVIEW, review="Reject").page_id,
        _make(gateway, "under review decided", S.UNDER_REVIEW, review="Approve").page_id,
        _make(gateway, "moved to approved", S.REVIEW_APPROVED, run_url=run).page_id,
        _make(gateway, "moved to rejected", S.REVIEW_REJECTED, run_url=run).page_id,
    }
    for title, status, updates in [
        ("draft", S.DRAFT, {}),
        ("planning", S.READY_FOR_PLANNING, {}),
        ("assets waiting", S.ASSETS_READY, {}),
        ("final waiting", S.READY_FOR_REVIEW, {}),
        ("processing with review", S.PROCESSING, {"review": "Approve"}),
        ("composites with review", S.COMPOSITES_READY, {"review": "Reject"}),
        ("old approval", S.REVIEW_APPROVED, {}),
        ("old rejection", S.REVIEW_REJECTED, {"review": "Reject"}),
        ("done", S.UPLOAD_COMPLETE, {"run_url": run}),
        ("error", S.ERROR_RETRIABLE, {}),
    ]:
        _make(gateway, title, status, **updates)
    gateway.archive(_make(gateway, "queued then archived", S.QUEUED).page_id)

    before = gateway.requests_sent
    found = gateway.find_work()
    assert gateway.requests_sent - before == 1
    assert {e.page_id for e in found} == wanted


def test_find_work_sorts_by_priority_then_age(gateway: NotionGateway) -> None:
    made = [
        gateway.create_entry(title=f"e{i}", channel="Wild Frontiers", topic="t", priority=p, status=S.QUEUED)
        for i, p in enumerate(["Low", "Normal", "High", "Normal", "High", "Low"])
    ]
    found = gateway.find_work()
    ranks = [(Priority(e.priority).rank, e.created_time) for e in found]
    assert ranks == sorted(ranks)
    assert [e.title for e in found] == ["e2", "e4", "e1", "e3", "e0", "e5"]
    assert len(made) == len(found)


def test_idle_find_work_costs_one_request_whatever_the_size(gateway: NotionGateway) -> None:
    _bulk_create(gateway, 150, "done ", S.UPLOAD_COMPLETE, channel="Chronicle Vault")
    before = gateway.requests_sent
    assert gateway.find_work() == []
    assert gateway.requests_sent - before == 1


def test_queries_paginate_at_100(gateway: NotionGateway) -> None:
    ids = _bulk_create(gateway, 230, "q", S.QUEUED)
    before = gateway.requests_sent
    found = gateway.find_work()
    assert gateway.requests_sent - before == 3
    assert sorted(e.page_id for e in found) == sorted(ids)
    before = gateway.requests_sent
    assert len(gateway.list_entries()) == 230
    assert gateway.requests_sent - before == 3


# --- updates ---------------------------------------------------------------------------------------


def test_update_writes_changes_and_stamps_updated(gateway: NotionGateway, server: LocalNotionServer) -> None:
    entry = _make(gateway, "w", S.QUEUED)
    moved = gateway.update_entry(
        entry, status=S.PROCESSING, cost_usd=0.42, workspace="/tmp/w", run_url="http://127.0.0.1:4200/runs/1", error="oops"
    )
    assert (moved.status, moved.cost_usd, moved.workspace, moved.run_url, moved.error) == (
        "Processing", 0.42, "/tmp/w", "http://127.0.0.1:4200/runs/1", "oops"
    )
    assert gateway.get_entry(entry.page_id) == moved
    with httpx.Client(base_url=f"{server.base_url}/v1/") as http:
        headers = {"Authorization": f"Bearer {server.token}", "Notion-Version": "2025-09-03"}
        page = http.get(f"pages/{entry.page_id}", headers=headers).json()
    assert page["properties"][Prop.UPDATED]["date"]["start"] is not None
    cleared = gateway.update_entry(moved, error="", run_url="", video_url="https://youtu.be/x")
    assert (cleared.error, cleared.run_url, cleared.video_url) == ("", None, "https://youtu.be/x")


def test_review_can_be_set_and_cleared(gateway: NotionGateway) -> None:
    entry = _make(gateway, "r", S.ASSETS_READY, review="Reject", review_notes="redo: 2, 4")
    assert (entry.review, entry.review_notes) == ("Reject", "redo: 2, 4")
    cleared = gateway.update_entry(entry, status=S.ASSETS_GENERATING, review=None, review_notes="")
    assert (cleared.status, cleared.review, cleared.review_notes) == ("Assets Generating", None, "")


def test_update_with_nothing_changed_sends_nothing(gateway: NotionGateway) -> None:
    entry = _make(gateway, "same", S.PROCESSING, error="e", cost_usd=1.0, run_url="http://r/1")
    before = gateway.requests_sent
    same = gateway.update_entry(entry, status=S.PROCESSING, error="e", cost_usd=1.0, run_url="http://r/1", review=None)
    assert same is entry
    assert gateway.update_entry(entry) is entry
    assert gateway.requests_sent == before


def test_illegal_transition_is_refused_before_sending(gateway: NotionGateway) -> None:
    entry = _make(gateway, "draft", S.DRAFT)
    before = gateway.requests_sent
    with pytest.raises(IllegalTransition, match="from 'Draft' to 'Upload Complete'"):
        gateway.update_entry(entry, status=S.UPLOAD_COMPLETE)
    assert gateway.requests_sent == before
    assert gateway.get_entry(entry.page_id).status == "Draft"


# --- rate limit, retries and errors ----------------------------------------------------------------


def test_429_retry_after_is_honoured(tmp_path: Path, channels: dict[str, Channel]) -> None:
    """A server allowing 2 requests/second; the gateway (no client-side limit) must wait as told."""
    sent: list[float] = []
    answers: list[tuple[float, int, str | None]] = []
    http = httpx.Client(
        event_hooks={
            "request": [lambda request: sent.append(time.monotonic())],
            "response": [lambda r: answers.append((time.monotonic(), r.status_code, r.headers.get("retry-after")))],
        }
    )
    with LocalNotionServer(tmp_path / "limited.sqlite", rate_limit=2) as srv:
        gw = NotionGateway(srv.token, base_url=srv.base_url, client=http, limiter=TokenBucket.unlimited(),
                           retry=RetryPolicy(attempts=6, max_retry_after_s=5))
        gw.create_database(parent_page_id=None, title="Video Pipeline", channels=channels)
        for _ in range(12):  # until the server has said 429 and a later request got through
            assert gw.find_work() == []
            if any(status == 429 for _, status, _ in answers[:-1]):
                break
    limited = [(i, at, wait) for i, (at, status, wait) in enumerate(answers) if status == 429]
    assert limited, "the server should have rate limited a burst of requests"
    for i, at, wait in limited:
        assert wait is not None
        assert sent[i + 1] - at >= float(wait) - 0.05  # the next attempt waited at least Retry-After
    assert answers[-1][1] == 200


def test_shared_limiter_paces_requests(server: LocalNotionServer, channels: dict[str, Channel]) -> None:
    bucket = TokenBucket(rate=20, capacity=2)
    with _gateway(server, limiter=bucket) as gw:
        gw.create_database(parent_page_id=None, title="Video Pipeline", channels=channels)
        start = time.monotonic()
        for _ in range(10):
            gw.find_work()
        # A full bucket lets its capacity through at once (it refilled while the database was made); the
        # other 8 wait 1/20 s each. Unpaced, ten local requests take a fraction of that.
        assert time.monotonic() - start >= (10 - bucket.capacity) / 20 - 0.01


def test_unreachable_server_is_one_actionable_line() -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    gw = NotionGateway("tok", base_url=url, data_source_id="00000000-0000-4000-8000-0000000000d5", limiter=TokenBucket.unlimited(), retry=FAST)
    with pytest.raises(NotionUnavailable) as info:
        gw.find_work()
    message = str(info.value)
    assert message.startswith(  # the port to serve on is the one in the address
        f"Notion at {url} is not reachable — start it with `uv run vidgen notion serve --port {port}` or check NOTION_BASE_URL"
    )
    assert "\n" not in message
    assert gw.requests_sent == FAST.attempts


def test_wrong_token_is_unauthorized(server: LocalNotionServer) -> None:
    gw = NotionGateway("secret_wrong", base_url=server.base_url, data_source_id="00000000-0000-4000-8000-0000000000d5", limiter=TokenBucket.unlimited(), retry=FAST)
    with pytest.raises(NotionUnauthorized, match="check NOTION_TOKEN"):
        gw.find_work()
    assert gw.requests_sent == 1  # never retried


def test_missing_data_source_is_not_found(server: LocalNotionServer, channels: dict[str, Channel]) -> None:
    with _gateway(server, data_source_id="00000000-0000-4000-8000-000000000000") as gw:
        with pytest.raises(NotionNotFound, match="run `uv run vidgen notion init`"):
            gw.find_work()
        with pytest.raises(NotionNotFound):
            gw.sync_channel_options(channels)


def test_no_data_source_configured_is_not_found_without_a_request(server: LocalNotionServer) -> None:
    with _gateway(server) as gw:
        with pytest.raises(NotionNotFound, match="NOTION_DATA_SOURCE_ID is not set"):
            gw.list_entries()
        assert gw.requests_sent == 0


def test_missing_page_is_not_found(gateway: NotionGateway) -> None:
    with pytest.raises(NotionNotFound, match="page 00000000-0000-4000-8000-000000000001"):
        gateway.get_entry("00000000-0000-4000-8000-000000000001")
