"""`vidgen notion review PAGE_ID approve|reject`: a gate decided on the card, as a person does in Notion."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import vidgen.notion.gateway as gateway_module
from vidgen.cli import app
from vidgen.config import Paths, read_env_file
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.ratelimit import TokenBucket
from vidgen.statuses import NotionStatus

runner = CliRunner()


@pytest.fixture(autouse=True)
def unpaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway_module, "shared_limiter", lambda base_url, token: TokenBucket.unlimited())


@pytest.fixture
def gateway(vidgen_env, notion_server) -> NotionGateway:
    result = runner.invoke(app, ["notion", "init", "--base-url", notion_server.base_url, "--token", notion_server.token])
    assert result.exit_code == 0, result.output
    saved = read_env_file(Paths.from_env().notion_env_file)
    return NotionGateway(saved["NOTION_TOKEN"], base_url=saved["NOTION_BASE_URL"],
                         data_source_id=saved["NOTION_DATA_SOURCE_ID"], limiter=TokenBucket.unlimited())  # fmt: skip


def test_review_writes_the_decision_and_notes_on_the_card(gateway: NotionGateway) -> None:
    entry = gateway.create_entry(title="Lions", channel="Wild Frontiers", topic="lions", status=NotionStatus.ASSETS_READY)

    result = runner.invoke(app, ["notion", "review", entry.page_id, "reject", "--notes", "redo: 2"])

    assert result.exit_code == 0, result.output
    card = gateway.get_entry(entry.page_id)
    assert (card.review, card.review_notes) == ("Reject", "redo: 2")
    assert "Review = Reject" in result.output


def test_review_refuses_an_unknown_decision(gateway: NotionGateway) -> None:
    entry = gateway.create_entry(title="Lions", channel="Wild Frontiers", topic="lions", status=NotionStatus.ASSETS_READY)

    result = runner.invoke(app, ["notion", "review", entry.page_id, "maybe"])

    assert result.exit_code == 2 and "use approve or reject" in result.output
    assert gateway.get_entry(entry.page_id).review in (None, "")
