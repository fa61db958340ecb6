"""The outbox of card writes: Notion down, rate limiting or refusing, against the local Notion server.

Faults are injected between the gateway and the real server by an httpx MockTransport (`Weather`)
that passes requests through or fails them as told; one test stops the server itself.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from vidgen.channels import load_channels
from vidgen.models import VideoEntry
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.outbox import CLAIM_LEASE_S, CardOutbox, card_changes, expected_card
from vidgen.notion.ratelimit import RetryPolicy, TokenBucket
from vidgen.notion.server import LocalNotionServer
from vidgen.statuses import IllegalTransition, NotionStatus as S

REPO = Path(__file__).resolve().parents[2]
FAST = RetryPolicy(attempts=2, initial_wait_s=0.001, max_wait_s=0.005, jitter_s=0.001, max_retry_after_s=1)
RUN_URL = "http://127.0.0.1:4200/runs/flow-run/abc"


def _notion_error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"object": "error", "status": status, "code": code, "message": code}, headers=headers)


class Weather:
    """Between the gateway and the local Notion server: requests pass through, or `fail` answers them."""

    def __init__(self) -> None:
        self.fail: Callable[[httpx.Request], httpx.Response] | None = None
        self.patched: list[dict] = []  # the property payloads Notion accepted, in order
        self._real = httpx.Client()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.fail is not None:
            return self.fail(request)
        body = request.read()
        answer = self._real.send(httpx.Request(request.method, request.url, headers=request.headers, content=body))
        if request.method == "PATCH" and answer.status_code == 200 and body:
            self.patched.append(json.loads(body).get("properties", {}))
        return httpx.Response(answer.status_code, headers={"content-type": "application/json"}, content=answer.content)

    def down(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("All connection attempts failed", request=request)

        self.fail = refuse

    def answering(self, status: int, code: str, headers: dict[str, str] | None = None) -> None:
        self.fail = lambda request: _notion_error(status, code, headers)

    def up(self) -> None:
        self.fail = None

    def statuses_written(self) -> list[str]:
        return [p["Status"]["select"]["name"] for p in self.patched if "Status" in p]


@pytest.fixture
def weather() -> Weather:
    return Weather()


@pytest.fixture
def gateway(notion_server: LocalNotionServer, weather: Weather) -> Iterator[NotionGateway]:
    with NotionGateway(notion_server.token, base_url=notion_server.base_url, limiter=TokenBucket.unlimited(), retry=FAST) as setup:
        _, data_source_id = setup.create_database(parent_page_id=None, channels=load_channels(REPO / "channels"))
    with NotionGateway(
        notion_server.token,
        base_url=notion_server.base_url,
        data_source_id=data_source_id,
        client=httpx.Client(transport=httpx.MockTransport(weather)),
        limiter=TokenBucket.unlimited(),
        retry=FAST,
    ) as gw:
        yield gw


@pytest.fixture
def outbox(tmp_path: Path) -> CardOutbox:
    return CardOutbox(tmp_path / "home" / "notion-outbox.sqlite")


def _queued(gateway: NotionGateway, title: str = "Wolves") -> VideoEntry:
    return gateway.create_entry(title=title, channel="Wild Frontiers", topic="Wolves and rivers", status=S.QUEUED)


def _write(outbox: CardOutbox, gateway: NotionGateway, card: VideoEntry, status: S | None, **fields: object) -> VideoEntry:
    """A run's card write: the next write starts from the card this one returns."""
    outcome = outbox.write(gateway, card, card_changes(status, **fields))
    assert outcome.refused is None
    return outcome.card


def test_writes_during_an_outage_wait_in_order_and_reach_notion_when_it_answers(
    gateway: NotionGateway, outbox: CardOutbox, weather: Weather
) -> None:
    card = _queued(gateway)
    weather.down()
    card = _write(outbox, gateway, card, S.PROCESSING)
    card = _write(outbox, gateway, card, S.ASSETS_GENERATING, workspace="/data/ws/wolves", run_url=RUN_URL, error="")
    card = _write(outbox, gateway, card, S.ASSETS_READY)
    assert (card.status, card.workspace, card.run_url) == ("Assets Ready", "/data/ws/wolves", RUN_URL)
    waiting = outbox.pending(card.page_id)
    assert [w.changes.get("status") for w in waiting] == ["Processing", "Assets Generating", "Assets Ready"]
    assert [w.seqs[0] for w in waiting] == sorted(w.seqs[0] for w in waiting)

    weather.up()
    outcome = outbox.write(gateway, card, card_changes(S.COMPOSITES_CREATING))
    assert not outcome.queued and outcome.delivery.delivered == [w.seqs[0] for w in waiting] + [outcome.delivery.delivered[-1]]
    # The board lets a card go from Queued to any step of a live run, so one request carries all four.
    assert weather.statuses_written() == ["Composites Creating"]
    held = gateway.get_entry(card.page_id)
    assert (held.status, held.workspace, held.run_url) == ("Composites Creating", "/data/ws/wolves", RUN_URL)
    assert outcome.card.status == "Composites Creating" and outbox.count() == 0


def test_a_gate_redo_is_not_coalesced_past_an_illegal_move(gateway: NotionGateway, outbox: CardOutbox, weather: Weather) -> None:
    card = _write(outbox, gateway, _queued(gateway), S.PROCESSING)
    weather.answering(503, "service_unavailable")
    for status in (S.ASSETS_GENERATING, S.ASSETS_READY, S.ASSETS_GENERATING, S.ASSETS_READY, S.ERROR_RETRIABLE, S.QUEUED):
        card = _write(outbox, gateway, card, status, error="quota" if status is S.ERROR_RETRIABLE else None)
    weather.up()
    delivery = outbox.deliver(gateway)
    assert delivery.outage is None and delivery.pending == 0 and len(delivery.delivered) == 6
    # Processing -> ... -> Error: Retriable is one legal move; Error: Retriable -> Queued another.
    assert weather.statuses_written() == ["Processing", "Error: Retriable", "Queued"]
    held = gateway.get_entry(card.page_id)
    assert (held.status, held.error) == ("Queued", "quota")


def test_the_poller_delivers_every_page_once_notion_is_back(gateway: NotionGateway, outbox: CardOutbox, weather: Weather) -> None:
    cards = [_queued(gateway, f"video {i}") for i in range(3)]
    weather.down()
    for i, card in enumerate(cards):
        card = _write(outbox, gateway, card, S.PROCESSING)
        cards[i] = _write(outbox, gateway, card, S.ASSETS_GENERATING, run_url=f"{RUN_URL}{i}")
    stalled = outbox.deliver(gateway)
    assert stalled.delivered == [] and stalled.pending == 6 and "not reachable" in (stalled.outage or "")

    weather.up()
    delivery = outbox.deliver(gateway)
    assert delivery.outage is None and delivery.pending == 0 and len(delivery.delivered) == 6
    for i, card in enumerate(cards):
        held = gateway.get_entry(card.page_id)
        assert (held.status, held.run_url) == ("Assets Generating", f"{RUN_URL}{i}")


def test_a_429_storm_keeps_the_writes_until_notion_lets_them_through(
    gateway: NotionGateway, outbox: CardOutbox, weather: Weather
) -> None:
    card = _write(outbox, gateway, _queued(gateway), S.PROCESSING)
    weather.answering(429, "rate_limited", {"Retry-After": "120"})  # longer than the gateway waits: it gives up at once
    for status in (S.ASSETS_GENERATING, S.ASSETS_READY, S.COMPOSITES_CREATING):
        outcome = outbox.write(gateway, card, card_changes(status))
        assert outcome.queued and "rate limiting" in (outcome.delivery.outage or "")
        card = outcome.card
    assert outbox.deliver(gateway).pending == 3
    weather.up()
    assert outbox.deliver(gateway).pending == 0
    assert gateway.get_entry(card.page_id).status == "Composites Creating"


def test_a_refused_write_is_dropped_with_a_log_line_not_retried(
    gateway: NotionGateway, outbox: CardOutbox, weather: Weather, caplog: pytest.LogCaptureFixture
) -> None:
    card = _write(outbox, gateway, _queued(gateway), S.PROCESSING)
    weather.answering(400, "validation_error")
    refused = outbox.write(gateway, card, card_changes(S.ASSETS_GENERATING, error="bad"))
    assert refused.refused is not None and not refused.refused.gone and not refused.queued
    assert outbox.count() == 0

    weather.down()
    card = _write(outbox, gateway, card, S.ASSETS_GENERATING, workspace="/ws")
    weather.answering(400, "validation_error")
    with caplog.at_level(logging.WARNING, logger="vidgen.notion.outbox"):
        delivery = outbox.deliver(gateway)
    assert [d.changes["status"] for d in delivery.dropped] == ["Assets Generating"] and delivery.pending == 0
    assert "Dropped 1 card write(s)" in caplog.text and "Notion refused it" in caplog.text
    weather.up()
    assert outbox.deliver(gateway).delivered == []  # gone for good: nothing is sent again
    assert weather.patched == [{"Status": {"select": {"name": "Processing"}}, "Updated": weather.patched[0]["Updated"]}]


def test_a_page_deleted_while_its_writes_wait_drops_them(gateway: NotionGateway, outbox: CardOutbox, weather: Weather) -> None:
    card = _write(outbox, gateway, _queued(gateway), S.PROCESSING)
    weather.down()
    card = _write(outbox, gateway, card, S.ASSETS_GENERATING)
    card = _write(outbox, gateway, card, S.ASSETS_READY)
    weather.answering(404, "object_not_found")
    delivery = outbox.deliver(gateway)
    assert len(delivery.dropped) == 1 and delivery.dropped[0].gone and len(delivery.dropped[0].seqs) == 2
    assert outbox.count() == 0


def test_an_illegal_move_fails_at_once_and_is_not_kept(gateway: NotionGateway, outbox: CardOutbox, weather: Weather) -> None:
    card = _queued(gateway)
    weather.down()
    with pytest.raises(IllegalTransition):
        outbox.write(gateway, card, card_changes(S.UPLOAD_COMPLETE))
    assert outbox.count() == 0
    unchanged = outbox.write(gateway, card, card_changes(S.QUEUED, error=""))
    assert unchanged.card == card and not unchanged.queued and outbox.count() == 0  # nothing to write: nothing kept


def test_the_expected_card_reads_like_notion_would_return_it() -> None:
    card = VideoEntry(page_id="p", status="Assets Generating", workspace="/ws", error="old")
    after = expected_card(card, card_changes(S.ASSETS_READY, workspace="", error="x" * 300_000, cost_usd=1, review=None))
    assert (after.status, after.workspace, after.cost_usd, after.review) == ("Assets Ready", None, 1.0, None)
    assert after.error.endswith(" […]") and len(after.error) < 300_000


def test_the_outbox_survives_the_process_and_another_one_delivers_it(
    notion_server: LocalNotionServer, gateway: NotionGateway, outbox: CardOutbox, weather: Weather
) -> None:
    card = _write(outbox, gateway, _queued(gateway), S.PROCESSING)
    weather.down()
    card = _write(outbox, gateway, card, S.ASSETS_GENERATING, run_url=RUN_URL)
    card = _write(outbox, gateway, card, S.ASSETS_READY)
    deliver = (
        "import sys\n"
        "from pathlib import Path\n"
        "from vidgen.notion.gateway import NotionGateway\n"
        "from vidgen.notion.outbox import CardOutbox\n"
        "from vidgen.notion.ratelimit import TokenBucket\n"
        "box = CardOutbox(Path(sys.argv[1]))\n"
        "print([w.changes.get('status') for w in box.pending()])\n"
        "gw = NotionGateway(sys.argv[3], base_url=sys.argv[2], limiter=TokenBucket.unlimited())\n"
        "print(box.deliver(gw).pending)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", deliver, str(outbox.path), notion_server.base_url, notion_server.token],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["['Assets Generating', 'Assets Ready']", "0"]
    weather.up()
    held = gateway.get_entry(card.page_id)
    assert (held.status, held.run_url) == ("Assets Ready", RUN_URL) and outbox.count() == 0


def test_notion_stopped_and_started_again(tmp_path: Path, outbox: CardOutbox) -> None:
    """The real outage: the server's port refuses connections, then the same server answers again."""
    store = tmp_path / "notion.sqlite"
    first = LocalNotionServer(store).start()
    port = first.port
    gw = NotionGateway(first.token, base_url=first.base_url, limiter=TokenBucket.unlimited(), retry=FAST)
    gw.create_database(parent_page_id=None, channels=load_channels(REPO / "channels"))
    card = _write(outbox, gw, _queued(gw), S.PROCESSING)
    first.stop()
    card = _write(outbox, gw, card, S.ASSETS_GENERATING)
    card = _write(outbox, gw, card, S.ASSETS_READY, error="waiting for a reviewer")
    assert outbox.count(card.page_id) == 2
    with LocalNotionServer(store, port=port) as again:
        assert again.base_url == gw.url
        assert outbox.deliver(gw).pending == 0
        held = gw.get_entry(card.page_id)
        assert (held.status, held.error) == ("Assets Ready", "waiting for a reviewer")
    gw.close()


def test_a_page_another_process_delivers_is_left_to_it_until_its_lease_ends(
    gateway: NotionGateway, tmp_path: Path, weather: Weather
) -> None:
    now = [1000.0]
    outbox = CardOutbox(tmp_path / "outbox.sqlite", clock=lambda: now[0])
    card = _queued(gateway)
    assert outbox._claim(card.page_id, "another process")
    kept = outbox.write(gateway, card, card_changes(S.PROCESSING))
    assert kept.queued and weather.patched == []  # never overtakes the other deliverer
    now[0] += CLAIM_LEASE_S + 1  # that process died mid-delivery
    assert outbox.deliver(gateway).pending == 0
    assert gateway.get_entry(card.page_id).status == "Processing"


def test_a_page_whose_deliverer_was_killed_is_taken_over_at_once(
    gateway: NotionGateway, tmp_path: Path, weather: Weather
) -> None:
    """A worker killed mid-delivery leaves its claim with most of its lease to run: a process of the
    same host that is gone does not hold the page, so the next write goes out at once."""
    import socket

    from vidgen.notion.outbox import owner_is_gone

    outbox = CardOutbox(tmp_path / "outbox.sqlite")
    card = _queued(gateway)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = f"{socket.gethostname()}/{dead.pid}/a-delivery"
    assert outbox._claim(card.page_id, killed) and owner_is_gone(killed)

    written = outbox.write(gateway, card, card_changes(S.PROCESSING))

    assert not written.queued and gateway.get_entry(card.page_id).status == "Processing"
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:  # a live process of this host, or any process of another host, keeps its lease
        assert not owner_is_gone(f"{socket.gethostname()}/{alive.pid}/x")
        assert not owner_is_gone(f"another-host/{dead.pid}/x") and not owner_is_gone("another process")
    finally:
        alive.kill()
        alive.wait()
