"""Starting and stopping the local Notion server."""

from __future__ import annotations

import socket
from pathlib import Path

import notion_client
import pytest

from vidgen.notion.server import LocalNotionServer, serve_forever


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_refuses_non_loopback_hosts(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValueError, match="loopback|this machine only"):
        LocalNotionServer(tmp_path / "s.sqlite", host=host)
    with pytest.raises(ValueError, match="this machine only"):
        serve_forever(tmp_path / "s.sqlite", host=host, port=0)


def test_base_url_is_what_notion_client_expects(tmp_path: Path) -> None:
    server = LocalNotionServer(tmp_path / "s.sqlite")
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with server:
        assert server.base_url == f"http://127.0.0.1:{server.port}" and server.port > 0
        client = notion_client.Client(auth=server.token, base_url=server.base_url)
        assert str(client.client.base_url) == f"{server.base_url}/v1/"
        assert client.users.me()["object"] == "user"
        assert server.start() is server  # already running: no second server
    server.stop()  # stopping twice is harmless
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0


def test_fixed_port_and_store_directory_created(tmp_path: Path) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    store = tmp_path / "nested" / "dir" / "s.sqlite"
    with LocalNotionServer(store, port=port) as server:
        assert server.base_url.endswith(f":{port}")
        assert notion_client.Client(auth=server.token, base_url=server.base_url).users.me()["type"] == "bot"
    assert store.is_file()
