"""Alerts and zombie-run detection: the Prefect automations `vidgen setup` creates (idempotently).

Someone is told, through one notification block (`vidgen-alerts`: a Slack incoming webhook when the
URL is Slack's, else a generic JSON webhook), when:

- a `produce-video` run fails or crashes (Prefect's own `prefect.flow-run.Failed/Crashed` events);
- a card reaches an Error status (`vidgen.card.error`, emitted by the flow with `emit_card_error`);
- a review gate has waited longer than the reminder time (a `produce-video` run Suspended/Paused and
  not running again within it: a proactive trigger);
- a video's spend passes 80 % of its channel budget (`vidgen.cost.threshold`, `emit_cost_threshold`).

Each message names the video, the channel, the step, the reason, and links to the run and the card.

Zombie runs (a worker killed mid-video leaves its run Running for good) are marked Crashed by the
automation Prefect documents for self-hosted servers
(https://docs.prefect.io/v3/advanced/detect-zombie-flows): after each `prefect.flow-run.heartbeat`
of a run of one of our served flows (`ZOMBIE_FLOWS`), expect another heartbeat or a terminal state within `ZOMBIE_AFTER_S`;
Suspended and Paused runs are in the expected set, since a run waiting at a gate sends no heartbeats
(its process may be gone by design), and so are AwaitingRetry and Scheduled ones: a run a stopping
worker handed back waits for the next worker without heartbeats (scripts/chaos.py worker-down: with
the worker down over the window, each was marked Crashed, alerted and spent a restart). Runs send heartbeats only with
`PREFECT_FLOWS_HEARTBEAT_FREQUENCY` set (>= 30 s; `HEARTBEAT_FREQUENCY_S` here), which the worker
process (`vidgen serve`) must export. Poll and handle-page runs are watched too: a killed poll run
left Running holds the poll deployment's one slot, and every poll due meanwhile is dropped
(CANCEL_NEW) until the slot's lease runs out (scripts/chaos.py kill9: no poll for minutes after the
worker came back); marked Crashed, it gives the slot back at once (Prefect releases a deployment's
slot when a run leaves Running).

A crashed `produce-video` run (zombie-marked, or its process died) is restarted as the same run:
`crash_restart_automation` moves it from Crashed to Scheduled (AwaitingRetry), a worker serving the
deployment runs it again, and its persisted task results make it pay for nothing it already made.
The flow itself gives up after `VIDGEN_MAX_RUN_RESTARTS` restarts (flows/produce_video.py).

`Automation.create` is not idempotent (two calls make two automations with one name), so every
automation is found by name and updated, left alone when unchanged, or created when missing.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from urllib.parse import urlparse
from uuid import UUID

from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook
from prefect.client.schemas.objects import StateType
from prefect.events import emit_event
from prefect.events.actions import ChangeFlowRunState, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

FLOW_NAME = "produce-video"
ALERTS_BLOCK = "vidgen-alerts"
ALERTS_URL_ENV = "VIDGEN_ALERTS_URL"
GATE_REMINDER_ENV = "VIDGEN_GATE_REMINDER_HOURS"
DEFAULT_GATE_REMINDER_HOURS = 24.0

CARD_ERROR_EVENT = "vidgen.card.error"
COST_THRESHOLD_EVENT = "vidgen.cost.threshold"
COST_ALERT_FRACTION = 0.8

HEARTBEAT_FREQUENCY_S = 30  # PREFECT_FLOWS_HEARTBEAT_FREQUENCY for `vidgen serve`; Prefect's minimum
ZOMBIE_AFTER_S = 3 * HEARTBEAT_FREQUENCY_S  # three missed heartbeats, as Prefect's guide sets it

ZOMBIE_FLOWS = (FLOW_NAME, "poll-notion", "handle-page")  # the flows `vidgen serve` runs (prefect.yaml)
ZOMBIE_AUTOMATION = "vidgen: crash zombie runs"
RETIRED_AUTOMATIONS = ("vidgen: crash zombie produce-video runs",)  # earlier names, removed by setup
CRASH_RESTART_AUTOMATION = "vidgen: restart crashed produce-video runs"
RESTARTED_MESSAGE = "Restarted after a crash by the vidgen automation; finished steps are served from their results"
RUN_FAILED_AUTOMATION = "vidgen: alert when a produce-video run fails or crashes"
CARD_ERROR_AUTOMATION = "vidgen: alert when a card reaches an Error status"
GATE_WAITING_AUTOMATION = "vidgen: alert when a review gate waits past the reminder time"
COST_AUTOMATION = "vidgen: alert when a video passes 80% of its budget"

TERMINAL_EVENTS = {f"prefect.flow-run.{state}" for state in ("Completed", "Failed", "Cancelled", "Crashed")}
WAITING_EVENTS = {"prefect.flow-run.Suspended", "prefect.flow-run.Paused"}
# A run handed back by a stopping worker (SIGTERM: Running -> AwaitingRetry) waits without heartbeats.
RESCHEDULED_EVENTS = {"prefect.flow-run.AwaitingRetry", "prefect.flow-run.Scheduled"}
# A gate is left when the run is resumed (Resuming -> Pending -> Running) or ends.
LEFT_GATE_EVENTS = {f"prefect.flow-run.{state}" for state in ("Resuming", "Pending", "Running")} | TERMINAL_EVENTS

_VIDEO_RUN = ResourceSpecification({"prefect.resource.role": "flow", "prefect.resource.name": FLOW_NAME})
_SERVED_RUN = ResourceSpecification({"prefect.resource.role": "flow", "prefect.resource.name": list(ZOMBIE_FLOWS)})
_FLOW_RUNS = ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"})
_NOTION_PAGE = "https://www.notion.so/{{ flow_run.parameters.page_id | replace('-', '') }}"

# --- messages (Prefect's Jinja templating: event, flow_run, ... see the automations docs) ---------
RUN_FAILED_SUBJECT = "Video run {{ flow_run.state.name | lower }}: {{ flow_run.name }}"
RUN_FAILED_BODY = """\
Video: {{ flow_run.name }}
Channel: {{ flow_run.parameters.channel_id }}
Step: the run as a whole ({{ flow_run.state.name }}; the card alert names the stage)
Reason: {{ flow_run.state.message }}
Run: {{ flow_run|ui_url }}
Card: """ + _NOTION_PAGE

VIDEO_SUBJECT = "{{ event.resource['vidgen.channel'] }}: {{ event.resource.name }}"
CARD_ERROR_BODY = """\
Video: {{ event.resource.name }}
Channel: {{ event.resource['vidgen.channel'] }}
Step: {{ event.resource['vidgen.step'] }}
Status: {{ event.resource['vidgen.status'] }}
Reason: {{ event.payload.reason }}
Run: {{ flow_run|ui_url }}
Card: {{ event.resource['vidgen.card-url'] }}"""
COST_BODY = """\
Video: {{ event.resource.name }}
Channel: {{ event.resource['vidgen.channel'] }}
Step: {{ event.resource['vidgen.step'] }}
Reason: spent ${{ event.payload.spent_usd }} of its ${{ event.payload.budget_usd }} budget \
({{ event.payload.percent }}%)
Run: {{ flow_run|ui_url }}
Card: {{ event.resource['vidgen.card-url'] }}"""
GATE_SUBJECT = "Review waiting: {{ flow_run.name }}"
GATE_BODY = """\
Video: {{ flow_run.name }}
Channel: {{ flow_run.parameters.channel_id }}
Step: review gate ({{ flow_run.state.name }} since {{ flow_run.state.timestamp }})
Reason: nobody has decided the review for {reminder}; approve or reject it on the card or in the run's form
Run: {{ flow_run|ui_url }}
Card: """ + _NOTION_PAGE


# --- events the flow emits --------------------------------------------------------------------
def _video_resource(page_id: str, title: str, channel_id: str, step: str, card_url: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"vidgen.video.{page_id}",
        "prefect.resource.name": title or page_id,
        "vidgen.channel": channel_id,
        "vidgen.step": step,
        "vidgen.card-url": card_url,
    }


def _flow_run_related(flow_run_id: UUID | str | None) -> list[dict[str, str]] | None:
    """The run as a related resource, so `{{ flow_run }}` resolves even outside the run's own context."""
    if flow_run_id is None:
        return None
    return [{"prefect.resource.id": f"prefect.flow-run.{flow_run_id}", "prefect.resource.role": "flow-run"}]


def emit_card_error(
    *,
    page_id: str,
    title: str,
    channel_id: str,
    step: str,
    status: str,
    reason: str,
    card_url: str,
    flow_run_id: UUID | str | None = None,
) -> None:
    """Tell the alert automation a card was set to an Error status (call right after the write).

    Inside a flow run, Prefect attaches the run to the event itself; pass `flow_run_id` when
    reporting from elsewhere (a reconciler) so the alert still links to the run.
    """
    resource = _video_resource(page_id, title, channel_id, step, card_url) | {"vidgen.status": status}
    emit_event(CARD_ERROR_EVENT, resource=resource, related=_flow_run_related(flow_run_id),
               payload={"reason": reason[:2000]})


def crosses_cost_threshold(before_usd: float, after_usd: float, budget_usd: float) -> bool:
    """Whether spend went from under `COST_ALERT_FRACTION` of the budget to at or over it."""
    if budget_usd <= 0:
        return False
    line = COST_ALERT_FRACTION * budget_usd
    return before_usd < line <= after_usd


def emit_cost_threshold(
    *,
    page_id: str,
    title: str,
    channel_id: str,
    step: str,
    before_usd: float,
    after_usd: float,
    budget_usd: float,
    card_url: str,
    flow_run_id: UUID | str | None = None,
) -> bool:
    """Emit `vidgen.cost.threshold` when this step's spend crossed 80 % of the budget; True if it did.

    Give it the video's total before and after a step, so a video is reported once, at the step
    that crossed the line (the event id is fixed per video, so a replayed step is deduplicated too).
    """
    if not crosses_cost_threshold(before_usd, after_usd, budget_usd):
        return False
    emit_event(
        COST_THRESHOLD_EVENT,
        resource=_video_resource(page_id, title, channel_id, step, card_url),
        related=_flow_run_related(flow_run_id),
        payload={
            "spent_usd": f"{after_usd:.2f}",
            "budget_usd": f"{budget_usd:.2f}",
            "percent": f"{100 * after_usd / budget_usd:.0f}",
        },
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"vidgen:{page_id}:cost-threshold:{budget_usd}"),
    )
    return True


# --- the automations --------------------------------------------------------------------------
def zombie_automation(after_s: float = ZOMBIE_AFTER_S) -> AutomationCore:
    """Prefect's documented zombie detector, limited to the flows we serve, gates excluded. Only
    produce-video runs are restarted after (`crash_restart_automation`): a poll or a page's handling
    is simply done again by the next one."""
    return AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description="Marks a produce-video, poll-notion or handle-page run Crashed when its heartbeats stop (its worker died).",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat"} | TERMINAL_EVENTS | WAITING_EVENTS | RESCHEDULED_EVENTS,
            match=_FLOW_RUNS,
            match_related=_SERVED_RUN,
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=after_s),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"Marked Crashed: no heartbeat for {after_s:.0f} s (its worker stopped)",
            )
        ],
    )


def crash_restart_automation() -> AutomationCore:
    """Crashed produce-video run -> Scheduled (AwaitingRetry), the state Prefect's own retries use.

    Crashed -> Scheduled is a transition Prefect's server accepts for a deployment's run without
    forcing it, and a resumed gate does not count as a run, so `run_count` counts exactly the
    restarts (and the first run) that the flow's restart limit reads."""
    return AutomationCore(
        name=CRASH_RESTART_AUTOMATION,
        description="Runs a crashed produce-video run again (the same run; its persisted results are reused).",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            match=_FLOW_RUNS,
            match_related=_VIDEO_RUN,
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[ChangeFlowRunState(state=StateType.SCHEDULED, name="AwaitingRetry", message=RESTARTED_MESSAGE)],
    )


def _notify(block_id: UUID, subject: str, body: str) -> SendNotification:
    return SendNotification(block_document_id=block_id, subject=subject, body=body)


def alert_automations(block_id: UUID, *, gate_reminder_s: float) -> list[AutomationCore]:
    """The four alerts, all sent through the notification block `block_id`."""
    reminder = _duration(gate_reminder_s)
    return [
        AutomationCore(
            name=RUN_FAILED_AUTOMATION,
            trigger=EventTrigger(
                expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
                match=_FLOW_RUNS,
                match_related=_VIDEO_RUN,
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[_notify(block_id, RUN_FAILED_SUBJECT, RUN_FAILED_BODY)],
        ),
        AutomationCore(
            name=CARD_ERROR_AUTOMATION,
            trigger=EventTrigger(
                expect={CARD_ERROR_EVENT},
                match=ResourceSpecification({"prefect.resource.id": "vidgen.video.*"}),
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[_notify(block_id, "Card at {{ event.resource['vidgen.status'] }}: " + VIDEO_SUBJECT,
                             CARD_ERROR_BODY)],
        ),
        AutomationCore(
            name=GATE_WAITING_AUTOMATION,
            trigger=EventTrigger(
                after=WAITING_EVENTS,
                expect=LEFT_GATE_EVENTS,
                match=_FLOW_RUNS,
                match_related=_VIDEO_RUN,
                for_each={"prefect.resource.id"},
                posture=Posture.Proactive,
                threshold=1,
                within=timedelta(seconds=gate_reminder_s),
            ),
            actions=[_notify(block_id, GATE_SUBJECT, GATE_BODY.replace("{reminder}", reminder))],
        ),
        AutomationCore(
            name=COST_AUTOMATION,
            trigger=EventTrigger(
                expect={COST_THRESHOLD_EVENT},
                match=ResourceSpecification({"prefect.resource.id": "vidgen.video.*"}),
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[_notify(block_id, "Budget 80%: " + VIDEO_SUBJECT, COST_BODY)],
        ),
    ]


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def gate_reminder_s() -> float:
    """How long a gate may wait before someone is reminded (`VIDGEN_GATE_REMINDER_HOURS`, default 24)."""
    raw = os.environ.get(GATE_REMINDER_ENV)
    return 3600 * (float(raw) if raw else DEFAULT_GATE_REMINDER_HOURS)


# --- registration -----------------------------------------------------------------------------
def notification_block(url: str) -> SlackWebhook | CustomWebhookNotificationBlock:
    """Slack's own block for a Slack incoming-webhook URL, else a webhook that POSTs JSON.

    The generic webhook's JSON is `{"subject": ..., "text": ...}` (`text` is what Slack-compatible
    receivers such as Mattermost or Rocket.Chat show).
    """
    if urlparse(url).hostname == "hooks.slack.com":
        return SlackWebhook(url=url)
    return CustomWebhookNotificationBlock(
        name=ALERTS_BLOCK,
        url=url,
        json_data={"subject": "{{subject}}", "text": "{{body}}"},
    )


def _saved_alerts_block(url: str | None) -> UUID | None:
    """The alerts block's id: saved from `url` when given, else the one an earlier setup saved."""
    if url:
        return notification_block(url).save(ALERTS_BLOCK, overwrite=True)
    for block_cls in (CustomWebhookNotificationBlock, SlackWebhook):
        try:
            return block_cls.load(ALERTS_BLOCK)._block_document_id
        except (ValueError, KeyError):
            continue
    return None


def _comparable(automation: AutomationCore) -> dict:
    return _sorted_sets(
        AutomationCore.model_validate(automation.model_dump()).model_dump(mode="json", exclude={"owner_resource"})
    )


def _sorted_sets(value: object) -> object:
    """`value` with every list of strings sorted. The trigger's event sets (`after`, `expect`,
    `for_each`) dump in the set's iteration order, which follows string hashing and so differs from
    one process to the next: compared as dumped, the automation a `vidgen serve` finds looked changed
    about one start in three, and the update replaced the zombie detector's trigger, forgetting the
    heartbeats it was waiting on (runs whose worker had just been killed stayed Running for good)."""
    if isinstance(value, dict):
        return {key: _sorted_sets(item) for key, item in value.items()}
    if isinstance(value, list):
        items = [_sorted_sets(item) for item in value]
        return sorted(items) if all(isinstance(item, str) for item in items) else items
    return value


def upsert_automation(client, wanted: AutomationCore) -> str:
    """Create `wanted`, or bring the automation of that name up to date; never a second one."""
    existing = client.read_automations_by_name(wanted.name)
    if not existing:
        client.create_automation(automation=wanted)
        return "created"
    first, *duplicates = existing
    for duplicate in duplicates:  # left by an earlier non-idempotent create
        client.delete_automation(duplicate.id)
    current = AutomationCore.model_validate(first.model_dump(exclude={"id"}))
    if _comparable(current) == _comparable(wanted) and not duplicates:
        return "unchanged"
    client.update_automation(automation_id=first.id, automation=wanted)
    return "updated"


def register_automations(alerts_url: str | None = None) -> list[str]:
    """Create or update the zombie detector, the crash restart and (with an alerts URL, now or from an
    earlier setup) the alerts.

    `alerts_url` comes from `vidgen setup --alerts-url`; without it `VIDGEN_ALERTS_URL` is used.
    Returns one line per thing done, like `blocks.config.register`.
    """
    from prefect.client.orchestration import get_client

    url = alerts_url or os.environ.get(ALERTS_URL_ENV) or None
    block_id = _saved_alerts_block(url)
    wanted = [zombie_automation(), crash_restart_automation()]
    done: list[str] = []
    if block_id is not None:
        wanted += alert_automations(block_id, gate_reminder_s=gate_reminder_s())
        if url:
            done.append(f"alerts block {ALERTS_BLOCK} -> {urlparse(url).hostname}")
    else:
        done.append(f"alerts: not configured (export {ALERTS_URL_ENV} or pass --alerts-url, and run setup again)")
    with get_client(sync_client=True) as client:
        for name in RETIRED_AUTOMATIONS:
            for retired in client.read_automations_by_name(name):
                client.delete_automation(retired.id)
                done.append(f"automation {name!r}: removed (renamed)")
        for automation in wanted:
            done.append(f"automation {automation.name!r}: {upsert_automation(client, automation)}")
    return done
