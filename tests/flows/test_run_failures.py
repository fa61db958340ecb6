"""What a produce-video run says when it fails, and when it stops being restarted after crashes."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import httpx
import prefect.client.orchestration
import pytest
from prefect.states import AwaitingRetry, Crashed, Running, Scheduled
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, temporary_settings

import flows.produce_video as pv
from vidgen.errors import RetriableError
from vidgen.models import VideoEntry
from vidgen.notion.errors import NotionUnavailable
from vidgen.statuses import NotionStatus as S

API = "http://127.0.0.1:4200/api"


def _connect_error(url: str) -> httpx.ConnectError:
    return httpx.ConnectError("All connection attempts failed", request=httpx.Request("POST", url))


@pytest.mark.parametrize(
    "exc, reason",
    [
        (_connect_error(f"{API}/concurrency_limits/increment"),
         "Prefect API unreachable (ConnectError: All connection attempts failed)"),
        (PrefectHTTPStatusError("Server error '503'", request=httpx.Request("GET", f"{API}/flow_runs/x"),
                                response=httpx.Response(503)),
         "Prefect API error (PrefectHTTPStatusError: Server error '503')"),
        (_connect_error("http://10.0.0.9:9000/render"),
         "HTTP request to 10.0.0.9 failed at Videos Generating (ConnectError: All connection attempts failed)"),
        (RetriableError("HTTP 503: upstream down", provider="kling"), "kling: HTTP 503: upstream down"),
        (NotionUnavailable("Notion at http://127.0.0.1:7700 is not reachable"), "Notion at http://127.0.0.1:7700 is not reachable"),
        (KeyError("scene"), "Videos Generating failed: KeyError: 'scene'"),
    ],
)
def test_a_failure_on_the_card_names_the_service_that_failed(exc, reason):
    with temporary_settings({PREFECT_API_URL: API}):
        assert pv.failure_reason(exc, "Videos Generating") == reason


# --- the restart limit ------------------------------------------------------------------------


@pytest.fixture
def restarted(monkeypatch):
    """produce_video's top with the card, the run's count and its history given; records card writes."""
    seen = SimpleNamespace(cards=[], alerts=[], opened=[])
    entry = VideoEntry(page_id="p1", title="Otters", channel="Wild Frontiers", status=S.VIDEOS_GENERATING.value)
    monkeypatch.setattr(pv, "read_entry", lambda page_id: entry)
    monkeypatch.setattr(pv, "update_card", lambda card, status=None, round=1, **f: seen.cards.append((status, f)))
    monkeypatch.setattr(pv, "emit_card_error", lambda **kw: seen.alerts.append(kw))
    monkeypatch.setattr(pv, "restart_history", lambda run_id: "Marked Crashed: no heartbeat for 90 s (its worker stopped)")
    monkeypatch.setattr(pv, "configured_channels", lambda path: seen.opened.append("work") or {})
    monkeypatch.setattr(pv, "channel_for_notion_value", lambda channels, value: None)
    monkeypatch.delenv(pv.MAX_RUN_RESTARTS_ENV, raising=False)

    def run(restarts: int):
        monkeypatch.setattr(pv, "restarts_so_far", lambda: restarts)
        try:
            return pv.produce_video.fn("p1")
        except ValueError:  # went on to the work (stopped here by the unconfigured channel)
            return None

    seen.run = run
    return seen


def test_a_run_restarted_more_often_than_allowed_stops_with_its_history_on_the_card(restarted):
    state = restarted.run(4)
    assert state.is_failed() and not restarted.opened
    ((status, fields),) = restarted.cards
    assert status is S.ERROR_MANUAL_REVIEW
    assert fields["error"].startswith("Restarted 4 times after crashes (limit 3, VIDGEN_MAX_RUN_RESTARTS); "
                                      "last: Marked Crashed: no heartbeat for 90 s (its worker stopped).")
    assert state.message == fields["error"]
    (alert,) = restarted.alerts
    assert alert["step"] == "Videos Generating" and alert["status"] == "Error: Manual Review"


@pytest.mark.parametrize("restarts", [0, 3])
def test_a_run_within_the_limit_goes_on_to_the_work(restarted, restarts):
    assert restarted.run(restarts) is None
    assert restarted.opened == ["work"] and all(s is not S.ERROR_MANUAL_REVIEW for s, _f in restarted.cards)


def test_the_limit_comes_from_the_environment(restarted, monkeypatch):
    monkeypatch.setenv(pv.MAX_RUN_RESTARTS_ENV, "1")
    assert restarted.run(2).is_failed()
    monkeypatch.setenv(pv.MAX_RUN_RESTARTS_ENV, "5")
    assert restarted.run(5) is None


def test_restarts_are_the_starts_after_the_first(monkeypatch):
    monkeypatch.setattr(pv, "runtime", SimpleNamespace(flow_run=SimpleNamespace(run_count=1)))
    assert pv.restarts_so_far() == 0
    monkeypatch.setattr(pv, "runtime", SimpleNamespace(flow_run=SimpleNamespace(run_count=4)))
    assert pv.restarts_so_far() == 3


def test_the_history_names_the_latest_crash_or_shutdown(monkeypatch):
    start = datetime.now(timezone.utc)
    states = [
        Running(), Crashed(message="Marked Crashed: no heartbeat for 90 s"), AwaitingRetry(message="Restarted after a crash"),
        Running(), AwaitingRetry(message="Its worker shut down; the next worker resumes it"), Scheduled(), Running(),
    ]
    for i, state in enumerate(states):
        state.timestamp = start + timedelta(seconds=i)
    client = SimpleNamespace(read_flow_run_states=lambda run_id: list(reversed(states)))

    class Client:
        def __enter__(self):
            return client

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(prefect.client.orchestration, "get_client", lambda sync_client: Client())
    assert pv.restart_history("run-1") == "Its worker shut down; the next worker resumes it"
    assert pv.restart_history(None) == ""


# --- Prefect's own server gone longer than its client waits -------------------------------------


@pytest.fixture
def making(monkeypatch):
    """produce_video down to make_video, with make_video given; records card writes and alerts."""
    from contextlib import contextmanager

    seen = SimpleNamespace(cards=[], alerts=[])
    entry = VideoEntry(page_id="p1", title="Otters", channel="Wild Frontiers", status=S.VIDEOS_GENERATING.value)
    brief = SimpleNamespace(title="Otters", channel_id="wild_frontiers", page_id="p1")
    monkeypatch.setattr(pv, "read_entry", lambda page_id: entry)
    monkeypatch.setattr(pv, "restarts_so_far", lambda: 0)
    monkeypatch.setattr(pv, "configured_channels", lambda path: {})
    monkeypatch.setattr(pv, "channel_for_notion_value", lambda channels, value: SimpleNamespace(id="wild_frontiers"))

    @contextmanager
    def production(_brief):
        yield SimpleNamespace(brief=brief, total_cost=lambda: 0.0)

    monkeypatch.setattr(pv, "open_production", production)
    monkeypatch.setattr(pv, "update_card", lambda card, status=None, round=1, **f: seen.cards.append((status, f)) or card)
    monkeypatch.setattr(pv, "emit_card_error", lambda **kw: seen.alerts.append(kw))
    monkeypatch.setattr(pv, "get_run_logger", lambda: logging.getLogger("produce-video"))

    def run(failure: BaseException):
        def make_video(video):
            raise failure

        monkeypatch.setattr(pv, "make_video", make_video)
        with temporary_settings({PREFECT_API_URL: API}):
            return pv.produce_video.fn("p1")

    seen.run = run
    return seen


def test_a_run_that_lost_prefects_server_for_good_ends_crashed_for_a_restart_not_at_an_error(making):
    """A slot release that found no server after the client's retries (chaos: Prefect down 150 s
    twice): the video did not fail, so the card shows no error and the crash-restart automation runs it again."""
    state = making.run(_connect_error(f"{API}/v2/concurrency_limits/leases/release"))
    assert state.is_crashed()
    assert state.message == ("Prefect API unreachable (ConnectError: All connection attempts failed) at Videos "
                             "Generating; crashed so it is restarted")
    assert making.cards == [] and making.alerts == []


def test_a_failure_elsewhere_still_goes_to_manual_review(making):
    with pytest.raises(httpx.ConnectError):
        making.run(_connect_error("http://10.0.0.9:9000/render"))
    ((status, fields),) = making.cards
    assert status is S.ERROR_MANUAL_REVIEW and fields["error"].startswith("HTTP request to 10.0.0.9 failed")
