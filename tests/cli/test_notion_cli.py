"""`vidgen notion serve|init`, `vidgen new`, `vidgen board`, `vidgen poll` against a live local Notion server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import vidgen.notion.gateway as gateway_module
from vidgen.cli import app
from vidgen.config import (
    LEGACY_LOCAL_NOTION_TOKEN,
    LOCAL_NOTION_TOKEN_KEY,
    Paths,
    local_notion_token,
    read_env_file,
    write_env_file,
)
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.ratelimit import TokenBucket
from vidgen.notion.server import LocalNotionServer
from vidgen.statuses import NotionStatus

runner = CliRunner()


@pytest.fixture
def server(vidgen_env: Path, tmp_path: Path) -> Iterator[LocalNotionServer]:
    """A fresh local Notion server per test, knowing this installation's token as `vidgen notion serve`
    would: each `init` starts from an empty store."""
    with LocalNotionServer(tmp_path / "notion-store.sqlite", token=local_notion_token(Paths.from_env())) as started:
        yield started


@pytest.fixture
def unpaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands share the 3 requests/second limiter; most tests need not wait for it."""
    monkeypatch.setattr(gateway_module, "shared_limiter", lambda base_url, token: TokenBucket.unlimited())


def _run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def _flat(text: str) -> str:
    """Rich wraps at the runner's 80 columns; compare words, not line breaks."""
    return " ".join(text.split())


def _init(server: LocalNotionServer) -> str:
    result = _run("notion", "init", "--base-url", server.base_url, "--token", server.token)
    assert result.exit_code == 0, result.output
    return read_env_file(Paths.from_env().notion_env_file)["NOTION_DATA_SOURCE_ID"]


def _gateway() -> NotionGateway:
    saved = read_env_file(Paths.from_env().notion_env_file)
    return NotionGateway(
        saved["NOTION_TOKEN"], base_url=saved["NOTION_BASE_URL"], data_source_id=saved["NOTION_DATA_SOURCE_ID"],
        limiter=TokenBucket.unlimited(),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_init_creates_the_database_prints_and_saves_the_settings(vidgen_env: Path, server: LocalNotionServer) -> None:
    result = _run("notion", "init", "--base-url", server.base_url, "--token", server.token)
    assert result.exit_code == 0, result.output
    saved = read_env_file(Paths.from_env().notion_env_file)
    assert saved["NOTION_TOKEN"] == server.token and saved["NOTION_BASE_URL"] == server.base_url
    lines = result.stdout.splitlines()
    for key in ("NOTION_BASE_URL", "NOTION_DATA_SOURCE_ID"):
        assert f"{key}={saved[key]}" in lines
    assert f"NOTION_TOKEN=secret_…{server.token[-4:]}" in lines and server.token not in result.output  # masked
    assert "Created the Video Pipeline database" in _flat(result.stdout)

    again = _run("notion", "init")  # no options: the saved settings are reused, not a new database
    assert again.exit_code == 0, again.output
    assert "Reusing the Video Pipeline database" in _flat(again.stdout)
    assert "channel options are up to date" in _flat(again.stdout)
    assert read_env_file(Paths.from_env().notion_env_file) == saved


def test_init_replaces_a_saved_database_that_is_gone(vidgen_env: Path, server: LocalNotionServer, unpaced: None) -> None:
    paths = Paths.from_env()
    write_env_file(paths.notion_env_file, {
        "NOTION_TOKEN": server.token, "NOTION_BASE_URL": server.base_url,
        "NOTION_DATA_SOURCE_ID": "00000000-0000-4000-8000-00000000dead",
    })
    result = _run("notion", "init")
    assert result.exit_code == 0, result.output
    assert "is gone; creating a new one" in _flat(result.stdout)
    assert read_env_file(paths.notion_env_file)["NOTION_DATA_SOURCE_ID"] != "00000000-0000-4000-8000-00000000dead"


def test_init_defaults_to_the_local_server_address(vidgen_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_create(self: NotionGateway, **kwargs: Any) -> tuple[str, str]:
        seen.update(url=self.url, data_source_id=self.data_source_id)
        return "db-1", "ds-1"

    monkeypatch.setattr(NotionGateway, "create_database", fake_create)
    result = _run("notion", "init")
    assert result.exit_code == 0, result.output
    assert seen["url"] == "http://127.0.0.1:8765"
    saved = read_env_file(Paths.from_env().notion_env_file)
    token = saved.pop(LOCAL_NOTION_TOKEN_KEY)  # this installation's own, made on first use
    assert token.startswith("secret_") and len(token) > 40 and token != LEGACY_LOCAL_NOTION_TOKEN
    assert saved == {"NOTION_TOKEN": token, "NOTION_BASE_URL": "http://127.0.0.1:8765", "NOTION_DATA_SOURCE_ID": "ds-1"}
    assert token not in result.output and f"NOTION_TOKEN=secret_…{token[-4:]}" in result.output


def test_init_uses_notion_base_url_alone_for_a_local_server_on_its_port(
    vidgen_env: Path, server: LocalNotionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not server.base_url.endswith(":8765")  # a port of the user's choosing, not the default
    monkeypatch.setenv("NOTION_BASE_URL", server.base_url)  # and no NOTION_TOKEN
    result = _run("notion", "init")
    assert result.exit_code == 0, result.output
    assert "Created the Video Pipeline database" in _flat(result.stdout)
    saved = read_env_file(Paths.from_env().notion_env_file)
    assert (saved["NOTION_TOKEN"], saved["NOTION_BASE_URL"]) == (server.token, server.base_url)
    assert _gateway().list_entries() == []  # the saved database is on that server


def test_init_uses_base_url_option_alone_for_a_local_server(vidgen_env: Path, server: LocalNotionServer) -> None:
    result = _run("notion", "init", "--base-url", server.base_url)
    assert result.exit_code == 0, result.output
    saved = read_env_file(Paths.from_env().notion_env_file)
    assert (saved["NOTION_TOKEN"], saved["NOTION_BASE_URL"]) == (server.token, server.base_url)


def test_init_environment_wins_over_the_saved_settings_as_a_whole(
    vidgen_env: Path, server: LocalNotionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _save("secret_real_workspace", "")  # an earlier init against real Notion
    monkeypatch.setenv("NOTION_BASE_URL", server.base_url)
    result = _run("notion", "init")
    assert result.exit_code == 0, result.output  # the real token was not sent to the local server
    saved = read_env_file(Paths.from_env().notion_env_file)
    assert (saved["NOTION_TOKEN"], saved["NOTION_BASE_URL"]) == (server.token, server.base_url)


def test_init_for_a_remote_address_without_a_token_says_so(vidgen_env: Path) -> None:
    result = _run("notion", "init", "--base-url", "https://notion-proxy.example.com")
    assert result.exit_code == 1
    assert "https://notion-proxy.example.com is not a local Notion server, so it needs a token" in _flat(result.stderr)
    assert not Paths.from_env().notion_env_file.exists()


def test_init_for_real_notion_needs_a_parent_page(vidgen_env: Path) -> None:
    result = _run("notion", "init", "--token", "secret_real")
    assert result.exit_code == 1
    assert "needs --parent-page-id" in _flat(result.stderr)


def test_new_creates_entries_by_channel_id_or_value(vidgen_env: Path, server: LocalNotionServer, unpaced: None) -> None:
    _init(server)
    draft = _run("new", "--title", "Wolves", "--channel", "wild_frontiers", "--topic", "Wolves and rivers", "--priority", "high")
    assert draft.exit_code == 0, draft.output
    assert "Created 'Wolves' in Wild Frontiers as Draft (High)" in _flat(draft.stdout)
    queued = _run("new", "--title", "Rome", "--channel", "Chronicle Vault", "--topic", "The fall of Rome",
                  "--direction", "Start with the aqueducts.", "--queue")
    assert queued.exit_code == 0, queued.output
    entries = {e.title: e for e in _gateway().list_entries()}
    assert (entries["Wolves"].status, entries["Wolves"].priority, entries["Wolves"].channel) == ("Draft", "High", "Wild Frontiers")
    assert (entries["Rome"].status, entries["Rome"].story_direction) == ("Queued", "Start with the aqueducts.")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--channel", "cooking"], "unknown channel 'cooking' — use a channel id or its Notion value"),
        (["--priority", "urgent"], "unknown priority 'urgent' — use one of: Low, Normal, High"),
        (["--topic", "https://example.com/wolves"], "cannot create this entry: Topic is only a link"),
        (["--title", "  "], "cannot create this entry: Title is only spaces"),
    ],
)
def test_new_refuses_bad_input_in_one_line(
    vidgen_env: Path, server: LocalNotionServer, unpaced: None, args: list[str], message: str
) -> None:
    _init(server)
    base = {"--title": "Wolves", "--channel": "wild_frontiers", "--topic": "Wolves and rivers"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    result = _run("new", *[x for kv in base.items() for x in kv])
    assert result.exit_code == 1
    assert message in _flat(result.stderr)
    assert "Traceback" not in result.output
    assert _gateway().list_entries() == []


def test_new_refuses_a_duplicate_title(vidgen_env: Path, server: LocalNotionServer, unpaced: None) -> None:
    _init(server)
    args = ["new", "--title", "Wolves", "--channel", "wild_frontiers", "--topic", "Wolves and rivers"]
    assert _run(*args).exit_code == 0
    result = _run(*args)
    assert result.exit_code == 1
    assert "Title duplicates another entry in this channel" in _flat(result.stderr)


def test_board_groups_by_status_in_workflow_order(vidgen_env: Path, server: LocalNotionServer, unpaced: None) -> None:
    _init(server)
    gw = _gateway()
    gw.create_entry(title="Queued one", channel="Wild Frontiers", topic="t", status=NotionStatus.QUEUED)
    done = gw.create_entry(title="Done one", channel="Chronicle Vault", topic="t", status=NotionStatus.UPLOADING)
    gw.update_entry(done, status=NotionStatus.UPLOAD_COMPLETE, cost_usd=1.5, video_url="https://youtu.be/abc")
    failed = gw.create_entry(title="Broken", channel="Wild Frontiers", topic="t", status=NotionStatus.PROCESSING)
    gw.update_entry(failed, status=NotionStatus.ERROR_API_FAILURE, error="KIE said 402\nsecond line")
    gw.create_entry(title="Draft one", channel="Wild Frontiers", topic="t", priority="Low")

    result = _run("board")
    assert result.exit_code == 0, result.output
    out = result.stdout
    positions = [out.index(h) for h in ("Draft (1)", "Queued (1)", "Upload Complete (1)", "Error: API Failure (1)")]
    assert positions == sorted(positions)
    flat = _flat(out)
    for text in ("Draft one", "Low", "Chronicle Vault", "$1.50", "https://youtu.be/abc", "KIE said 402", "4 entries in 4 statuses"):
        assert text in flat
    assert "second line" not in flat


def test_board_when_empty(vidgen_env: Path, server: LocalNotionServer, unpaced: None) -> None:
    _init(server)
    result = _run("board")
    assert result.exit_code == 0
    assert "The board is empty" in _flat(result.stdout)


def test_poll_once_prints_starts_rejections_and_decisions(vidgen_env: Path, server: LocalNotionServer, unpaced: None) -> None:
    _init(server)
    gw = _gateway()
    gw.create_entry(title="Good", channel="Wild Frontiers", topic="Wolves", status=NotionStatus.QUEUED)
    bad = gw.create_entry(title="Bad", channel="Wild Frontiers", topic="https://example.com", status=NotionStatus.QUEUED)
    gate = gw.create_entry(title="Gate", channel="Chronicle Vault", topic="Rome", status=NotionStatus.VIDEOS_READY)
    gw.update_entry(gate, review="Reject", review_notes="redo: 2, 4")

    result = _run("poll", "--once")
    assert result.exit_code == 0, result.output
    flat = _flat(result.stdout)
    assert "Would start (1): 1. [Wild Frontiers] Good — Normal" in flat
    assert "Rejected, sent back to Draft (1): - Bad" in flat
    assert "Topic is only a link" in flat
    assert "Review decisions (1): - Gate at Videos Ready: reject, redo [2, 4]" in flat
    assert "Notion requests: 3." in flat
    assert gw.get_entry(bad.page_id).status == "Draft"


def test_poll_dry_run_moves_nothing(vidgen_env: Path, server: LocalNotionServer, unpaced: None) -> None:
    _init(server)
    gw = _gateway()
    bad = gw.create_entry(title="Bad", channel="Wild Frontiers", topic="...", status=NotionStatus.QUEUED)
    result = _run("poll", "--once", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would be sent back to Draft (dry run) (1)" in _flat(result.stdout)
    assert gw.get_entry(bad.page_id).status == "Queued"


def test_poll_without_once_points_to_the_deployment(vidgen_env: Path) -> None:
    result = _run("poll")
    assert result.exit_code == 2
    assert "continuous polling is the Prefect deployment — run `uv run vidgen serve`" in _flat(result.stderr)


def test_commands_before_init_say_to_run_init(vidgen_env: Path) -> None:
    for args in (["board"], ["poll", "--once"], ["new", "--title", "T", "--channel", "wild_frontiers", "--topic", "x y"]):
        result = _run(*args)
        assert result.exit_code == 1, args
        assert "Notion is not set up — run `uv run vidgen notion init`" in _flat(result.stderr)


def _save(token: str, base_url: str, data_source_id: str = "00000000-0000-4000-8000-000000000000") -> None:
    write_env_file(Paths.from_env().notion_env_file, {
        "NOTION_TOKEN": token, "NOTION_BASE_URL": base_url, "NOTION_DATA_SOURCE_ID": data_source_id,
    })


def test_unreachable_server_is_one_line(vidgen_env: Path, monkeypatch: pytest.MonkeyPatch, unpaced: None) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    _save("secret_" + "t" * 40, url)
    from vidgen.notion.ratelimit import RetryPolicy

    monkeypatch.setattr(gateway_module, "RetryPolicy", lambda: RetryPolicy(attempts=2, initial_wait_s=0.01, jitter_s=0))
    result = _run("board")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert _flat(result.stderr).startswith(
        f"error: Notion at {url} is not reachable — start it with `uv run vidgen notion serve --port {url.rsplit(':', 1)[1]}` "
        "or check NOTION_BASE_URL"
    )


def test_wrong_token_and_missing_database(vidgen_env: Path, server: LocalNotionServer, unpaced: None) -> None:
    _save("secret_wrong", server.base_url)
    result = _run("poll", "--once")
    assert result.exit_code == 1
    assert "refused the token (HTTP 401) — check NOTION_TOKEN" in _flat(result.stderr)
    _save(server.token, server.base_url)
    result = _run("board")
    assert result.exit_code == 1
    assert "was not found" in _flat(result.stderr) and "run `uv run vidgen notion init`" in _flat(result.stderr)


def test_invalid_channel_file_is_one_line(vidgen_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "channels"
    broken.mkdir()
    (broken / "bad.yaml").write_text("id: Bad Id\nname: x\nnotion_value: x\nstyle: {preamble: p}\n", encoding="utf-8")
    monkeypatch.setenv("VIDGEN_CHANNELS_DIR", str(broken))
    result = _run("poll", "--once")
    assert result.exit_code == 1
    flat = _flat(result.stderr)
    assert "bad.yaml: invalid channel configuration; id:" in flat
    assert "Traceback" not in result.output


def test_serve_runs_the_server_on_the_home_store(vidgen_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vidgen.notion.server as server_module

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(server_module, "serve_forever", lambda *args, **kw: calls.append((*args, kw)))
    result = _run("notion", "serve", "--port", "9911", "--rate-limit", "0")
    assert result.exit_code == 0, result.output
    token = local_notion_token(Paths.from_env())  # made by the first serve, saved in notion.env
    assert calls == [(Paths.from_env().notion_store, "127.0.0.1", 9911, token, None, {"legacy_token": False})]
    assert token not in result.output and f"secret_…{token[-4:]}" in result.output
    _run("notion", "serve")
    assert calls[-1][2:] == (8765, token, 3.0, {"legacy_token": False})


def test_serve_port_in_use_is_one_line(vidgen_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vidgen.notion.server as server_module

    def busy(*args: Any, **settings: Any) -> None:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(server_module, "serve_forever", busy)
    result = _run("notion", "serve", "--port", "9912")
    assert result.exit_code == 1
    assert "cannot listen on 127.0.0.1:9912 (Address already in use)" in _flat(result.stderr)
