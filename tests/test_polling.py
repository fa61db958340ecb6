"""poll_once against the local Notion server: what starts (fairly), what goes back to Draft (with its
reasons on the page), which reviews were decided, and what it all costs in requests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from notion_client import Client

from vidgen.channels import Channel, StyleConfig, load_channels
from vidgen.models import ERROR_MAX, OVERLONG_READ_FACTOR, REVIEW_NOTES_MAX, TITLE_MAX, ReviewAction, VideoEntry
from vidgen.notion.errors import NotionInvalidEntry
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.properties import rich_text
from vidgen.notion.ratelimit import RetryPolicy, TokenBucket
from vidgen.notion.server import LocalNotionServer
from vidgen.polling import PollResult, fair_order, is_work, parse_redo, poll_once, poll_page, rejection_text, review_verdict
from vidgen.statuses import NotionStatus
from vidgen.validation import STORY_DIRECTION_MAX, validate_entry

S = NotionStatus
REPO = Path(__file__).resolve().parents[1]
RUN = "http://127.0.0.1:4200/runs/flow-run/1"


@pytest.fixture(scope="module")
def channels() -> dict[str, Channel]:
    found = load_channels(REPO / "channels")
    found["retired_show"] = Channel(
        id="retired_show", name="Retired Show", notion_value="Retired Show", active=False, style=StyleConfig(preamble="p")
    )
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNotionServer]:
    """One server for the module (like the shared `notion_server`, started once); every test gets
    its own database in it, which isolates tests just as well at a fraction of the start-up cost."""
    with LocalNotionServer(tmp_path_factory.mktemp("notion") / "store.sqlite") as srv:
        yield srv


@pytest.fixture
def gateway(server: LocalNotionServer, channels: dict[str, Channel]) -> Iterator[NotionGateway]:
    with NotionGateway(
        server.token, base_url=server.base_url, limiter=TokenBucket.unlimited(), retry=RetryPolicy(attempts=2, initial_wait_s=0.01)
    ) as gw:
        gw.create_database(parent_page_id=None, title="Video Pipeline", channels=channels)
        yield gw


def _raw_page(server: LocalNotionServer, gw: NotionGateway, props: dict[str, Any]) -> str:
    """A page made the way a person might make it in Notion, bypassing the gateway's own checks."""
    notion = Client(auth=server.token, base_url=server.base_url)
    properties: dict[str, Any] = {"Status": {"select": {"name": "Queued"}}}
    for name, value in props.items():
        if name == "Title":
            properties[name] = {"title": rich_text(value)}
        elif name in ("Channel", "Priority", "Status"):
            properties[name] = {"select": {"name": value} if value else None}
        else:
            properties[name] = {"rich_text": rich_text(value)}
    page = notion.pages.create(parent={"type": "data_source_id", "data_source_id": gw.data_source_id}, properties=properties)
    return str(page["id"])


GOOD = {"Title": "Wolves of Yellowstone", "Channel": "Wild Frontiers", "Topic": "How wolves changed the rivers"}

MALFORMED: dict[str, tuple[dict[str, Any], str]] = {
    "no title": ({"Title": ""}, "Title is empty"),
    "blank title": ({"Title": "   "}, "Title is only spaces"),
    "long title": ({"Title": "W" * 300}, "Title is 300 characters long"),
    "title with newline": ({"Title": "Wolves\nagain"}, "line break"),
    "punctuation title": ({"Title": "???"}, "Title has no letters or digits"),
    "no topic": ({"Topic": ""}, "Topic is empty"),
    "blank topic": ({"Topic": "   "}, "Topic is only spaces"),
    "long topic": ({"Topic": "t" * 1001}, "Topic is 1001 characters long"),
    "url topic": ({"Topic": "https://en.wikipedia.org/wiki/Wolf"}, "Topic is only a link"),
    "punctuation topic": ({"Topic": "!!! ..."}, "Topic has no letters or digits"),
    "long direction": ({"Story Direction": "d" * (STORY_DIRECTION_MAX + 1)}, "Story Direction is"),
    "no channel": ({"Channel": None}, "Channel is not set"),
    "unknown channel": ({"Channel": "Cooking Corner"}, "'Cooking Corner' is not a configured channel"),
    "inactive channel": ({"Channel": "Retired Show"}, "'Retired Show' is inactive"),
    "unknown priority": ({"Priority": "Urgent"}, "Priority 'Urgent' is not one of Low, Normal, High"),
}


def test_every_malformed_kind_goes_back_to_draft_with_its_reason_on_the_page(
    server: LocalNotionServer, gateway: NotionGateway, channels: dict[str, Channel]
) -> None:
    ids = {kind: _raw_page(server, gateway, {**GOOD, "Title": f"{kind} video", **fields}) for kind, (fields, _) in MALFORMED.items()}
    good_id = _raw_page(server, gateway, GOOD)

    result = poll_once(gateway, channels)

    assert [e.page_id for e in result.to_start] == [good_id]
    assert {r.entry.page_id for r in result.rejected} == set(ids.values())
    assert result.requests == 2 + len(MALFORMED)  # the query, the duplicate check, one write per refusal
    for kind, page_id in ids.items():
        page = gateway.get_entry(page_id)
        assert page.status == "Draft", kind
        assert MALFORMED[kind][1] in page.error, (kind, page.error)
        assert page.error.startswith("Not started — fix the following, then set Status to Queued again:")
    assert gateway.get_entry(good_id).status == "Queued"  # starting it is the orchestrator's move
    # once refused, they no longer cost anything: the next poll sees only the good one
    again = poll_once(gateway, channels)
    assert [e.page_id for e in again.to_start] == [good_id] and again.rejected == []


def test_duplicate_titles_in_a_channel(server: LocalNotionServer, gateway: NotionGateway, channels: dict[str, Channel]) -> None:
    made = gateway.create_entry(title="Wolves of Yellowstone", channel="Wild Frontiers", topic="t", status=S.UPLOAD_COMPLETE)
    dup = _raw_page(server, gateway, {**GOOD, "Title": "wolves of yellowstone "})
    other_channel = _raw_page(server, gateway, {**GOOD, "Channel": "Chronicle Vault"})
    first = _raw_page(server, gateway, {**GOOD, "Title": "Bears"})
    second = _raw_page(server, gateway, {**GOOD, "Title": "Bears"})

    result = poll_once(gateway, channels)

    assert {e.page_id for e in result.to_start} == {other_channel, first}
    assert {r.entry.page_id for r in result.rejected} == {dup, second}
    assert "duplicates another entry in this channel" in gateway.get_entry(dup).error
    assert made.url is None or made.url in gateway.get_entry(dup).error
    assert result.requests == 2 + 2


def test_valid_entries_start_in_fair_order(server: LocalNotionServer, gateway: NotionGateway, channels: dict[str, Channel]) -> None:
    def make(title: str, channel: str, priority: str) -> str:
        return _raw_page(server, gateway, {"Title": title, "Channel": channel, "Topic": "a topic", "Priority": priority})

    w_low = make("w-low-oldest", "Wild Frontiers", "Low")
    w_normal_1 = make("w-normal-1", "Wild Frontiers", "Normal")
    c_normal = make("c-normal", "Chronicle Vault", "Normal")
    w_high = make("w-high", "Wild Frontiers", "High")
    w_normal_2 = make("w-normal-2", "Wild Frontiers", "Normal")
    c_low = make("c-low", "Chronicle Vault", "Low")

    result = poll_once(gateway, channels)

    assert [e.page_id for e in result.to_start] == [w_high, c_normal, w_normal_1, c_low, w_normal_2, w_low]


def test_idle_poll_costs_one_request(gateway: NotionGateway, channels: dict[str, Channel]) -> None:
    for status in (S.DRAFT, S.PROCESSING, S.ASSETS_READY, S.UPLOAD_COMPLETE, S.REVIEW_REJECTED):
        gateway.create_entry(title=f"{status} one", channel="Wild Frontiers", topic="t", status=status)
    result = poll_once(gateway, channels)
    assert result.requests == 1
    assert result.to_start == result.rejected == result.decisions == []


def test_review_decisions(gateway: NotionGateway, channels: dict[str, Channel]) -> None:
    def at(status: NotionStatus, **updates: Any) -> VideoEntry:
        entry = gateway.create_entry(title=f"{status} r", channel="Wild Frontiers", topic="t", status=status)
        return gateway.update_entry(entry, **updates)

    assets = at(S.ASSETS_READY, review="Approve")
    videos = at(S.VIDEOS_READY, review="Reject", review_notes="Clips 2 and 4 jitter. redo: 2, 4")
    final = at(S.READY_FOR_REVIEW, review="Reject", review_notes="Not for us.")
    approved = at(S.REVIEW_APPROVED, run_url=RUN)
    rejected = at(S.REVIEW_REJECTED, run_url=RUN, review_notes="redo 1-3")
    at(S.AUDIO_READY)  # waiting, undecided

    result = poll_once(gateway, channels)

    verdicts = {d.entry.page_id: d.verdict for d in result.decisions}
    assert set(verdicts) == {assets.page_id, videos.page_id, final.page_id, approved.page_id, rejected.page_id}
    assert verdicts[assets.page_id].action is ReviewAction.APPROVE
    assert (verdicts[videos.page_id].action, verdicts[videos.page_id].redo) == (ReviewAction.REJECT, [2, 4])
    assert verdicts[videos.page_id].notes == "Clips 2 and 4 jitter. redo: 2, 4"
    assert (verdicts[final.page_id].action, verdicts[final.page_id].redo) == (ReviewAction.REJECT, [])
    assert verdicts[approved.page_id].action is ReviewAction.APPROVE
    assert (verdicts[rejected.page_id].action, verdicts[rejected.page_id].redo) == (ReviewAction.REJECT, [1, 2, 3])
    assert result.requests == 1  # decisions are reported, not written


def test_dry_run_writes_nothing(server: LocalNotionServer, gateway: NotionGateway, channels: dict[str, Channel]) -> None:
    bad = _raw_page(server, gateway, {**GOOD, "Topic": ""})
    result = poll_once(gateway, channels, write_back=False)
    assert [r.entry.page_id for r in result.rejected] == [bad]
    assert result.requests == 2
    assert gateway.get_entry(bad).status == "Queued"


def test_a_broken_page_never_hides_the_others(server: LocalNotionServer, gateway: NotionGateway, channels: dict[str, Channel]) -> None:
    notion = Client(auth=server.token, base_url=server.base_url)
    bare = notion.pages.create(
        parent={"type": "data_source_id", "data_source_id": gateway.data_source_id},
        properties={"Status": {"select": {"name": "Queued"}}},
    )["id"]
    odd_review = gateway.update_entry(
        gateway.create_entry(title="odd", channel="Wild Frontiers", topic="t", status=S.ASSETS_READY), review="Maybe"
    )
    unwritable = _raw_page(server, gateway, {**GOOD, "Title": "unwritable", "Topic": ""})
    good = _raw_page(server, gateway, GOOD)

    real_update = gateway.update_entry

    def failing_update(entry: VideoEntry, **changes: Any) -> VideoEntry:
        if entry.page_id == unwritable:
            raise NotionInvalidEntry("Notion refused the request")
        return real_update(entry, **changes)

    gateway.update_entry = failing_update  # type: ignore[method-assign]
    result = poll_once(gateway, channels)

    assert [e.page_id for e in result.to_start] == [good]
    assert {r.entry.page_id for r in result.rejected} == {bare, unwritable}
    assert gateway.get_entry(bare).status == "Draft"
    problems = {p.entry.page_id: p.reasons[0] for p in result.problems}
    assert set(problems) == {odd_review.page_id, unwritable}
    assert "'Maybe'" in problems[odd_review.page_id]
    assert "could not write the reasons back" in problems[unwritable]


# --- one page (what a webhook event triggers) -------------------------------------------------------


def _verdict_of(result: PollResult, page_id: str) -> tuple[str, object]:
    """How a poll result classified one page, comparable across poll_once and poll_page."""
    if any(e.page_id == page_id for e in result.to_start):
        return ("start", None)
    for r in result.rejected:
        if r.entry.page_id == page_id:
            return ("rejected", tuple(r.reasons))
    for d in result.decisions:
        if d.entry.page_id == page_id:
            return ("decision", d.verdict)
    for p in result.problems:
        if p.entry.page_id == page_id:
            return ("problem", tuple(p.reasons))
    return ("nothing", None)


def test_poll_page_classifies_every_page_exactly_as_poll_once(
    server: LocalNotionServer, gateway: NotionGateway, channels: dict[str, Channel]
) -> None:
    pages = [_raw_page(server, gateway, {**GOOD, "Title": f"{kind} video", **fields}) for kind, (fields, _) in MALFORMED.items()]
    pages += [
        _raw_page(server, gateway, GOOD),
        _raw_page(server, gateway, {**GOOD, "Title": "Bears"}),  # the older of two identical requests starts
        _raw_page(server, gateway, {**GOOD, "Title": "Bears "}),  # the newer one is refused
        gateway.create_entry(title="draft", channel="Wild Frontiers", topic="t").page_id,
        gateway.create_entry(title="busy", channel="Wild Frontiers", topic="t", status=S.PROCESSING).page_id,
    ]
    for status, updates in (
        (S.ASSETS_READY, {"review": "Approve"}),
        (S.VIDEOS_READY, {"review": "Reject", "review_notes": "redo: 2, 4"}),
        (S.AUDIO_READY, {"review": "Maybe"}),
        (S.AUDIO_READY, {}),
        (S.REVIEW_APPROVED, {"run_url": RUN}),
        (S.REVIEW_REJECTED, {}),
    ):
        entry = gateway.create_entry(title=f"{status} {updates}", channel="Wild Frontiers", topic="t", status=status)
        pages.append(gateway.update_entry(entry, **updates).page_id)

    board = poll_once(gateway, channels, write_back=False)
    kinds = set()
    for page_id in pages:
        one = poll_page(gateway, channels, page_id, write_back=False)
        assert _verdict_of(one, page_id) == _verdict_of(board, page_id), page_id
        assert not one.gone
        kinds.add(_verdict_of(one, page_id)[0])
    assert kinds == {"start", "rejected", "decision", "problem", "nothing"}


def test_poll_page_writes_the_reasons_back_like_the_poll(server: LocalNotionServer, gateway: NotionGateway, channels: dict[str, Channel]) -> None:
    bad = _raw_page(server, gateway, {**GOOD, "Topic": ""})
    result = poll_page(gateway, channels, bad)
    assert [r.entry.page_id for r in result.rejected] == [bad]
    assert gateway.get_entry(bad).status == "Draft"
    assert result.requests == 3  # read it, the duplicate check, the write
    assert poll_page(gateway, channels, bad).rejected == []  # handled: a redelivered event finds nothing to do


def test_poll_page_reports_deleted_and_missing_pages_as_gone(server: LocalNotionServer, gateway: NotionGateway, channels: dict[str, Channel]) -> None:
    page = _raw_page(server, gateway, GOOD)
    gateway.archive(page)
    deleted = poll_page(gateway, channels, page)
    assert deleted.gone and deleted.to_start == []
    missing = poll_page(gateway, channels, "0f0e0d0c-0b0a-4908-8706-050403020100")
    assert missing.gone and missing.to_start == [] and missing.requests == 1


def test_poll_page_ignores_pages_of_another_database(server: LocalNotionServer, gateway: NotionGateway, channels: dict[str, Channel]) -> None:
    with NotionGateway(server.token, base_url=server.base_url, limiter=TokenBucket.unlimited()) as elsewhere:
        elsewhere.create_database(parent_page_id=None, title="Someone else's", channels=channels)
        foreign = _raw_page(server, elsewhere, GOOD)
    result = poll_page(gateway, channels, foreign)
    assert result.to_start == result.rejected == [] and not result.gone
    assert gateway.get_entry(foreign).status == "Queued"


def test_is_work_agrees_with_the_poll_query(gateway: NotionGateway) -> None:
    made = []
    for status in NotionStatus:
        for updates in ({}, {"review": "Approve"}, {"run_url": RUN}):
            entry = gateway.create_entry(title=f"{status.value} {sorted(updates)}", channel="Wild Frontiers", topic="t", status=status)
            made.append(gateway.update_entry(entry, **updates))
    queried = {e.page_id for e in gateway.find_work()}
    assert {e.page_id for e in made if is_work(e)} == queried
    assert queried  # the grid covers pages on both sides


# --- pure parts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notes", "redo"),
    [
        ("redo: 2, 4", [2, 4]),
        ("Redo 2,4", [2, 4]),
        ("please REDO scenes 3 and 5; the rest is fine", [3, 5]),
        ("redo: 1-3, 7", [1, 2, 3, 7]),
        ("redo: 4–2", [2, 3, 4]),
        ("redo: 2\nalso redo: 9", [2, 9]),
        ("redo: 2, 2, 2", [2]),
        ("looks great", []),
        ("the redone intro is fine, 3 stars", []),
        ("", []),
    ],
)
def test_parse_redo(notes: str, redo: list[int]) -> None:
    assert parse_redo(notes) == redo


def test_parse_redo_caps_absurd_ranges() -> None:
    assert len(parse_redo("redo: 1-100000")) == 500


def test_parse_redo_ignores_numbers_too_long_to_be_scenes() -> None:
    # int() of a 5,000-digit string raises in Python 3.11; a reviewer's typo must not.
    assert parse_redo("redo: " + "9" * 5000 + ", 3") == [3]


def _cpu_seconds(call: Callable[[], object]) -> float:
    """CPU time of `call` in this process: what a parser costs, not how busy the machine is."""
    start = time.process_time()
    call()
    return time.process_time() - start


@pytest.mark.parametrize(
    "notes",
    [
        "redo" + " " * 50_000 + "x",  # the stall: 112 s for one poll with the old regex
        "redo 1" + " " * 50_000 + "x",
        "redo " * 10_000,
        "redo: " + "1 and " * 10_000 + "x",
    ],
    ids=["spaces", "item-then-spaces", "many-keywords", "long-list"],
)
def test_parse_redo_is_linear_on_hostile_notes(notes: str) -> None:
    # The old single regex took 0.32 s at 4,000 spaces and grew with the square of the length, so
    # the bound fails it by orders of magnitude while leaving room for a slow, shared machine.
    assert _cpu_seconds(lambda: parse_redo(notes)) < 0.1


def test_a_50000_space_review_note_on_a_card_is_read_in_under_100_ms(
    gateway: NotionGateway, channels: dict[str, Channel]
) -> None:
    hostile = "redo" + " " * 50_000 + "x then redo: 2"
    entry = gateway.create_entry(title="stalling notes", channel="Wild Frontiers", topic="t", status=S.ASSETS_READY)
    gateway.update_entry(entry, review="Reject", review_notes=hostile)
    read = gateway.get_entry(entry.page_id)

    assert len(read.review_notes) == REVIEW_NOTES_MAX  # cut on reading, before anything parses it
    assert _cpu_seconds(lambda: review_verdict(read)) < 0.1
    decided = poll_page(gateway, channels, entry.page_id).decisions
    assert [(d.verdict.action, d.verdict.redo) for d in decided] == [(ReviewAction.REJECT, [])]


def test_free_text_is_cut_to_its_documented_maximum_on_reading() -> None:
    huge = "w" * 200_000
    entry = VideoEntry(page_id="a", title=huge, topic=huge, story_direction=huge, review_notes=huge, error=huge)
    assert (len(entry.review_notes), len(entry.error)) == (REVIEW_NOTES_MAX, ERROR_MAX)
    assert len(entry.title) == TITLE_MAX * OVERLONG_READ_FACTOR
    assert len(entry.story_direction) == STORY_DIRECTION_MAX * OVERLONG_READ_FACTOR
    reasons = validate_entry(entry, {})
    assert any(r.startswith(f"Title is at least {TITLE_MAX * OVERLONG_READ_FACTOR} characters long") for r in reasons)


def _entry(page_id: str, channel: str, priority: str | None, minutes: int, **fields: Any) -> VideoEntry:
    created = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=minutes)
    return VideoEntry(page_id=page_id, channel=channel, priority=priority, created_time=created, status="Queued", **fields)


def test_fair_order_round_robins_channels(channels: dict[str, Channel]) -> None:
    entries = [
        _entry("w1", "Wild Frontiers", "Normal", 0),
        _entry("w2", "Wild Frontiers", "Normal", 1),
        _entry("w3", "wild_frontiers", None, 2),  # by id, no priority (Normal): same lane
        _entry("c1", "Chronicle Vault", "Low", 3),
        _entry("c2", "Chronicle Vault", "High", 4),
    ]
    assert [e.page_id for e in fair_order(entries, channels)] == ["c2", "w1", "c1", "w2", "w3"]
    assert fair_order([], channels) == []


def test_review_verdict_reads_only_decisions() -> None:
    assert review_verdict(VideoEntry(page_id="a", status="Assets Ready")) is None
    assert review_verdict(VideoEntry(page_id="a", status="Processing", review="Approve")) is None
    verdict = review_verdict(VideoEntry(page_id="a", status="Under Review", review="Reject", review_notes="redo: 0"))
    assert verdict is not None and verdict.action is ReviewAction.REJECT and verdict.redo == [0]


def test_rejection_text_lists_every_reason() -> None:
    text = rejection_text(["Title is empty — x", "Topic is empty — y"])
    assert text.splitlines() == [
        "Not started — fix the following, then set Status to Queued again:",
        "• Title is empty — x",
        "• Topic is empty — y",
    ]
