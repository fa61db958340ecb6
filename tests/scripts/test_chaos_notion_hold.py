"""The chaos suite's card-write hold (scripts/chaos.py, kill9-card-write): a proxy on the Notion
server's port that forwards every request but holds page writes, so a kill lands mid-write."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from vidgen.loopback import LoopbackServer

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "chaos.py"


@pytest.fixture(scope="module")
def chaos():
    spec = importlib.util.spec_from_file_location("chaos_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class Upstream:
    """Answers every request with what it got; remembers the requests."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = (await receive()).get("body", b"")
        self.seen.append((scope["method"], scope["path"], body))
        answer = json.dumps({"method": scope["method"], "path": scope["path"], "query": scope["query_string"].decode()})
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer.encode()})


def test_reads_are_forwarded_and_page_writes_held_until_released(chaos):
    upstream = Upstream()
    up = LoopbackServer(upstream, name="upstream", lifespan="off").start()
    proxy = chaos.NotionHoldingWrites(0, f"http://127.0.0.1:{up.port}").server.start()
    base = f"http://127.0.0.1:{proxy.port}"
    try:
        query = httpx.post(f"{base}/v1/databases/db1/query?x=1", json={"page_size": 1}, timeout=10)
        assert query.status_code == 200
        assert query.json() == {"method": "POST", "path": "/v1/databases/db1/query", "query": "x=1"}

        answers: list[httpx.Response] = []
        writer = threading.Thread(target=lambda: answers.append(
            httpx.patch(f"{base}/v1/pages/page-1", json={"properties": {}}, timeout=30)))
        writer.start()
        deadline = time.monotonic() + 10
        while proxy.app.held != {"page-1"}:
            assert time.monotonic() < deadline, "the page write was not held"
            time.sleep(0.05)
        time.sleep(0.5)
        assert not answers and [m for m, _p, _b in upstream.seen] == ["POST"]  # held, not delivered

        proxy.app.holding.clear()
        writer.join(10)
        assert answers[0].status_code == 502  # its caller was killed meanwhile: the write never landed
        assert [m for m, _p, _b in upstream.seen] == ["POST"]
        after = httpx.patch(f"{base}/v1/pages/page-1", json={"properties": {}}, timeout=10)
        assert after.status_code == 200 and upstream.seen[-1][:2] == ("PATCH", "/v1/pages/page-1")
    finally:
        proxy.stop()
        up.stop()
