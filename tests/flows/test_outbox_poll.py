"""The poll with Notion down: skipped in one log line, no exception; back up: the waiting card writes
are delivered first, in order, and the poll goes on.

The flow's function runs directly (`.fn`, no Prefect server); the steps that need Prefect's API
(starting runs, reconciling ended runs) are replaced, the Notion side is the real local server.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import flows.poll_notion as pn
import tasks.notion as tn
from vidgen.channels import load_channels
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.ratelimit import RetryPolicy, TokenBucket
from vidgen.notion.server import LocalNotionServer
from vidgen.statuses import NotionStatus as S

REPO = Path(__file__).resolve().parents[2]
FAST = RetryPolicy(attempts=2, initial_wait_s=0.001, max_wait_s=0.005, jitter_s=0.001, max_retry_after_s=1)
LOGGER = "test.poll_notion"


@pytest.fixture
def gateway(vidgen_env: Path, notion_server: LocalNotionServer, monkeypatch: pytest.MonkeyPatch):
    with NotionGateway(notion_server.token, base_url=notion_server.base_url, limiter=TokenBucket.unlimited(), retry=FAST) as gw:
        gw.create_database(parent_page_id=None, channels=load_channels(REPO / "channels"))
        logger = logging.getLogger(LOGGER)
        for module in (tn, pn):
            monkeypatch.setattr(module, "notion_gateway", lambda: gw)
            monkeypatch.setattr(module, "get_run_logger", lambda: logger)
        monkeypatch.setattr(pn, "deliver_card_writes", tn.deliver_card_writes.fn)
        monkeypatch.setattr(pn, "find_work", pn.find_work.fn)
        monkeypatch.setattr(pn, "reconcile_ended_runs", lambda: [])
        yield gw


def test_a_poll_notion_does_not_answer_is_skipped_and_the_next_catches_up(
    gateway: NotionGateway, notion_server: LocalNotionServer, caplog: pytest.LogCaptureFixture
) -> None:
    card = tn.update_card.fn(gateway.create_entry(title="Wolves", channel="Wild Frontiers", topic="Rivers", status=S.QUEUED), S.PROCESSING)
    port = notion_server.port
    notion_server.stop()
    card = tn.update_card.fn(card, S.ASSETS_GENERATING)
    card = tn.update_card.fn(card, S.ASSETS_READY)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        skipped = pn.poll_notion.fn()
    assert skipped == pn.PollSummary()
    assert [r.getMessage() for r in caplog.records] == ["Notion unreachable: skipped this poll; pending card writes: 2"]

    caplog.clear()
    with LocalNotionServer(notion_server.store_path, port=port), caplog.at_level(logging.INFO, logger=LOGGER):
        summary = pn.poll_notion.fn()
        assert gateway.get_entry(card.page_id).status == "Assets Ready"
    assert summary.notion_requests == 1 and not summary.started
    assert not any("unreachable" in r.getMessage() for r in caplog.records)
    assert tn.card_outbox().count() == 0


def test_a_poll_with_nothing_waiting_is_skipped_when_the_board_cannot_be_read(
    gateway: NotionGateway, notion_server: LocalNotionServer, caplog: pytest.LogCaptureFixture
) -> None:
    notion_server.stop()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert pn.poll_notion.fn() == pn.PollSummary()
    assert [r.getMessage() for r in caplog.records] == ["Notion unreachable: skipped this poll; pending card writes: 0"]
