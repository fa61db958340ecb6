"""How fast Notion's changes reach their work: the webhook receiver alone, and the whole product.

Receiver only (the default; no Prefect). Starts, in this process, the local Notion server (subscribed
to the receiver, as `vidgen notion init --webhook-url` does) and the webhook receiver
(`vidgen.webhooks.create_webhook_app`), on temporary state, with a dispatch that only records when it
was called. The receiver is served as `start_webhook_server` serves it (uvicorn on loopback in a
thread), wrapped to note each request's arrival. Then:

* receiver: N signed events POSTed straight to the receiver; request arrival -> dispatch called
  (measured inside the receiver's process), and the sender's full round trip (request -> answer);
* entry -> dispatch: N entries created Queued through the gateway; API call -> dispatch called for
  that page (the local server's delivery thread, HTTP, verification, dedupe, dispatch).

Goal: the receiver answers well within 200 ms (exit status 1 if its p95 round trip does not).

    uv run python scripts/bench_webhooks.py [--events 50] [--entries 30]

End to end (`--end-to-end`, issue 10's benchmark): the product as a user's machine runs it, on the
embedded default. `vidgen.stack` starts, on a temporary VIDGEN_HOME with free ports, PostgreSQL
(SQLite with `--sqlite`) and Prefect's server, the local Notion server holding a new Video Pipeline
database of the sample channels (one scene, every review gate on, so a video stops at its first gate
within seconds) and a `vidgen serve` worker. Measured twice: via webhook (worker with
`--webhook-port`, the local server subscribed to it, the poll hourly), then by the poll alone (a new
worker polling every `--poll-interval` s, no subscription):

* entry -> run Running: entries created Queued `--spacing` s apart; from just before the API call to
  the Running state of the page's produce-video run (Prefect's own timestamp; one clock);
* decision -> run resumed: Review = Approve written on the cards of `--decisions` runs waiting at
  their first gate; from just before the API call to the run's first state after Paused, and to it
  Running again.

Goals: via webhook p95 <= 5 s; poll alone p95 <= interval + the poll's own time (p95 of its runs,
Running -> Completed). Each is split in two: entry -> run created (the receiver or the poll) and
run created -> Running (the worker starting the run's process). Prints the load average at the start and a table (n, p50, p95); cancels
every run and stops every process it started, also on failure or after `--timeout` s. Exit status
0: goals met; 1: a goal missed; 2: the benchmark could not finish.

    uv run python scripts/bench_webhooks.py --end-to-end [--entries 30] [--decisions 5]
        [--poll-interval 20] [--spacing 1.5] [--sqlite] [--timeout 1200]
"""

from __future__ import annotations

import argparse
import contextvars
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vidgen.channels import Channel, load_channels  # noqa: E402
from vidgen.cli.notion_cmds import subscribe_local_webhooks  # noqa: E402
from vidgen.config import NotionSettings, Paths, local_notion_token  # noqa: E402
from vidgen.loopback import LoopbackServer  # noqa: E402
from vidgen.notion.gateway import NotionGateway  # noqa: E402
from vidgen.notion.ratelimit import TokenBucket  # noqa: E402
from vidgen.notion.server import LocalNotionServer  # noqa: E402
from vidgen.notion.server.webhooks import (  # noqa: E402
    WEBHOOK_API_VERSION, WebhookSender, subscription_file,
)  # fmt: skip
from vidgen.pipeline import configured_channels  # noqa: E402
from vidgen.statuses import NotionStatus  # noqa: E402
from vidgen.webhooks import WEBHOOK_PATH, ReceiverConfig, create_webhook_app, sign  # noqa: E402
from vidgen.webhooks.store import CandidateTokens, VerificationTokenStore, accept_token  # noqa: E402

if TYPE_CHECKING:  # Prefect is imported only once this process points at the benchmark's own server
    from prefect.client.schemas.objects import FlowRun

RECEIVER_BUDGET_MS = 200.0
WEBHOOK_GOAL_S = 5.0
_arrived: contextvars.ContextVar[float] = contextvars.ContextVar("arrived", default=0.0)


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 (median) and p95 (nearest rank), the figures every row of both modes reports."""
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


# --- receiver only ------------------------------------------------------------------------------


class Timed:
    """ASGI wrapper: notes when each request arrived, for the dispatch it leads to (context is copied
    into the receiver's worker thread)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        _arrived.set(time.perf_counter())
        await self.app(scope, receive, send)


class Recorder:
    """The dispatch under test: records (page, event type) -> perf_counter() and the in-receiver delay."""

    def __init__(self) -> None:
        self.called: dict[str, float] = {}
        self.in_receiver_ms: list[float] = []
        self.done = threading.Condition()

    def __call__(self, page_id: str, event_type: str) -> None:
        now = time.perf_counter()
        with self.done:
            if arrived := _arrived.get():
                self.in_receiver_ms.append((now - arrived) * 1000)
            self.called.setdefault(page_id, now)
            self.done.notify_all()

    def wait_for(self, page_id: str, timeout: float = 10.0) -> float:
        with self.done:
            if not self.done.wait_for(lambda: page_id in self.called, timeout):
                raise TimeoutError(f"no dispatch for {page_id} within {timeout} s")
            return self.called[page_id]


def _figures(label: str, values_ms: list[float]) -> tuple[float, float]:
    p50, p95 = percentiles(values_ms)
    print(f"{label:<44} n={len(values_ms):<4} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   max {max(values_ms):7.1f} ms")
    return p50, p95


def _event(page_id: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()), "timestamp": datetime.now(timezone.utc).isoformat(), "type": "page.properties_updated",
        "attempt_number": 1, "api_version": "2025-09-03", "authors": [], "entity": {"id": page_id, "type": "page"},
        "data": {"parent": {"id": "db", "type": "database"}, "updated_properties": ["st"]},
    }  # fmt: skip


def receiver_only(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="vidgen-bench-webhooks-") as tmp:
        home = Path(tmp)
        recorder = Recorder()
        config = ReceiverConfig(token_file=home / "notion-webhook-token", events_db=home / "events.sqlite")
        app = create_webhook_app(recorder, config, announce=lambda _: None)
        receiver = LoopbackServer(Timed(app), name="notion-webhooks", lifespan="off").start()
        receiver_url = f"http://127.0.0.1:{receiver.port}{WEBHOOK_PATH}"
        store = home / "notion.sqlite"
        sender = WebhookSender(subscription_file(store), merge_window_s=1.0)
        try:
            with LocalNotionServer(store, webhooks=sender) as server:
                subscription = sender.subscribe(receiver_url)
                accept_token(VerificationTokenStore(config.token_file), CandidateTokens(config.candidates_file),
                             subscription.verification_token, chosen_elsewhere=True)  # fmt: skip
                deadline = time.monotonic() + 10
                while not config.token_file.exists():
                    if time.monotonic() > deadline:
                        raise TimeoutError("the verification request never reached the receiver")
                    time.sleep(0.01)

                print(f"receiver {receiver_url}; local Notion {server.base_url}; no Prefect\n")
                round_trips: list[float] = []
                with httpx.Client() as http:
                    for i in range(args.events):
                        raw = json.dumps(_event(f"direct-{i}")).encode()
                        headers = {"X-Notion-Signature": sign(raw, subscription.verification_token)}
                        start = time.perf_counter()
                        answer = http.post(receiver_url, content=raw, headers=headers)
                        round_trips.append((time.perf_counter() - start) * 1000)
                        assert answer.status_code == 200 and answer.json()["outcome"] == "dispatched", answer.text
                _figures("receiver: request arrived -> dispatch called", recorder.in_receiver_ms)
                _, p95_round_trip = _figures("receiver: request sent -> answer received", round_trips)

                channels = load_channels(REPO / "channels")
                channel = next(c for c in channels.values() if c.active)
                gateway = NotionGateway(server.token, base_url=server.base_url, limiter=TokenBucket.unlimited())
                gateway.create_database(parent_page_id=None, title="Video Pipeline", channels=channels)
                entry_ms: list[float] = []
                for i in range(args.entries):
                    start = time.perf_counter()
                    entry = gateway.create_entry(
                        title=f"Bench {i}", channel=channel.notion_value, topic="webhook latency", status=NotionStatus.QUEUED
                    )
                    entry_ms.append((recorder.wait_for(entry.page_id) - start) * 1000)
                gateway.close()
                _figures("entry created -> dispatch called (end to end)", entry_ms)
        finally:
            receiver.stop()
            app.state.receiver.close()
    ok = p95_round_trip <= RECEIVER_BUDGET_MS
    print(f"\nreceiver p95 {p95_round_trip:.1f} ms {'within' if ok else 'OVER'} the {RECEIVER_BUDGET_MS:.0f} ms budget")
    return 0 if ok else 1


# --- end to end -----------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: a latency in seconds, measured n times, with its goal when it has one."""

    what: str
    values_s: list[float]
    goal_s: float | None = None

    def met(self) -> bool:
        if self.goal_s is None:
            return True
        return bool(self.values_s) and percentiles(self.values_s)[1] <= self.goal_s


def print_table(rows: list[Row]) -> None:
    print(f"\n{'what':<52} {'n':>3} {'p50':>8} {'p95':>8} {'max':>8}  goal")
    for row in rows:
        if not row.values_s:
            print(f"{row.what:<52} {0:>3}  (nothing measured)")
            continue
        p50, p95 = percentiles(row.values_s)
        goal = "" if row.goal_s is None else f"p95 <= {row.goal_s:.1f} s: {'met' if row.met() else 'MISSED'}"
        print(f"{row.what:<52} {len(row.values_s):>3} {p50:>7.1f}s {p95:>7.1f}s {max(row.values_s):>7.1f}s  {goal}")


class Deadline:
    """`--timeout` for the whole benchmark: every wait gets what is left of it."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())


@dataclass
class Bench:
    """What the end-to-end benchmark started, so it can all be stopped, whatever happens."""

    paths: Paths
    deadline: Deadline
    since: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    notion_url: str = ""
    notion_token: str = ""  # the local Notion server's token, made for the benchmark's VIDGEN_HOME
    data_source_id: str = ""
    worker: subprocess.Popen | None = None
    prefect_up: bool = False
    keep_logs: Path | None = None  # where the servers' and the worker's logs are copied at the end
    started: float = field(default_factory=time.monotonic)

    def say(self, line: str) -> None:
        print(f"{time.monotonic() - self.started:6.1f} s  {line}")

    def gateway(self) -> NotionGateway:
        """The benchmark's own Notion client: it writes what a person would (entries, decisions)."""
        return NotionGateway(self.notion_token, base_url=self.notion_url, data_source_id=self.data_source_id)

    @property
    def worker_log(self) -> Path:
        return self.paths.home / "logs" / "serve.log"

    def wait(self, check: Any, what: str) -> Any:
        """The stack's wait, bounded by the deadline, failing at once (with its log) if the worker exits."""
        from vidgen.stack import wait_until

        return wait_until(check, what, timeout_s=self.deadline.left(), proc=self.worker, log=self.worker_log)


def bench_channels(directory: Path) -> Path:
    """The sample channels cut to one short scene with every review gate on: a video reaches its
    first gate (the images) in seconds, and waits there without a process."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in (REPO / "channels").glob("*.yaml"):
        data = yaml.safe_load(source.read_text())
        data["script"].update({"scenes": 1, "min_scenes": 1, "words_per_scene": 10})
        for gate in data["review"].values():
            gate["enabled"] = True
        (directory / source.name).write_text(yaml.safe_dump(data, sort_keys=False))
    return directory


def start_stack(bench: Bench, *, sqlite: bool) -> None:
    """PostgreSQL (or SQLite) and Prefect's server, the local Notion server and its database, all on
    free ports under the temporary VIDGEN_HOME; this process's environment then points at them."""
    from vidgen import stack

    paths = bench.paths
    # This machine's own servers and settings must not leak into the benchmark's.
    for name in ("PREFECT_API_URL", "PREFECT_API_DATABASE_CONNECTION_URL", "VIDGEN_LEDGER_URL", "NOTION_TOKEN",
                 "NOTION_BASE_URL", "NOTION_DATA_SOURCE_ID", "VIDGEN_LOCAL_NOTION_TOKEN"):
        os.environ.pop(name, None)
    os.environ[stack.DATABASE_SETTING] = "sqlite" if sqlite else "postgres"
    stack.export_paths(paths)
    port = stack.free_port()
    os.environ["VIDGEN_PREFECT_PORT"] = str(port)  # the worker's `vidgen serve` knows it as the embedded server
    pidfile = stack.pidfiles(paths)["prefect-server"]
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    database_url = stack.prefect_database_url(paths)
    server = stack.start_prefect_server(paths.home / "prefect", port, database_url, ui=False,
                                        timeout_s=bench.deadline.left())
    pidfile.write_text(str(server.process.pid))  # so stop_servers(paths) stops it, as `vidgen down` would
    os.environ.update(server.env)
    bench.prefect_up = True
    bench.notion_url = stack.ensure_local_notion(paths, port=stack.free_port())
    bench.notion_token = local_notion_token(paths)
    with NotionGateway(bench.notion_token, base_url=bench.notion_url) as gateway:
        _database, bench.data_source_id = gateway.create_database(
            parent_page_id=None, title="Video Pipeline", channels=configured_channels(paths.channels)
        )
    os.environ.update(NOTION_TOKEN=bench.notion_token, NOTION_BASE_URL=bench.notion_url,
                      NOTION_DATA_SOURCE_ID=bench.data_source_id)
    bench.say(f"Prefect {server.api_url} on {'SQLite' if sqlite else 'PostgreSQL'}; local Notion {bench.notion_url}; "
              f"VIDGEN_HOME {paths.home}")


def serve_worker(bench: Bench, args: list[str]) -> None:
    """`vidgen serve` with `args`, ready once it has (re)applied all its deployments."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from flows.deployments import served_flows
    from vidgen.stack import start_worker as spawn_worker

    names = [f"{flow.name}/{options['name']}" for flow, options in served_flows()]
    since = datetime.now(timezone.utc)
    bench.worker = spawn_worker(bench.paths, args=args)

    def applied() -> bool:
        with get_client(sync_client=True) as client:
            try:
                return all(client.read_deployment_by_name(name).updated >= since for name in names)
            except ObjectNotFound:  # not created yet
                return False

    bench.wait(applied, f"vidgen serve {' '.join(args)} to serve its deployments")
    bench.say(f"worker ready: vidgen serve {' '.join(args)}")


def stop_worker(bench: Bench) -> None:
    from vidgen.stack import stop_process

    if bench.worker is not None:
        stop_process(bench.worker)
        bench.worker = None


def subscribe(bench: Bench, port: int) -> None:
    """The local Notion server sends its events to the worker's receiver, as `vidgen demo` subscribes it."""
    from vidgen.stack import healthy

    hook_url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    bench.wait(lambda: healthy(hook_url), f"the worker's webhook receiver at {hook_url}")
    subscribe_local_webhooks(NotionSettings(token=bench.notion_token, base_url=bench.notion_url), hook_url, bench.paths)


def unsubscribe(bench: Bench) -> None:
    """No more events: what follows is the poll alone."""
    httpx.delete(f"{bench.notion_url}/v1/vidgen/webhook_subscription",
                 headers={"Authorization": f"Bearer {bench.notion_token}", "Notion-Version": WEBHOOK_API_VERSION},
                 timeout=10).raise_for_status()


def read_runs(deployment: str, since: datetime, **filters: Any) -> list[FlowRun]:
    """`deployment`'s flow runs scheduled since `since` (every one this benchmark caused)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter, DeploymentFilterName, FlowRunFilter, FlowRunFilterExpectedStartTime,
    )  # fmt: skip

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=since), **filters),
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
            limit=200,  # the server's maximum; a benchmark causes fewer
        )


def runs_by_page(since: datetime, pages: list[str]) -> dict[str, FlowRun]:
    from flows.poll_notion import page_tag

    tags = {page_tag(page_id): page_id for page_id in pages}
    return {tags[t]: run for run in read_runs("produce-video", since) for t in run.tags if t in tags}


def queue_entries(bench: Bench, channels: list[Channel], count: int, spacing_s: float, label: str) -> dict[str, datetime]:
    """`count` entries created Queued, one every `spacing_s`; page id -> just before its API call."""
    queued: dict[str, datetime] = {}
    with bench.gateway() as gateway:
        for i in range(count):
            channel = channels[i % len(channels)]
            at = datetime.now(timezone.utc)
            entry = gateway.create_entry(title=f"{label} {i + 1}", channel=channel.notion_value,
                                         topic="How fast an entry starts", status=NotionStatus.QUEUED)
            queued[entry.page_id] = at
            time.sleep(spacing_s)
    return queued


def measure_starts(bench: Bench, since: datetime, queued: dict[str, datetime], how: str) -> dict[str, FlowRun]:
    """Waits until every queued page's produce-video run has been Running; its latencies, in seconds."""
    def all_started() -> dict[str, FlowRun] | None:
        runs = runs_by_page(since, list(queued))
        return runs if len(runs) == len(queued) and all(r.start_time for r in runs.values()) else None

    runs: dict[str, FlowRun] = bench.wait(all_started, f"every entry's produce-video run to be Running ({how})")
    return runs


def measure_decisions(bench: Bench, runs: list[FlowRun], spacing_s: float, how: str) -> tuple[list[float], list[float]]:
    """Review = Approve on the cards of `runs` once each waits at its gate; decision -> the run leaves
    Paused, and -> it is Running again (seconds, from Prefect's state history)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.objects import StateType

    from flows.poll_notion import ready_for_input

    ids = [run.id for run in runs]

    def current() -> list[FlowRun]:
        with get_client(sync_client=True) as client:
            return client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))

    # A decision written before the run can take input is left on the card for the next poll.
    bench.wait(lambda: all(r.state_type is StateType.PAUSED and ready_for_input(r) for r in current()),
               f"{len(runs)} runs to wait at their first gate ({how})")
    decided: dict[Any, datetime] = {}
    with bench.gateway() as gateway:
        for run in runs:
            page_id = next(t.removeprefix("page:") for t in run.tags if t.startswith("page:"))
            entry = gateway.get_entry(page_id)
            decided[run.id] = datetime.now(timezone.utc)
            gateway.update_entry(entry, review="Approve", review_notes="benchmark reviewer")
            time.sleep(spacing_s)

    def resumed() -> dict[Any, tuple[float, float]] | None:
        done: dict[Any, tuple[float, float]] = {}
        with get_client(sync_client=True) as client:
            for run in current():
                if run.state_type is StateType.PAUSED:
                    return None
                after = [s for s in client.read_flow_run_states(run.id) if s.timestamp > decided[run.id]]
                left = next((s for s in after if s.type is not StateType.PAUSED), None)
                running = next((s for s in after if s.type is StateType.RUNNING), None)
                if left is None or running is None:
                    return None
                done[run.id] = ((left.timestamp - decided[run.id]).total_seconds(),
                                (running.timestamp - decided[run.id]).total_seconds())
        return done

    done: dict[Any, tuple[float, float]] = bench.wait(resumed, f"the approved runs to resume ({how})")
    return [left for left, _ in done.values()], [running for _, running in done.values()]


def cancel_runs(bench: Bench, deployments: list[str]) -> int:
    """Stop every live run of `deployments` the benchmark caused: without a process (Scheduled,
    Paused) at once, the others through Cancelling (the worker ends their process)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled, Cancelling

    from flows.poll_notion import LIVE_STATES

    live = FlowRunFilterState(type=FlowRunFilterStateType(any_=LIVE_STATES))
    stopped = 0
    with get_client(sync_client=True) as client:
        for deployment in deployments:
            for run in read_runs(deployment, bench.since, state=live):
                if run.state_type is StateType.CANCELLING:
                    continue
                message = "The webhook benchmark is over"
                no_process = run.state_type in (StateType.SCHEDULED, StateType.PAUSED)
                client.set_flow_run_state(run.id, Cancelled(message=message) if no_process else Cancelling(message=message),
                                          force=True)
                stopped += 1
    if bench.worker is not None:  # the worker ends the cancelled runs' processes; let it
        try:
            bench.wait(lambda: not any(read_runs(d, bench.since, state=live) for d in deployments), "cancelled runs to end")
        except Exception as exc:  # stopping the worker ends their processes anyway
            print(f"  (not every cancelled run ended: {exc})")
    return stopped


def run_phase(bench: Bench, args: argparse.Namespace, rows: list[Row], *, webhook: bool, channels: list[Channel]) -> None:
    """One way of carrying Notion's changes to Prefect: a worker, N entries, then the decisions; each
    figure goes to `rows` as soon as it is measured (a later failure keeps it)."""
    from prefect.client.schemas.filters import FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    from vidgen.stack import free_port

    how = "via webhook" if webhook else f"poll alone, every {args.poll_interval} s"
    if webhook:
        port = free_port()
        serve_worker(bench, ["--poll-interval", "3600", "--webhook-port", str(port)])
        subscribe(bench, port)
    else:
        serve_worker(bench, ["--poll-interval", str(args.poll_interval)])
    since = datetime.now(timezone.utc)
    bench.say(f"[{how}] queueing {args.entries} entries, {args.spacing} s apart...")
    queued = queue_entries(bench, channels, args.entries, args.spacing, "Webhook" if webhook else "Poll")
    runs = measure_starts(bench, since, queued, how)
    starts = [(runs[page].start_time - queued[page]).total_seconds() for page in queued]
    rows.append(Row(f"entry -> run Running, {how}", starts))
    # Where the time goes: Notion and the receiver or poll, up to the run's creation; then the worker.
    rows.append(Row("  entry -> run created", [(runs[p].created - queued[p]).total_seconds() for p in queued]))
    rows.append(Row("  run created -> Running", [(runs[p].start_time - runs[p].created).total_seconds() for p in queued]))
    bench.say(f"[{how}] every run is Running: p50 {percentiles(starts)[0]:.1f} s, p95 {percentiles(starts)[1]:.1f} s")
    if not webhook:  # the poll's own time: its run, Running -> Completed (the worker starts its process
        # up to 10 s ahead of the tick, so the tick -> Running part is not the poll's)
        completed = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))
        polls = [(r.end_time - r.start_time).total_seconds() for r in read_runs("poll-notion", since, state=completed)
                 if r.end_time and r.start_time]
        rows.append(Row("  poll-notion run: Running -> Completed", polls))
    if args.decisions > 0:
        bench.say(f"[{how}] approving {args.decisions} runs at their first gate...")
        left, running = measure_decisions(bench, list(runs.values())[: args.decisions], args.spacing, how)
        rows += [Row(f"decision -> run leaves Paused, {how}", left), Row(f"decision -> run Running again, {how}", running)]
    if webhook:
        unsubscribe(bench)
    bench.say(f"[{how}] cancelled {cancel_runs(bench, ['produce-video'])} runs")
    stop_worker(bench)


def with_goals(rows: list[Row], poll_interval: float) -> list[Row]:
    """Webhook: entry -> Running p95 <= 5 s. Poll alone: <= the interval + the poll's own time (p95)."""
    polls = next((r.values_s for r in rows if r.what.strip().startswith("poll-notion run")), [])
    poll_goal = poll_interval + (percentiles(polls)[1] if polls else 0.0)
    for row in rows:
        if row.what.startswith("entry -> run Running, via webhook"):
            row.goal_s = WEBHOOK_GOAL_S
        elif row.what.startswith("entry -> run Running, poll alone"):
            row.goal_s = poll_goal
    return rows


def end_to_end(args: argparse.Namespace) -> int:
    load = os.getloadavg()
    print(f"load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))  # a killed benchmark still stops what it started
    os.chdir(REPO)  # the worker serves the flows from here
    rows: list[Row] = []
    status = 2
    with tempfile.TemporaryDirectory(prefix="vidgen-bench-e2e-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        paths = Paths(home=root / "home", channels=bench_channels(root / "channels"), workspaces=root / "workspaces")
        bench = Bench(paths=paths, deadline=Deadline(args.timeout), keep_logs=args.logs)
        try:
            start_stack(bench, sqlite=args.sqlite)
            channels = [c for c in configured_channels(paths.channels).values() if c.active]
            run_phase(bench, args, rows, webhook=True, channels=channels)
            run_phase(bench, args, rows, webhook=False, channels=channels)
            status = 0 if all(row.met() for row in with_goals(rows, args.poll_interval)) else 1
        except Exception as exc:
            print(f"\nThe benchmark could not finish: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            shutdown(bench)
    print_table(with_goals(rows, args.poll_interval))  # a run cut short still judges what it measured
    return status


def shutdown(bench: Bench) -> None:
    """Cancel every run, stop the worker and every server started for the benchmark's VIDGEN_HOME."""
    from vidgen.stack import stop_servers

    if bench.prefect_up:
        try:
            cancel_runs(bench, ["produce-video", "poll-notion"])
        except Exception as exc:  # the server may be the thing that failed
            print(f"could not cancel the runs: {exc}", file=sys.stderr)
        from prefect._internal.concurrency.services import _QueueServiceBase

        _QueueServiceBase.drain_all(timeout=10, at_exit=False)  # before its server goes away
    stop_worker(bench)
    stopped = stop_servers(bench.paths)
    print(f"stopped: worker, {', '.join(stopped) or 'no server'}", flush=True)
    if bench.keep_logs is not None:
        bench.keep_logs.mkdir(parents=True, exist_ok=True)
        for log in [*(bench.paths.home / "logs").glob("*.log"), bench.paths.home / "prefect" / "prefect-server.log"]:
            if log.is_file():
                shutil.copy2(log, bench.keep_logs / log.name)
        print(f"logs kept in {bench.keep_logs}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50, help="receiver only: signed events sent straight to it (>= 30)")
    parser.add_argument("--entries", type=int, default=30, help="entries created Queued, per way (>= 30)")
    parser.add_argument("--end-to-end", action="store_true", help="the whole product on the embedded default (Prefect, worker)")
    parser.add_argument("--decisions", type=int, default=5, help="end to end: approvals measured per way")
    parser.add_argument("--poll-interval", type=int, default=20, help="end to end: the poll's interval when alone (s)")
    parser.add_argument("--spacing", type=float, default=1.5, help="end to end: seconds between entries (and decisions)")
    parser.add_argument("--sqlite", action="store_true", help="end to end: Prefect on SQLite (VIDGEN_PREFECT_DATABASE=sqlite)")
    parser.add_argument("--timeout", type=float, default=1200, help="end to end: give up (and clean up) after this many s")
    parser.add_argument("--logs", type=Path, help="end to end: copy the worker's and servers' logs to this folder")
    args = parser.parse_args()
    return end_to_end(args) if args.end_to_end else receiver_only(args)


if __name__ == "__main__":
    sys.exit(main())
