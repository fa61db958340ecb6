"""`vidgen notion init --webhook-url`: the local server subscribes the receiver and verifies it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import vidgen.notion.gateway as gateway_module
from vidgen.cli import app
from vidgen.cli.notion_cmds import _subscribe_webhooks
from vidgen.config import NotionSettings, Paths
from vidgen.notion.ratelimit import TokenBucket
from vidgen.loopback import LoopbackServer
from vidgen.notion.server import LocalNotionServer
from vidgen.webhooks import ReceiverConfig, create_webhook_app

runner = CliRunner()


def test_init_subscribes_the_receiver_at_the_local_server(
    vidgen_env: Path, notion_server: LocalNotionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway_module, "shared_limiter", lambda base_url, token: TokenBucket.unlimited())
    config = ReceiverConfig.from_paths(Paths.from_env())  # where `vidgen serve --webhook-port` keeps its key
    receiver = LoopbackServer(create_webhook_app(lambda page, kind: None, config, announce=lambda _: None), lifespan="off")
    receiver.start()
    try:
        url = f"http://127.0.0.1:{receiver.port}/webhooks/notion"
        result = runner.invoke(
            app, ["notion", "init", "--base-url", notion_server.base_url, "--token", notion_server.token, "--webhook-url", url]
        )
        assert result.exit_code == 0, result.output
        assert "sends page events to" in " ".join(result.output.split())
        assert "verification token secret_…" in " ".join(result.output.split())
        subscription = notion_server.webhooks.subscription
        assert subscription is not None and subscription.url == url
        assert config.token_file.read_text().strip() == subscription.verification_token  # init chose it: the key
        assert subscription.verification_token not in result.output
    finally:
        receiver.stop()


def test_init_for_real_notion_explains_where_to_subscribe(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    paths = Paths(home=tmp_path, channels=tmp_path, workspaces=tmp_path)
    _subscribe_webhooks(NotionSettings(token="secret_real"), "https://example.org/webhooks/notion", paths)
    shown = " ".join(capsys.readouterr().out.split())
    assert "Webhooks > Create a subscription with https://example.org/webhooks/notion" in shown
