"""The automations `vidgen setup` creates: what they watch, what they say, and that setup never doubles them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState, SendNotification
from prefect.events.schemas.automations import Automation, AutomationCore, Posture
from prefect.server.events.jinja_filters import all_filters
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.server.schemas.core import FlowRun
from prefect.server.schemas.states import State
from prefect.server.schemas.states import StateType as ServerStateType
from prefect.server.utilities.user_templates import (
    register_user_template_filters,
    render_user_template_sync,
    validate_user_template,
)
from prefect.settings import PREFECT_UI_URL, temporary_settings

import blocks.automations as automations

BLOCK = UUID("00000000-0000-0000-0000-0000000000a1")


def test_zombie_detection_is_prefects_documented_trigger_for_the_served_flows():
    zombie = automations.zombie_automation()
    trigger = zombie.trigger
    assert trigger.after == {"prefect.flow-run.heartbeat"}
    assert {"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
            "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"} <= trigger.expect
    # a run suspended at a review gate sends no heartbeats and must not be crashed for it
    assert {"prefect.flow-run.Suspended", "prefect.flow-run.Paused"} <= trigger.expect
    # nor one a stopping worker handed back to wait for the next worker
    assert {"prefect.flow-run.AwaitingRetry", "prefect.flow-run.Scheduled"} <= trigger.expect
    assert trigger.posture == Posture.Proactive and trigger.for_each == {"prefect.resource.id"}
    assert trigger.within == timedelta(seconds=3 * automations.HEARTBEAT_FREQUENCY_S)
    # a killed poll left Running would hold the poll deployment's one slot: watched too
    assert trigger.match_related.model_dump() == {
        "prefect.resource.role": "flow", "prefect.resource.name": ["produce-video", "poll-notion", "handle-page"],
    }
    (action,) = zombie.actions
    assert isinstance(action, ChangeFlowRunState) and action.state == StateType.CRASHED


def test_a_crashed_video_run_is_scheduled_again_as_the_same_run():
    restart = automations.crash_restart_automation()
    trigger = restart.trigger
    assert trigger.expect == {"prefect.flow-run.Crashed"} and not trigger.after
    assert trigger.posture == Posture.Reactive and trigger.threshold == 1
    assert trigger.match.model_dump() == {"prefect.resource.id": "prefect.flow-run.*"}
    # only produce-video runs: a crashed poll is simply replaced by the next one
    assert trigger.match_related.model_dump() == {"prefect.resource.role": "flow", "prefect.resource.name": "produce-video"}
    (action,) = restart.actions
    assert isinstance(action, ChangeFlowRunState)
    assert (action.state, action.name, action.force) == (StateType.SCHEDULED, "AwaitingRetry", False)
    assert "Restarted after a crash" in action.message


@pytest.fixture
def server_without_alerts(monkeypatch):
    """`register_automations` talking to a FakeAutomationsApi, no alerts configured."""
    api = FakeAutomationsApi()
    monkeypatch.delenv(automations.ALERTS_URL_ENV, raising=False)
    monkeypatch.setattr(automations, "_saved_alerts_block", lambda url: None)

    class Client:
        def __enter__(self):
            return api

        def __exit__(self, *exc):
            return None

    import prefect.client.orchestration

    monkeypatch.setattr(prefect.client.orchestration, "get_client", lambda sync_client: Client())
    return api


def test_setup_registers_the_crash_restart_even_without_alerts(server_without_alerts):
    api = server_without_alerts
    done = automations.register_automations()
    assert f"automation {automations.CRASH_RESTART_AUTOMATION!r}: created" in done
    assert automations.register_automations().count(f"automation {automations.CRASH_RESTART_AUTOMATION!r}: unchanged") == 1
    assert {a.name for a in api.stored.values()} == {automations.ZOMBIE_AUTOMATION, automations.CRASH_RESTART_AUTOMATION}


def test_setup_removes_the_zombie_detector_under_its_earlier_name(server_without_alerts):
    api = server_without_alerts
    (old_name,) = automations.RETIRED_AUTOMATIONS
    api.create_automation(automations.zombie_automation().model_copy(update={"name": old_name}))
    assert f"automation {old_name!r}: removed (renamed)" in automations.register_automations()
    assert {a.name for a in api.stored.values()} == {automations.ZOMBIE_AUTOMATION, automations.CRASH_RESTART_AUTOMATION}


def test_a_gate_alert_fires_only_when_the_run_stays_suspended_past_the_reminder():
    alerts = {a.name: a for a in automations.alert_automations(BLOCK, gate_reminder_s=6 * 3600)}
    gate = alerts[automations.GATE_WAITING_AUTOMATION].trigger
    assert gate.after == {"prefect.flow-run.Suspended", "prefect.flow-run.Paused"}
    assert {"prefect.flow-run.Running", "prefect.flow-run.Completed"} <= gate.expect
    assert not gate.after & gate.expect
    assert gate.posture == Posture.Proactive and gate.within == timedelta(hours=6)
    body = alerts[automations.GATE_WAITING_AUTOMATION].actions[0].body
    assert "for 6 h" in body


def test_every_alert_notifies_through_the_block():
    alerts = automations.alert_automations(BLOCK, gate_reminder_s=3600)
    assert {a.name for a in alerts} == {
        automations.RUN_FAILED_AUTOMATION, automations.CARD_ERROR_AUTOMATION,
        automations.GATE_WAITING_AUTOMATION, automations.COST_AUTOMATION,
    }
    for alert in alerts:
        (action,) = alert.actions
        assert isinstance(action, SendNotification) and action.block_document_id == BLOCK
        validate_user_template(action.subject)
        validate_user_template(action.body)
    failed = next(a for a in alerts if a.name == automations.RUN_FAILED_AUTOMATION).trigger
    assert failed.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert failed.posture == Posture.Reactive


# --- what the alerts say ----------------------------------------------------------------------
@pytest.fixture
def rendered():
    register_user_template_filters(all_filters)
    run = FlowRun(
        id=UUID("11111111-2222-3333-4444-555555555555"), flow_id=uuid4(), name="history: The Fall of Rome",
        parameters={"page_id": "2b1c-77aa", "channel_id": "history"},
        state=State(type=ServerStateType.FAILED, name="Failed", message="kling: HTTP 500: upstream down"),
    )

    def render(template: str, event: ReceivedEvent | None = None) -> str:
        with temporary_settings({PREFECT_UI_URL: "http://127.0.0.1:4200"}):
            return render_user_template_sync(template, {"flow_run": run, "event": event})

    return render


def _event(name: str, resource: dict[str, str], payload: dict) -> ReceivedEvent:
    return ReceivedEvent(occurred=datetime.now(timezone.utc), event=name, resource=resource, payload=payload, id=uuid4())


RUN_LINK = "Run: http://127.0.0.1:4200/runs/flow-run/11111111-2222-3333-4444-555555555555"


def test_a_failed_run_alert_names_video_channel_reason_and_links(rendered):
    text = rendered(automations.RUN_FAILED_BODY)
    assert "Video: history: The Fall of Rome" in text and "Channel: history" in text
    assert "Reason: kling: HTTP 500: upstream down" in text
    assert RUN_LINK in text and "Card: https://www.notion.so/2b1c77aa" in text
    assert rendered(automations.RUN_FAILED_SUBJECT) == "Video run failed: history: The Fall of Rome"


def test_a_card_error_alert_names_the_step_and_status(rendered, monkeypatch):
    sent: list[dict] = []
    monkeypatch.setattr(automations, "emit_event", lambda name, **kw: sent.append({"event": name, **kw}))
    automations.emit_card_error(page_id="2b1c-77aa", title="The Fall of Rome", channel_id="history", step="clips",
                                status="Error: API Failure", reason="kling: HTTP 401: key rejected",
                                card_url="http://127.0.0.1:7700/2b1c77aa", flow_run_id="11111111-2222-3333-4444-555555555555")
    (call,) = sent
    assert call["event"] == automations.CARD_ERROR_EVENT == "vidgen.card.error"
    assert call["related"] == [{"prefect.resource.id": "prefect.flow-run.11111111-2222-3333-4444-555555555555",
                                "prefect.resource.role": "flow-run"}]
    text = rendered(automations.CARD_ERROR_BODY, _event(call["event"], call["resource"], call["payload"]))
    for line in ("Video: The Fall of Rome", "Channel: history", "Step: clips", "Status: Error: API Failure",
                 "Reason: kling: HTTP 401: key rejected", RUN_LINK, "Card: http://127.0.0.1:7700/2b1c77aa"):
        assert line in text


@pytest.mark.parametrize(
    "before, after, crossed",
    [(7.0, 8.0, True), (7.99, 8.5, True), (8.0, 9.0, False), (1.0, 7.9, False), (0.0, 12.0, True)],
)
def test_the_cost_alert_is_sent_once_at_the_step_that_crosses_80_percent(monkeypatch, before, after, crossed):
    sent: list[dict] = []
    monkeypatch.setattr(automations, "emit_event", lambda name, **kw: sent.append({"event": name, **kw}))
    result = automations.emit_cost_threshold(page_id="p1", title="Otters", channel_id="wild", step="clips",
                                             before_usd=before, after_usd=after, budget_usd=10.0, card_url="u")
    assert result is crossed and len(sent) == int(crossed)
    if crossed:
        assert sent[0]["event"] == "vidgen.cost.threshold"
        assert sent[0]["payload"]["spent_usd"] == f"{after:.2f}" and sent[0]["payload"]["budget_usd"] == "10.00"
        # the same video's crossing always has the same event id: a replayed step is one alert
        assert sent[0]["id"] == automations.uuid.uuid5(automations.uuid.NAMESPACE_URL, "vidgen:p1:cost-threshold:10.0")


def test_the_cost_alert_text(rendered):
    resource = automations._video_resource("p1", "Otters", "wild", "clips", "https://www.notion.so/p1")
    event = _event("vidgen.cost.threshold", resource, {"spent_usd": "8.40", "budget_usd": "10.00", "percent": "84"})
    text = rendered(automations.COST_BODY, event)
    assert "Reason: spent $8.40 of its $10.00 budget (84%)" in text and "Step: clips" in text


# --- the block and idempotent registration ----------------------------------------------------
def test_slack_urls_get_slacks_block_and_others_a_json_webhook():
    assert isinstance(automations.notification_block("https://hooks.slack.com/services/T/B/x"), SlackWebhook)
    webhook = automations.notification_block("http://127.0.0.1:9000/alerts")
    assert isinstance(webhook, CustomWebhookNotificationBlock)
    assert webhook.json_data == {"subject": "{{subject}}", "text": "{{body}}"}


class FakeAutomationsApi:
    """The four automation calls of Prefect's client, on a dict (what a server would store)."""

    def __init__(self):
        self.stored: dict[UUID, Automation] = {}
        self.calls: list[str] = []

    def read_automations_by_name(self, name):
        return [a for a in self.stored.values() if a.name == name]

    def create_automation(self, automation):
        self.calls.append("create")
        new = Automation(**automation.model_dump(), id=uuid4())
        self.stored[new.id] = new
        return new.id

    def update_automation(self, automation_id, automation):
        self.calls.append("update")
        self.stored[automation_id] = Automation(**automation.model_dump(), id=automation_id)

    def delete_automation(self, automation_id):
        self.calls.append("delete")
        del self.stored[automation_id]


def test_upsert_creates_once_then_leaves_alone_then_updates():
    api = FakeAutomationsApi()
    assert automations.upsert_automation(api, automations.zombie_automation()) == "created"
    assert automations.upsert_automation(api, automations.zombie_automation()) == "unchanged"
    assert automations.upsert_automation(api, automations.zombie_automation(after_s=120)) == "updated"
    assert api.calls == ["create", "update"] and len(api.stored) == 1
    (stored,) = api.stored.values()
    assert stored.trigger.within == timedelta(seconds=120)


def test_upsert_removes_duplicates_an_earlier_create_left():
    api = FakeAutomationsApi()
    for _ in range(3):
        api.create_automation(automations.zombie_automation())
    assert automations.upsert_automation(api, automations.zombie_automation()) == "updated"
    assert len(api.read_automations_by_name(automations.ZOMBIE_AUTOMATION)) == 1


def test_the_gate_reminder_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("VIDGEN_GATE_REMINDER_HOURS", raising=False)
    assert automations.gate_reminder_s() == 24 * 3600
    monkeypatch.setenv("VIDGEN_GATE_REMINDER_HOURS", "0.5")
    assert automations.gate_reminder_s() == 1800
    assert isinstance(automations.alert_automations(BLOCK, gate_reminder_s=1800)[0], AutomationCore)


_SAVE_OR_COMPARE = """
import json, sys, uuid
from blocks import automations
from prefect.events.schemas.automations import Automation
if sys.argv[1] == "save":  # what the server keeps: the JSON the creating process sent
    print(json.dumps(automations.zombie_automation().model_dump(mode="json")))
else:  # a later `vidgen serve`, reading it back
    stored = Automation.model_validate({**json.loads(sys.stdin.read()), "id": str(uuid.uuid4())})
    class Api:
        def read_automations_by_name(self, name): return [stored]
        def update_automation(self, automation_id, automation): pass
    print(automations.upsert_automation(Api(), automations.zombie_automation()))
"""


def test_an_automation_saved_by_another_process_is_unchanged_whatever_its_sets_order():
    """The trigger's event sets come back in the order the creating process sent them, a set's order
    follows string hashing (per process), and an update replaces the zombie detector's trigger: seen
    in scripts/chaos.py, a worker started after a `kill -9` updated it, and the killed runs were never
    marked Crashed. The hash seeds are ones whose orders differ."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]

    def run(seed: int, *args: str, stdin: str = "") -> str:
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        done = subprocess.run([sys.executable, "-c", _SAVE_OR_COMPARE, *args], input=stdin, env=env,
                              capture_output=True, text=True, timeout=120, cwd=repo)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    saved = run(0, "save")
    assert [run(seed, "compare", stdin=saved) for seed in (2, 6)] == ["unchanged", "unchanged"]
