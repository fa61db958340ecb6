"""The receiver's answer to every kind of bad input, and that bad input never reaches dispatch."""

from __future__ import annotations

import json
import os
import random
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from webhook_helpers import DATA_SOURCE, PAGE_1, TOKEN, Receiver, event, make_receiver, page, signed

from vidgen.webhooks import WEBHOOK_PATH


def test_a_verification_token_is_a_candidate_held_owner_only_and_announced_once(tmp_path: Path) -> None:
    for r in make_receiver(tmp_path):
        answer = r.verify()
        assert answer.status_code == 200 and answer.json()["outcome"] == "pending"
        assert not r.config.token_file.exists()  # not the key
        candidates = r.config.candidates_file
        assert TOKEN in candidates.read_text() and stat.S_IMODE(os.stat(candidates).st_mode) == 0o600
        assert r.announced == [TOKEN]
        assert r.verify().json()["outcome"] == "pending" and r.announced == [TOKEN]  # shown once
        assert r.send(event()).status_code == 401  # a candidate signs nothing
        r.accept()
        assert stat.S_IMODE(os.stat(r.config.token_file).st_mode) == 0o600
        assert r.verify().json()["outcome"] == "already verified"
        assert r.send(event()).json()["outcome"] == "dispatched"


def test_a_token_from_configuration_is_the_key_without_any_verification(tmp_path: Path) -> None:
    for r in make_receiver(tmp_path, signing_token=TOKEN):
        assert r.send(event()).json()["outcome"] == "dispatched"
        assert r.send(event(), token="secret_other").status_code == 401


def test_events_before_verification_are_refused(tmp_path: Path) -> None:
    for r in make_receiver(tmp_path):
        assert r.send(event()).status_code == 401
        assert r.dispatch.calls == []


def test_a_valid_event_is_dispatched(receiver: Receiver) -> None:
    answer = receiver.send(event(page("page-9"), "page.created"))
    assert answer.status_code == 200 and answer.json()["outcome"] == "dispatched"
    assert receiver.dispatch.calls == [(page("page-9"), "page.created")]


def test_forged_missing_and_misapplied_signatures_get_401(receiver: Receiver) -> None:
    body = json.dumps(event()).encode()
    forged = receiver.client.post(WEBHOOK_PATH, content=body, headers={"X-Notion-Signature": "sha256=" + "ab" * 32})
    missing = receiver.client.post(WEBHOOK_PATH, content=body)
    _, other_headers = signed(event())  # a real signature, but of a different body
    other_body = receiver.client.post(WEBHOOK_PATH, content=body, headers=other_headers)
    wrong_key = receiver.send(event(), token="secret_someone_else")
    for answer in (forged, missing, other_body, wrong_key):
        assert answer.status_code == 401
    assert receiver.dispatch.calls == []


def test_unsigned_garbage_gets_401_not_a_parse_error(receiver: Receiver) -> None:
    assert receiver.client.post(WEBHOOK_PATH, content=b"{not json").status_code == 401


def test_replays_and_redeliveries_dispatch_once(receiver: Receiver) -> None:
    first = event(event_id="evt-1")
    assert receiver.send(first).json()["outcome"] == "dispatched"
    assert receiver.send(first).json()["outcome"] == "duplicate"  # a replay of the very same bytes
    for attempt in range(2, 9):  # Notion redelivering it with rising attempt_number
        answer = receiver.send(event(event_id="evt-1", attempt=attempt))
        assert answer.status_code == 200 and answer.json()["outcome"] == "duplicate"
    assert receiver.dispatch.calls == [(PAGE_1, "page.properties_updated")]


def test_deduplication_survives_a_restart(tmp_path: Path) -> None:
    for r in make_receiver(tmp_path):
        r.verify()
        r.accept()
        assert r.send(event(event_id="evt-restart")).json()["outcome"] == "dispatched"
    for r in make_receiver(tmp_path):
        assert r.send(event(event_id="evt-restart", attempt=2)).json()["outcome"] == "duplicate"
        assert r.dispatch.calls == []


def test_body_over_one_megabyte_gets_413(receiver: Receiver) -> None:
    big = event()
    big["padding"] = "x" * (1024 * 1024)
    assert receiver.send(big).status_code == 413
    assert receiver.dispatch.calls == []


def test_malformed_json_and_missing_fields_get_400(receiver: Receiver) -> None:
    no_type = event()
    del no_type["type"]
    no_entity = event()
    del no_entity["entity"]
    bad_entity = event()
    bad_entity["entity"] = PAGE_1
    for body in (b"{not json", b"[1, 2]", json.dumps(no_type).encode(), json.dumps(no_entity).encode(),
                 json.dumps(bad_entity).encode()):  # fmt: skip
        assert receiver.send(body).status_code == 400, body[:40]
    assert receiver.dispatch.calls == []


def test_other_data_source_unknown_type_and_stale_events_are_ignored(receiver: Receiver) -> None:
    stale = datetime.now(timezone.utc) - timedelta(hours=2)
    for body in (
        event(data_source_id=page("someone else's data source")),
        event(type="comment.created"),
        event(type="page.content_updated"),
        event(timestamp=stale),
        event(timestamp=datetime.now(timezone.utc) + timedelta(hours=1)),
    ):
        answer = receiver.send(body)
        assert answer.status_code == 200 and answer.json()["outcome"] == "ignored"
    assert receiver.dispatch.calls == []


def test_schema_updates_are_noted_not_dispatched(receiver: Receiver) -> None:
    body = event(type="data_source.schema_updated")
    body["entity"] = {"id": DATA_SOURCE, "type": "data_source"}
    assert receiver.send(body).json()["outcome"] == "noted"
    assert receiver.dispatch.calls == []


def test_a_failed_dispatch_is_retried_by_the_next_delivery(receiver: Receiver) -> None:
    receiver.dispatch.fail = True
    assert receiver.send(event(event_id="evt-x")).status_code == 503
    receiver.dispatch.fail = False
    assert receiver.send(event(event_id="evt-x", attempt=2)).json()["outcome"] == "dispatched"
    assert len(receiver.dispatch.calls) == 1


def test_burst_of_500_events_over_50_pages_dispatches_each_event_once(receiver: Receiver) -> None:
    rng = random.Random(7)
    distinct = [event(page(f"page-{i % 50}"), rng.choice(["page.created", "page.properties_updated"])) for i in range(350)]
    deliveries = distinct + [dict(rng.choice(distinct), attempt_number=rng.randint(2, 8)) for _ in range(150)]
    rng.shuffle(deliveries)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(receiver.send, deliveries))
    assert all(a.status_code == 200 for a in answers)
    outcomes = [a.json()["outcome"] for a in answers]
    assert outcomes.count("dispatched") == len(distinct)
    assert outcomes.count("duplicate") == 150
    by_id = {e["id"]: (e["entity"]["id"], e["type"]) for e in distinct}
    assert sorted(receiver.dispatch.calls) == sorted(by_id.values())  # none lost, none twice
    assert {page for page, _ in receiver.dispatch.calls} == {page(f"page-{i}") for i in range(50)}


def test_deeply_nested_json_gets_400_not_500(receiver: Receiver) -> None:
    nested = b"[" * 200_000  # the body: json.loads raised RecursionError, answered 500
    assert receiver.client.post(WEBHOOK_PATH, content=nested).status_code == 400
    signed_nested = receiver.send(b'{"type": "page.created", "entity": ' + b"[" * 200_000 + b"}")
    assert signed_nested.status_code == 400
    assert receiver.dispatch.calls == []


@pytest.mark.parametrize(
    "entity_id",
    ["../data_sources/0d5a1c3e-7b9f-4e2d-8a6c-1f3b5d7e9a0c", "page-1", "", "0d5a1c3e/../x", f"{PAGE_1}/..", f"{PAGE_1}\n"],
)
def test_an_entity_id_that_is_not_a_uuid_gets_400_and_is_never_dispatched(receiver: Receiver, entity_id: str) -> None:
    body = event(entity_id)
    assert receiver.send(body).status_code == 400
    assert receiver.dispatch.calls == []


def test_a_data_source_id_that_is_not_a_uuid_gets_400(receiver: Receiver) -> None:
    assert receiver.send(event(data_source_id="../../pages")).status_code == 400
    assert receiver.dispatch.calls == []

