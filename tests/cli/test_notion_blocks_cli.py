"""`vidgen notion blocks PAGE_ID`: a card's page body (its gate previews) in the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import vidgen.notion.gateway as gateway_module
from vidgen.cli import app
from vidgen.config import Paths, read_env_file
from vidgen.media.ffmpeg import run_ffmpeg
from vidgen.models import Priority
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.ratelimit import TokenBucket
from vidgen.previews import PreviewItem, publish_gate_previews

runner = CliRunner()


@pytest.fixture(autouse=True)
def unpaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway_module, "shared_limiter", lambda base_url, token: TokenBucket.unlimited())


def test_blocks_prints_a_cards_previews(notion_server, tmp_path: Path) -> None:
    result = runner.invoke(app, ["notion", "init", "--base-url", notion_server.base_url, "--token", notion_server.token])
    assert result.exit_code == 0, result.output
    saved = read_env_file(Paths.from_env().notion_env_file)
    gateway = NotionGateway(saved["NOTION_TOKEN"], base_url=saved["NOTION_BASE_URL"],
                            data_source_id=saved["NOTION_DATA_SOURCE_ID"], limiter=TokenBucket.unlimited())  # fmt: skip
    entry = gateway.create_entry(title="Lions", channel="Wild Frontiers", topic="lions", priority=Priority.NORMAL)
    still = tmp_path / "scene-01.png"
    run_ffmpeg(["-f", "lavfi", "-i", "color=c=red:s=320x180", "-frames:v", "1", str(still)])
    items = [PreviewItem(scene_number=1, kind="image", path=still, caption="a lion at dawn"),
             PreviewItem(scene_number=2, kind="image", path=tmp_path / "missing.png", caption="the pride")]  # fmt: skip
    publish_gate_previews(gateway, entry.page_id, "assets", 1, items)

    result = runner.invoke(app, ["notion", "blocks", entry.page_id])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "▸ ## Images — round 1"
    assert lines[1] == "    Scene 1 — a lion at dawn" and lines[2].startswith("    [image] http://127.0.0.1:")
    assert lines[4].startswith("    ⚠ Preview missing — Scene 2 (image): the file is missing on disk")


def test_blocks_of_an_unknown_page_is_one_line(notion_server) -> None:
    runner.invoke(app, ["notion", "init", "--base-url", notion_server.base_url, "--token", notion_server.token])
    result = runner.invoke(app, ["notion", "blocks", "5b0b4f6e-2a3c-4c1d-9e8f-0a1b2c3d4e5f"])
    assert result.exit_code != 0 and "not found" in result.output


def test_blocks_of_an_id_that_is_not_a_uuid_is_refused_before_any_request(notion_server) -> None:
    runner.invoke(app, ["notion", "init", "--base-url", notion_server.base_url, "--token", notion_server.token])
    result = runner.invoke(app, ["notion", "blocks", "../data_sources/5b0b4f6e-2a3c-4c1d-9e8f-0a1b2c3d4e5f"])
    assert result.exit_code == 1 and "is not a Notion id" in " ".join(result.output.split())
