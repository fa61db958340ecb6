"""Fixtures every test area shares: an isolated vidgen home, and the local Notion server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def vidgen_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh VIDGEN_HOME and workspaces under tmp_path, with the repo's sample channels."""
    home = tmp_path / "home"
    monkeypatch.setenv("VIDGEN_HOME", str(home))
    monkeypatch.setenv("VIDGEN_WORKSPACES", str(tmp_path / "workspaces"))
    monkeypatch.setenv("VIDGEN_CHANNELS_DIR", str(REPO / "channels"))
    for key in ("NOTION_TOKEN", "NOTION_BASE_URL", "NOTION_DATA_SOURCE_ID", "NOTION_WEBHOOK_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


@pytest.fixture
def repo_root() -> Path:
    return REPO


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL tests run where the server answers; elsewhere they are skipped with the reason."""
    if os.environ.get("VIDGEN_SKIP_POSTGRES") != "1":
        return
    skip = pytest.mark.skip(reason="VIDGEN_SKIP_POSTGRES=1")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def notion_server(tmp_path: Path):
    """A started local Notion server on a fresh store under tmp_path (stopped after the test)."""
    from vidgen.notion.server import LocalNotionServer

    with LocalNotionServer(tmp_path / "notion-store.sqlite") as server:
        yield server


@pytest.fixture
def notion_client_sync(notion_server):
    """An unmodified notion-client talking to `notion_server`."""
    import notion_client

    client = notion_client.Client(auth=notion_server.token, base_url=notion_server.base_url)
    yield client
    client.close()
