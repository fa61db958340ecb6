"""`vidgen notion init --webhook-url`: the local server subscribes the receiver and verifies it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import vidgen.notion.gateway as gateway_module
from vidgen.cli import app
from vidgen.cli.notion_cmds import _subscribe_webhooks
from vidgen.config import NotionSettings
from vidgen.notion.ratelimit import TokenBucket
from vidgen.loopback import LoopbackServer
from vidgen.notion.server import LocalNotionServer
from vidgen.webhooks import ReceiverConfig, create_webhook_app

runner = CliRunner()


def test_init_subscribes_the_receiver_at_the_local_server(
    vidgen_env: Path, notion_server: LocalNotionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway_module, "shared_limiter", lambda base_url, token: TokenBucket.unlimited())
    config = ReceiverConfig(token_file=vidgen_env / "token", events_db=vidgen_env / "events.sqlite")
    receiver = LoopbackServer(create_webhook_app(lambda page, kind: None, config, announce=lambda _: None), lifespan="off")
    receiver.start()
    try:
        url = f"http://127.0.0.1:{receiver.port}/webhooks/notion"
        result = runner.invoke(
            app, ["notion", "init", "--base-url", notion_server.base_url, "--token", notion_server.token, "--webhook-url", url]
        )
        assert result.exit_code == 0, result.output
        assert "sends page events to" in " ".join(result.output.split())
        deadline = time.monotonic() + 5
        while not config.token_file.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        subscription = notion_server.webhooks.subscription
        assert subscription is not None and subscription.url == url
        assert config.token_file.read_text().strip() == subscription.verification_token
    finally:
        receiver.stop()


def test_init_for_real_notion_explains_where_to_subscribe(capsys: pytest.CaptureFixture[str]) -> None:
    _subscribe_webhooks(NotionSettings(token="secret_real"), "https://example.org/webhooks/notion")
    shown = " ".join(capsys.readouterr().out.split())
    assert "Webhooks > Create a subscription with https://example.org/webhooks/notion" in shown
