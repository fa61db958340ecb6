"""A burst of signed Notion events, duplicates included, through the receiver and the worker's
dispatcher into real handle-page flow runs on a real Prefect server: exactly one video run per
Queued page, whichever event arrives first, and no event lost."""

from __future__ import annotations

import json
import random
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import flow_helpers as fh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "webhooks"))
from webhook_helpers import event, signed  # noqa: E402

pytestmark = pytest.mark.integration
PAGES = 50
EVENTS = 500


@pytest.mark.timeout(600)
def test_500_events_over_50_pages_make_one_run_per_queued_page(stack, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    from flows.handle_page import PageDispatcher
    from flows.poll_notion import LIVE_STATES, runs_for_page
    from flows.produce_video import produce_video
    from vidgen.statuses import NotionStatus as S
    from vidgen.webhooks import WEBHOOK_PATH, ReceiverConfig, create_webhook_app

    produce_video.to_deployment(name="produce-video").apply()  # registered; no worker: runs wait Scheduled
    gateway = fh.gateway()
    queued = [gateway.create_entry(title=f"Burst {i}", channel="Wild Frontiers", topic="Rivers", status=S.QUEUED)
              for i in range(PAGES - 5)]
    drafts = [gateway.create_entry(title=f"Draft {i}", channel="Wild Frontiers", topic="Rivers") for i in range(5)]
    pages = [e.page_id for e in queued + drafts]

    # 500 deliveries: each page's created event and a property update, each sent several times,
    # shuffled (Notion promises neither order nor single delivery)
    rng = random.Random(7)
    distinct = [event(p, t, data_source_id=stack.env["NOTION_DATA_SOURCE_ID"])
                for p in pages for t in ("page.created", "page.properties_updated")]
    deliveries = distinct + [rng.choice(distinct) for _ in range(EVENTS - len(distinct))]
    rng.shuffle(deliveries)

    token = "secret_" + uuid.uuid4().hex
    config = ReceiverConfig(token_file=tmp_path / "token", events_db=tmp_path / "events.sqlite",
                            data_source_id=stack.env["NOTION_DATA_SOURCE_ID"], signing_token=token)
    dispatcher = PageDispatcher(workers=8)
    client = TestClient(create_webhook_app(dispatcher, config, announce=lambda _line: None))
    try:
        assert client.post(WEBHOOK_PATH, json={"verification_token": token}).status_code == 200
        answers = Counter()
        for body in deliveries:
            raw, headers = signed(body, token)
            answers[client.post(WEBHOOK_PATH, content=raw, headers=headers).json()["outcome"]] += 1
    finally:
        dispatcher.close()  # waits for every handle-page run
    assert sum(answers.values()) == EVENTS and answers["duplicate"] == EVENTS - len(distinct), answers

    try:
        runs = {p: runs_for_page(p, LIVE_STATES) for p in pages}
        assert all(len(runs[e.page_id]) == 1 for e in queued), {p: len(r) for p, r in runs.items() if len(r) != 1}
        assert not any(runs[e.page_id] for e in drafts)  # not Queued: nothing to start
        assert {gateway.get_entry(e.page_id).notion_status for e in queued} == {S.PROCESSING}
    finally:
        with get_client(sync_client=True) as prefect:
            for page_runs in runs.values():
                for run in page_runs:
                    prefect.set_flow_run_state(run.id, Cancelled(), force=True)
