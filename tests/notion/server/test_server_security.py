"""The local Notion server left running on a machine with a browser: the issue's attacks, replayed.

A web page can reach 127.0.0.1 through DNS rebinding (its own name, re-pointed), so the server
answers only requests addressed to loopback names; its token is random per installation and
compared in constant time; a body is refused as soon as it passes the limit, chunked or not; an
uploaded page never runs on the server's origin; uploads never attached are purged.
"""

from __future__ import annotations

import io
import os
import select
import socket
import stat
from pathlib import Path

import httpx
import notion_client
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from vidgen.cli import app as cli
from vidgen.config import (
    LEGACY_LOCAL_NOTION_TOKEN,
    Paths,
    legacy_local_token_in_use,
    local_notion_token,
    read_env_file,
    write_env_file,
)
from vidgen.files import private_mode
from vidgen.notion.server import LocalNotionServer
from vidgen.notion.server.app import create_app
from vidgen.notion.server.uploads import PURGE_AFTER_S, UPLOAD_TTL_S

VERSION = {"Notion-Version": "2025-09-03"}
PARENT = {"type": "page_id", "page_id": "0c1b2a39-48d7-4e65-a3f2-1b0c9d8e7f6a"}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **VERSION}


def test_a_request_for_another_host_name_gets_4xx_even_with_the_token(notion_server: LocalNotionServer) -> None:
    me = f"{notion_server.base_url}/v1/users/me"
    for host in ("attacker.example", "attacker.example:8765", "127.0.0.1.nip.io"):
        answer = httpx.get(me, headers={**_auth(notion_server.token), "Host": host})
        assert 400 <= answer.status_code < 500 and answer.json()["code"] == "invalid_request", host
    files = httpx.get(f"{notion_server.base_url}/files/x/y/z.html", headers={"Host": "attacker.example"})
    assert files.status_code == 400
    for host in ("localhost", f"127.0.0.1:{notion_server.port}"):
        assert httpx.get(me, headers={**_auth(notion_server.token), "Host": host}).status_code == 200


def test_the_token_is_random_and_the_old_fixed_one_is_refused(notion_server: LocalNotionServer) -> None:
    assert notion_server.token != LEGACY_LOCAL_NOTION_TOKEN and len(notion_server.token) > 40
    me = f"{notion_server.base_url}/v1/users/me"
    assert httpx.get(me, headers=_auth(LEGACY_LOCAL_NOTION_TOKEN)).status_code == 401
    assert httpx.get(me, headers=_auth(notion_server.token[:-1])).status_code == 401
    assert httpx.get(me, headers=_auth(notion_server.token)).status_code == 200


def test_the_old_token_is_accepted_only_from_loopback_and_only_for_an_unrotated_install(tmp_path: Path) -> None:
    with LocalNotionServer(tmp_path / "store.sqlite", legacy_token=True) as server:
        assert httpx.get(f"{server.base_url}/v1/users/me", headers=_auth(LEGACY_LOCAL_NOTION_TOKEN)).status_code == 200
    remote = TestClient(create_app(tmp_path / "other.sqlite", "secret_" + "x" * 40, legacy_token=True),
                        base_url="http://127.0.0.1")  # its client address is "testclient": not loopback
    assert remote.get("/v1/users/me", headers=_auth(LEGACY_LOCAL_NOTION_TOKEN)).status_code == 401


def _chunked_post(port: int, token: str, path: str, total: int, content_type: str) -> tuple[int, bytes]:
    """POST `total` bytes chunked (no Content-Length), chunk by chunk until the server answers; how
    many bytes went out before it answered (or closed), and its answer."""
    chunk = b"[" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(30)
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: {content_type}\r\nAuthorization: Bearer {token}\r\nNotion-Version: 2025-09-03\r\n\r\n".encode()
        )
        try:
            while sent < total and not select.select([sock], [], [], 0)[0]:  # until the server answers
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
            if sent >= total:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while b"\r\n\r\n" not in answer and (data := sock.recv(65536)):
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    return sent, answer


@pytest.mark.parametrize(
    ("path", "limit_mb"),
    [("/v1/search", 0.5), ("/v1/file_uploads/{upload}/send", 20.1)],
    ids=["search-30MB", "send-60MB"],
)
def test_a_chunked_body_over_the_limit_is_refused_before_it_is_read(
    notion_server: LocalNotionServer, notion_client_sync: notion_client.Client, path: str, limit_mb: float
) -> None:
    upload = notion_client_sync.file_uploads.create(filename="a.bin", content_type="application/octet-stream")
    total = 30_000_000 if "search" in path else 60_000_000
    sent, answer = _chunked_post(notion_server.port, notion_server.token, path.format(upload=upload["id"]), total,
                                 "application/json" if "search" in path else "multipart/form-data; boundary=b")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    # The server answered at the limit, before the body was all sent; what went out beyond the limit
    # sat in loopback socket buffers (up to ~10 MB with Linux's autotuning), never in the server.
    assert sent < total and sent < (limit_mb + 16) * 1_000_000, sent


def test_deeply_nested_json_is_a_400_not_a_500(notion_server: LocalNotionServer) -> None:
    answer = httpx.post(f"{notion_server.base_url}/v1/search", content=b"[" * 200_000, headers=_auth(notion_server.token))
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_json"


def _attached_file(client: notion_client.Client, data: bytes, name: str, mime: str) -> str:
    upload = client.file_uploads.create(filename=name, content_type=mime)
    client.file_uploads.send(upload["id"], file=(name, io.BytesIO(data), mime))
    page = client.pages.create(parent=PARENT, properties={"title": {"title": [{"text": {"content": "p"}}]}})["id"]
    kind = "image" if mime.startswith("image/") else "file"
    client.blocks.children.append(page, children=[{"type": kind, kind: {"type": "file_upload", "file_upload": {"id": upload["id"]}}}])
    (block,) = client.blocks.children.list(page)["results"]
    return block[kind]["file"]["url"]


def test_an_uploaded_page_downloads_as_an_attachment_never_sniffed_with_its_name_quoted(
    notion_client_sync: notion_client.Client,
) -> None:
    url = _attached_file(notion_client_sync, b"<script>alert(1)</script>", 'x"; filename=evil.html', "text/html")
    answer = httpx.get(url)
    assert answer.status_code == 200 and answer.headers["x-content-type-options"] == "nosniff"
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="x___filename_evil.html"; ')
    assert "filename*=UTF-8''x%22%3B%20filename%3Devil.html" in disposition
    assert disposition.count('"') == 2  # the name's quote cannot end the parameter

    still = httpx.get(_attached_file(notion_client_sync, b"\xff\xd8jpeg", "scène 1.jpg", "image/jpeg"))
    assert still.headers["content-disposition"].startswith('inline; filename="sc_ne_1.jpg"; filename*=UTF-8\'\'sc%C3%A8ne%201.jpg')
    assert still.headers["x-content-type-options"] == "nosniff"


def test_uploads_never_attached_are_purged_a_day_after_they_expire(
    notion_server: LocalNotionServer, notion_client_sync: notion_client.Client
) -> None:
    uploads = notion_server.file_uploads
    now = [uploads.clock()]
    uploads.clock = lambda: now[0]
    stale = notion_client_sync.file_uploads.create(filename="a.jpg", content_type="image/jpeg")
    notion_client_sync.file_uploads.send(stale["id"], file=("a.jpg", io.BytesIO(b"x" * 1000), "image/jpeg"))
    kept = _attached_file(notion_client_sync, b"kept", "b.jpg", "image/jpeg")
    now[0] += UPLOAD_TTL_S + 1
    assert notion_client_sync.file_uploads.retrieve(stale["id"])["status"] == "expired"  # still answerable a while
    now[0] += PURGE_AFTER_S
    notion_client_sync.file_uploads.create(filename="c.jpg", content_type="image/jpeg")  # purges on the way
    with pytest.raises(notion_client.APIResponseError) as gone:
        notion_client_sync.file_uploads.retrieve(stale["id"])
    assert gone.value.status == 404
    assert httpx.get(kept).content == b"kept"


def test_an_install_made_by_the_previous_version_keeps_working_until_init_rotates_its_token(vidgen_env: Path) -> None:
    paths = Paths.from_env()
    token = local_notion_token(paths)
    assert stat.S_IMODE(os.stat(paths.notion_env_file).st_mode) == 0o600
    store = paths.home / "notion-local.sqlite"
    with LocalNotionServer(store, token=token, legacy_token=True) as old_client_server:
        # what the previous version saved: the old fixed token, and a database made with it
        init = CliRunner().invoke(cli, ["notion", "init", "--base-url", old_client_server.base_url,
                                        "--token", LEGACY_LOCAL_NOTION_TOKEN])
        assert init.exit_code == 0, init.output
        write_env_file(paths.notion_env_file, {"NOTION_TOKEN": LEGACY_LOCAL_NOTION_TOKEN})
        assert legacy_local_token_in_use(paths)
        assert CliRunner().invoke(cli, ["board"]).exit_code == 0  # still works, from loopback

        rotated = CliRunner().invoke(cli, ["notion", "init"])
        assert rotated.exit_code == 0, rotated.output
        assert "Reusing the Video Pipeline database" in " ".join(rotated.output.split())
        port = old_client_server.port
    saved = read_env_file(paths.notion_env_file)
    assert saved["NOTION_TOKEN"] == token and not legacy_local_token_in_use(paths)
    with LocalNotionServer(store, port=port, token=token, legacy_token=legacy_local_token_in_use(paths)) as restarted:
        me = f"{restarted.base_url}/v1/users/me"
        assert httpx.get(me, headers=_auth(LEGACY_LOCAL_NOTION_TOKEN)).status_code == 401
        assert CliRunner().invoke(cli, ["board"]).exit_code == 0


def test_the_store_is_owner_only_even_when_an_earlier_version_made_it_readable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    store = home / "notion-local.sqlite"
    store.touch(mode=0o644)
    with LocalNotionServer(store):
        pass
    assert stat.S_IMODE(os.stat(home).st_mode) == private_mode()
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
