"""The board tells the truth about runs: what the poller writes when a run ended without saying so,
and when a card was put back to Queued while its run is busy. Cards live in a real local Notion
server (so the board's transition rules apply); Prefect's side (the runs, each run's last card write)
is given by the test, without a Prefect server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from uuid import uuid4

import pytest
from notion_client import Client
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.events.filters import EventFilter
from prefect.settings import PREFECT_UI_URL, temporary_settings

import flows.poll_notion as poll
from vidgen.channels import load_channels
from vidgen.models import VideoEntry
from vidgen.notion.errors import NotionNotFound
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.ratelimit import RetryPolicy, TokenBucket
from vidgen.notion.server import LocalNotionServer
from vidgen.statuses import NotionStatus as S



REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNotionServer]:
    with LocalNotionServer(tmp_path_factory.mktemp("notion") / "store.sqlite") as srv:
        yield srv


@pytest.fixture
def gateway(server: LocalNotionServer) -> Iterator[NotionGateway]:
    with NotionGateway(
        server.token, base_url=server.base_url, limiter=TokenBucket.unlimited(), retry=RetryPolicy(attempts=2, initial_wait_s=0.01)
    ) as gw:
        gw.create_database(parent_page_id=None, title="Video Pipeline", channels=load_channels(REPO / "channels"))
        yield gw


class Prefect:
    """Prefect's answers for one test: the ended runs, every run per page, each run's last card write."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, gateway: NotionGateway):
        self.ended: list[FlowRun] = []
        self.page_runs: dict[str, list[FlowRun]] = {}
        self.last_written: dict[str, S] = {}
        self.heartbeats: dict[str, list[datetime]] = {}  # event resource id -> when each heartbeat occurred
        self.alerts: list[dict] = []
        monkeypatch.setattr(poll, "notion_gateway", lambda: gateway)
        monkeypatch.setattr(poll, "get_client", lambda sync_client: self)
        monkeypatch.setattr(poll, "runs_for_page", lambda page_id, states: [
            r for r in self.page_runs.get(page_id, []) if r.state.type in states])
        monkeypatch.setattr(poll, "last_card_status", lambda run_id: self.last_written.get(str(run_id)))
        monkeypatch.setattr(poll, "emit_card_error", lambda **kw: self.alerts.append(kw))
        monkeypatch.setattr(poll, "get_run_logger", lambda: logging.getLogger("test"))

    def __enter__(self) -> Prefect:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read_flow_runs(self, **_filters) -> list[FlowRun]:
        return self.ended

    def read_events(self, filter: EventFilter, limit: int) -> SimpleNamespace:
        """Prefect's event query, for heartbeats: the filter's resource, name and time window apply."""
        assert filter.event.name == ["prefect.flow-run.heartbeat"]
        found = [at for resource in filter.resource.id for at in self.heartbeats.get(resource, [])
                 if filter.occurred.since <= at <= filter.occurred.until]
        return SimpleNamespace(events=found[:limit])

    def heartbeat(self, run: FlowRun, s_ago: float) -> None:
        self.heartbeats.setdefault(f"prefect.flow-run.{run.id}", []).append(
            datetime.now(timezone.utc) - timedelta(seconds=s_ago))

    def run(self, page_id: str, state: StateType, *, ended_s_ago: float = 120, created_s_ago: float = 600,
            message: str = "", wrote: S | None = None) -> FlowRun:
        """A produce-video run of the page; an ended one is also among the recently ended runs."""
        now = datetime.now(timezone.utc)  # times relative to the test's own moment, not the module's import
        run = FlowRun(
            id=uuid4(), name=f"history: {page_id[:6]}", flow_id=uuid4(), tags=["channel:chronicle_vault", f"page:{page_id}"],
            state=State(type=state, name=state.value.title(), message=message),
            created=now - timedelta(seconds=created_s_ago),
            end_time=now - timedelta(seconds=ended_s_ago) if state in poll.ENDED_STATES else None,
        )
        self.page_runs.setdefault(page_id, []).append(run)
        if state in poll.ENDED_STATES:
            self.ended.append(run)
        if wrote is not None:
            self.last_written[str(run.id)] = wrote
        return run


@pytest.fixture
def prefect(monkeypatch: pytest.MonkeyPatch, gateway: NotionGateway) -> Prefect:
    return Prefect(monkeypatch, gateway)


@pytest.fixture
def card(server: LocalNotionServer, gateway: NotionGateway):
    """A card at `status`, put there as a person dragging it on the board would (no transition rules)."""

    def make(status: S, title: str = "The Fall of Rome") -> VideoEntry:
        entry = gateway.create_entry(title=title, channel="Chronicle Vault", topic="Rome", status=S.QUEUED)
        Client(auth=server.token, base_url=server.base_url).pages.update(
            entry.page_id, properties={"Status": {"select": {"name": status.value}}}
        )
        return gateway.get_entry(entry.page_id)

    return make


# --- reconcile_ended_runs ---------------------------------------------------------------------
def test_a_crashed_run_whose_card_shows_its_last_write_gets_the_reason_and_an_alert(gateway, prefect, card):
    entry = card(S.VIDEOS_GENERATING)
    run = prefect.run(entry.page_id, StateType.CRASHED, message="no heartbeat for 90 s", wrote=S.VIDEOS_GENERATING)
    assert poll.reconcile_ended_runs.fn() == [entry.page_id]
    after = gateway.get_entry(entry.page_id)
    assert after.notion_status is S.ERROR_MANUAL_REVIEW
    assert after.error == f"Prefect: run {run.name} ended Crashed at Videos Generating: no heartbeat for 90 s"
    (alert,) = prefect.alerts
    assert alert["flow_run_id"] == run.id and alert["step"] == "Videos Generating" and alert["channel_id"] == "chronicle_vault"


def test_a_cancelled_run_is_reconciled_like_a_failed_one(gateway, prefect, card):
    entry = card(S.ASSETS_READY)
    prefect.run(entry.page_id, StateType.CANCELLED, message="cancelled by a person", wrote=S.ASSETS_READY)
    assert poll.reconcile_ended_runs.fn() == [entry.page_id]
    assert "ended Cancelled at Assets Ready: cancelled by a person" in gateway.get_entry(entry.page_id).error


def test_a_run_that_never_wrote_is_expected_at_processing(gateway, prefect, card):
    entry = card(S.PROCESSING)
    prefect.run(entry.page_id, StateType.FAILED, message="boom")
    assert poll.reconcile_ended_runs.fn() == [entry.page_id]


def test_a_page_whose_newer_run_is_live_is_left_to_that_run(gateway, prefect, card):
    entry = card(S.ASSETS_GENERATING)
    prefect.run(entry.page_id, StateType.CRASHED, wrote=S.ASSETS_GENERATING, created_s_ago=900)
    prefect.run(entry.page_id, StateType.RUNNING, created_s_ago=60)
    assert poll.reconcile_ended_runs.fn() == []
    assert gateway.get_entry(entry.page_id).notion_status is S.ASSETS_GENERATING


def test_a_crashed_run_rescheduled_by_the_restart_automation_is_live_again(gateway, prefect, card):
    entry = card(S.VIDEOS_GENERATING)
    run = prefect.run(entry.page_id, StateType.CRASHED, wrote=S.VIDEOS_GENERATING)
    prefect.page_runs[entry.page_id] = [run.model_copy(update={"state": State(type=StateType.SCHEDULED, name="AwaitingRetry")})]
    assert poll.reconcile_ended_runs.fn() == []


def test_only_the_pages_most_recent_run_counts(gateway, prefect, card):
    entry = card(S.UPLOADING)
    prefect.run(entry.page_id, StateType.FAILED, wrote=S.UPLOADING, created_s_ago=900, ended_s_ago=700)
    prefect.run(entry.page_id, StateType.COMPLETED, created_s_ago=600)  # a newer run finished
    assert poll.reconcile_ended_runs.fn() == []


def test_a_run_that_just_ended_is_left_to_the_next_poll(gateway, prefect, card):
    entry = card(S.VIDEOS_GENERATING)
    prefect.run(entry.page_id, StateType.FAILED, wrote=S.VIDEOS_GENERATING, ended_s_ago=2)
    assert poll.reconcile_ended_runs.fn() == []
    assert poll.reconcile_ended_runs.fn(settle_s=1) == [entry.page_id]


def test_a_crashed_run_whose_process_still_beats_is_left_to_go_on(gateway, prefect, card):
    """The zombie automation marked it while its heartbeats could not reach the server (an outage
    longer than 90 s); its process went on and will write the card itself."""
    entry = card(S.VIDEOS_GENERATING)
    run = prefect.run(entry.page_id, StateType.CRASHED, message="Marked Crashed: no heartbeat for 90 s",
                      wrote=S.VIDEOS_GENERATING, ended_s_ago=120)
    prefect.heartbeat(run, s_ago=200)  # before it was marked: says nothing
    assert poll.reconcile_ended_runs.fn() == [entry.page_id]
    entry = card(S.VIDEOS_GENERATING, title="Still going")
    run = prefect.run(entry.page_id, StateType.CRASHED, wrote=S.VIDEOS_GENERATING, ended_s_ago=120)
    prefect.heartbeat(run, s_ago=100)
    assert poll.reconcile_ended_runs.fn() == []
    assert gateway.get_entry(entry.page_id).notion_status is S.VIDEOS_GENERATING


def test_a_run_crashed_too_recently_to_have_beaten_since_waits(gateway, prefect, card):
    within = poll.CRASH_SETTLE_S / 2  # past SETTLE_S, short of a heartbeat period and a half
    assert poll.SETTLE_S < within
    crashed = card(S.VIDEOS_GENERATING)
    prefect.run(crashed.page_id, StateType.CRASHED, wrote=S.VIDEOS_GENERATING, ended_s_ago=within)
    failed = card(S.VIDEOS_GENERATING, title="Failed")
    prefect.run(failed.page_id, StateType.FAILED, wrote=S.VIDEOS_GENERATING, ended_s_ago=within)
    assert poll.reconcile_ended_runs.fn() == [failed.page_id]


def test_a_card_moved_since_the_runs_last_write_is_not_overwritten(gateway, prefect, card):
    entry = card(S.AUDIO_GENERATING)  # the run's final write landed after what it recorded
    prefect.run(entry.page_id, StateType.FAILED, wrote=S.VIDEOS_READY)
    assert poll.reconcile_ended_runs.fn() == []
    assert gateway.get_entry(entry.page_id).notion_status is S.AUDIO_GENERATING


@pytest.mark.parametrize("status", [S.QUEUED, S.ERROR_RETRIABLE, S.UPLOAD_COMPLETE, S.REVIEW_REJECTED, S.DRAFT])
def test_a_card_at_rest_is_left_alone(gateway, prefect, card, status):
    entry = card(status)
    prefect.run(entry.page_id, StateType.CRASHED, wrote=status)
    assert poll.reconcile_ended_runs.fn() == []
    assert gateway.get_entry(entry.page_id).notion_status is status


def test_a_deleted_page_needs_nothing_and_does_not_stop_the_others(gateway, prefect, card, monkeypatch):
    trashed = card(S.VIDEOS_GENERATING, title="Trashed")
    gateway.archive(trashed.page_id)
    prefect.run(trashed.page_id, StateType.CANCELLED, message="Its Notion page was deleted", wrote=S.VIDEOS_GENERATING)
    prefect.run("0" * 32, StateType.CANCELLED, message="Its Notion page was deleted")  # gone from Notion altogether
    live = card(S.SFX_GENERATING, title="Still here")
    prefect.run(live.page_id, StateType.CRASHED, wrote=S.SFX_GENERATING)
    get_entry = gateway.get_entry

    def missing_one(page_id: str) -> VideoEntry:
        if page_id == "0" * 32:
            raise NotionNotFound("gone")
        return get_entry(page_id)

    monkeypatch.setattr(gateway, "get_entry", missing_one)
    assert poll.reconcile_ended_runs.fn() == [live.page_id]


# --- a card re-queued while its run is busy ---------------------------------------------------
def test_a_card_requeued_while_its_run_is_busy_returns_to_the_runs_status_with_a_note(gateway, prefect, card):
    entry = card(S.QUEUED)
    run = prefect.run(entry.page_id, StateType.RUNNING, wrote=S.VIDEOS_GENERATING)
    with temporary_settings({PREFECT_UI_URL: "http://127.0.0.1:4200"}):
        assert poll.start_video.fn(entry, "chronicle_vault", poll.PRODUCE_DEPLOYMENT) is None
    after = gateway.get_entry(entry.page_id)
    assert after.notion_status is S.VIDEOS_GENERATING
    assert after.error == f"already in production: http://127.0.0.1:4200/runs/flow-run/{run.id}"


def test_a_requeued_card_whose_run_has_not_written_yet_returns_to_processing(gateway, prefect, card):
    entry = card(S.QUEUED)
    run = prefect.run(entry.page_id, StateType.SCHEDULED)
    with temporary_settings({PREFECT_UI_URL: None}):
        poll.start_video.fn(entry, "chronicle_vault", poll.PRODUCE_DEPLOYMENT)
    after = gateway.get_entry(entry.page_id)
    assert after.notion_status is S.PROCESSING and after.error == f"already in production: run {run.name}"
