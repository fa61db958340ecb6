"""`update_card` while Notion is down: the video goes on, the writes wait under VIDGEN_HOME, in order.

The task's function is called directly (`.fn`, no Prefect server), against the real local Notion
server, stopped and started again on the same port.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import tasks.notion as tn
from vidgen.channels import load_channels
from vidgen.config import Paths
from vidgen.models import VideoEntry
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.outbox import CardOutbox, outbox_path
from vidgen.notion.ratelimit import RetryPolicy, TokenBucket
from vidgen.notion.server import LocalNotionServer
from vidgen.statuses import NotionStatus as S

REPO = Path(__file__).resolve().parents[2]
FAST = RetryPolicy(attempts=2, initial_wait_s=0.001, max_wait_s=0.005, jitter_s=0.001, max_retry_after_s=1)
RUN_URL = "http://127.0.0.1:4200/runs/flow-run/abc"


@pytest.fixture
def gateway(vidgen_env: Path, notion_server: LocalNotionServer, monkeypatch: pytest.MonkeyPatch):
    """The tasks' gateway, on the local server with the gateway's retries shortened."""
    with NotionGateway(notion_server.token, base_url=notion_server.base_url, limiter=TokenBucket.unlimited(), retry=FAST) as gw:
        gw.create_database(parent_page_id=None, channels=load_channels(REPO / "channels"))
        monkeypatch.setattr(tn, "notion_gateway", lambda: gw)
        monkeypatch.setattr(tn, "get_run_logger", lambda: logging.getLogger("test.update_card"))
        yield gw


def _queued(gateway: NotionGateway) -> VideoEntry:
    return gateway.create_entry(title="Wolves", channel="Wild Frontiers", topic="Wolves and rivers", status=S.QUEUED)


def test_notion_down_during_several_writes_does_not_fail_the_video(
    gateway: NotionGateway, notion_server: LocalNotionServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    card = tn.update_card.fn(_queued(gateway), S.PROCESSING)
    port = notion_server.port
    notion_server.stop()
    with caplog.at_level(logging.WARNING, logger="test.update_card"):
        card = tn.update_card.fn(card, S.ASSETS_GENERATING, workspace="/ws/wolves", run_url=RUN_URL, error="")
        card = tn.update_card.fn(card, S.ASSETS_READY)  # a gate: the run suspends on this card, not on Notion
        card = tn.update_card.fn(card, S.COMPOSITES_CREATING)
    assert (card.status, card.workspace, card.run_url) == ("Composites Creating", "/ws/wolves", RUN_URL)
    assert caplog.text.count("waits in the outbox") == 3 and "not reachable" in caplog.text

    durable = CardOutbox(outbox_path(Paths.from_env()))  # the file under VIDGEN_HOME, opened afresh
    assert durable.path.is_relative_to(tmp_path / "home")
    assert [w.changes.get("status") for w in durable.pending()] == ["Assets Generating", "Assets Ready", "Composites Creating"]

    with LocalNotionServer(notion_server.store_path, port=port):
        card = tn.update_card.fn(card, S.COMPOSITES_READY)
        held = gateway.get_entry(card.page_id)
    assert (held.status, held.workspace, held.run_url) == ("Composites Ready", "/ws/wolves", RUN_URL)
    assert card.status == "Composites Ready" and card.last_edited_time is not None and durable.count() == 0


def test_a_deleted_page_still_stops_the_run_cleanly(gateway: NotionGateway) -> None:
    card = tn.update_card.fn(_queued(gateway), S.PROCESSING)
    gateway.archive(card.page_id)
    with pytest.raises(tn.EntryGone, match="was deleted"):
        tn.update_card.fn(card, S.ASSETS_GENERATING)
    assert tn.card_outbox().count() == 0


def test_deliver_card_writes_reports_what_it_did(gateway: NotionGateway, notion_server: LocalNotionServer) -> None:
    card = tn.update_card.fn(_queued(gateway), S.PROCESSING)
    port = notion_server.port
    notion_server.stop()
    tn.update_card.fn(card, S.ASSETS_GENERATING)
    assert tn.deliver_card_writes.fn().pending == 1
    with LocalNotionServer(notion_server.store_path, port=port):
        delivery = tn.deliver_card_writes.fn()
        assert (len(delivery.delivered), delivery.pending, delivery.outage) == (1, 0, None)
        assert gateway.get_entry(card.page_id).status == "Assets Generating"
