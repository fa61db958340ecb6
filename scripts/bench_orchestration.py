"""Does Prefect's concurrency machinery deliver the throughput the limits allow?

Starts its own Prefect server with the product's `vidgen.stack` (temporary PREFECT_HOME; the
embedded PostgreSQL by default, SQLite, or a throwaway database made from `test` at 127.0.0.1:5432
with `external-postgres`), creates the tag limits and the
`notion-api` rate limit exactly as `vidgen setup` does (`blocks.config.concurrency_config()` numbers,
the same client calls), then makes `--videos` videos for each of `--channels` channels with fake,
time-scaled providers. Nothing talks to Notion or to a provider: each step sleeps its seed latency x
`--scale` and appends (tag, start, end) to a shared JSON-lines file.

Per video, in the order of `flows.produce_video.make_video`: 1 Notion read and 11 status writes (tag
`notion`, each also takes a slot of the `notion-api` rate limit through the product's
`tasks.notion.PrefectRateLimit`), 1 script (`gemini`), N images (`gemini`), N composites (no tag),
N clips (`kling`), N narrations and N sound effects (`elevenlabs`), 1 assembly (no tag). Paid steps
use the product's retry options (`tasks.retry.paid_step_options`), Notion steps the product's task
options (`tasks.notion.NOTION_TASK`), and the flow the product's task runner (6 threads per video).

How the videos run (`--mode`):
- `serve` (default, what production does): every video is its own `bench-video` deployment run,
  served from one process with `limit` concurrent runs by `flows.serving.serve_leaving_runs`, as
  `vidgen serve` serves produce-video (limit 20, PREFECT_RUNNER_POLL_FREQUENCY=2): each flow run is
  a process forked from a server that has already imported Prefect and the flow's module, so every
  running video acquires its tag slots from its own process.
- `threads`: every video is a top-level flow run in a thread of one process (what a single
  in-process runner would do). Prefect serialises slot acquisition per limit within a process, so
  this mode shows the cost of one poller per tag.

Printed: the ideal makespan the limits allow (max of: per tag, planned work seconds / limit; Notion
requests / rate; the longest per-video chain), the measured makespan and their ratio (target
>= 0.90), per-tag peak concurrency (must never exceed the limit: PASS/FAIL, exit status 1 on FAIL),
how long slots sat idle while steps waited for them, Notion requests per second (max over any 1 s
sliding window, and average) and per channel the time to its first task start.

`--profile tuned` applies TUNED_SETTINGS (documented Prefect settings a deployment can adopt);
`--set KEY=VALUE` adds any setting to the server and worker environment. Every Prefect API call the
video runs make is timed (a bench-only wrapper around Prefect's HTTP clients), so the report also
shows how many slot requests were answered 423 (limit full) or 503 (retried by the client).

What holds the ratio down (Prefect 3.8.8, read from prefect/concurrency/ and
prefect/server/api/concurrency_limits_v2.py, and measured with this script):
- SQLite: `POST /v2/concurrency_limits/increment[-with-lease]` reads the limit and then updates it
  in a DEFERRED transaction. When another writer commits in between, SQLite answers
  SQLITE_BUSY_SNAPSHOT at once (busy_timeout does not apply to that case), the server answers 503,
  and the client backs off 2, 4, 8, 16, 32 s (PREFECT_CLIENT_MAX_RETRIES, default 5). After the
  last retry the task fails with ConcurrencySlotAcquisitionError. No setting changes that; on
  PostgreSQL the same requests never got a 503.
- Tag limits answer a full limit with 423 and Retry-After = min(average slot occupancy x (denied
  slots + 1) / limit, PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS (default 10 s)), and
  the client sleeps exactly that long, so a freed slot stays free until some waiter wakes.
- Within one process, requests for the same set of limits are serialised through one
  ConcurrencySlotAcquisitionWithLeaseService: a video's 6 clips ask one after another, each
  sleeping its Retry-After before the next may ask.
- Every new Prefect client asks /csrf-token first (422 while the server's CSRF protection is off);
  each task run's lease renewal makes a new client, so that is one more round trip per task run
  (PREFECT_CLIENT_CSRF_SUPPORT_ENABLED=false removes it).
- Prefect's `serve()` starts each flow run as a new Python process (spawn + import of Prefect and
  the flow's modules: several CPU-seconds each), so 20 videos starting together saturate 2 cores;
  `vidgen serve` (and this bench) fork them from a warm server instead (`flows.serving`).
- The `notion-api` rate limit (limit 3, slot decay 3/s) lets a burst of 3 through and then
  decays, so up to 5 requests can start within one second; and a denied request rewrites the
  row's `updated` time without applying the decay, so contention slows the decay itself.
- Each video's ~12 Notion writes are sequential and each waits for a `notion` slot and a
  `notion-api` slot: seconds per write on every video's critical path.

    uv run python scripts/bench_orchestration.py [--database postgres|sqlite|external-postgres] [--mode serve|threads]
        [--videos 20] [--channels 3] [--scenes 6] [--scale 0.03] [--profile baseline|tuned]
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel

from blocks.config import concurrency_config
from tasks.notion import NOTION_TASK, PrefectRateLimit
from tasks.retry import paid_step_options
from vidgen.stack import EmbeddedPostgres, PrefectServer, free_port, start_prefect_server, stop_process
from vidgen.stack import wait_until as stack_wait

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEPLOYMENT = "bench-video/bench-video"

# Seed latencies in seconds per call (/work/shared/seeds/architecture.md): Gemini takes seconds per
# image, Kling 2-5 minutes per clip typically, ElevenLabs under a minute per clip. Each call draws
# uniformly from its range with a fixed seed, so a run's plan (and its ideal makespan) is repeatable.
SEED_LATENCY_S: dict[str, tuple[float, float]] = {
    "script": (15.0, 40.0),
    "image": (4.0, 12.0),
    "composite": (1.0, 3.0),
    "clip": (120.0, 300.0),
    "narration": (10.0, 45.0),
    "sound": (5.0, 30.0),
    "assembly": (20.0, 60.0),
    "notion": (0.2, 0.6),
}
STEP_TAG = {
    "script": "gemini",
    "image": "gemini",
    "composite": None,
    "clip": "kling",
    "narration": "elevenlabs",
    "sound": "elevenlabs",
    "assembly": None,
    "notion": "notion",
}
# The Notion read and writes of one video, named as `flows.produce_video` names its call sites
# (review gates left out: the bench measures throughput, not people).
NOTION_STEPS = (
    "read-entry", "processing", "started", "assets-generating", "composites-creating", "composites-ready",
    "videos-generating-1", "audio-generating-1", "sfx-generating", "sfx-ready", "assembling-1", "published",
)
# Documented Prefect settings that shorten the gap between "a slot is free" and "a waiting task
# has it" (set on the server and on every process that runs flows):
# - the Retry-After a tag limit answers a 423 with is min(avg slot occupancy x (denied + 1) / limit,
#   this cap); with the default cap of 10 s a freed slot sits idle until some waiter's timer fires.
# - every new Prefect client first asks /csrf-token (answered 422 while the server's CSRF protection
#   is off, its default) before its first POST; slot leases are renewed through a new client each
#   time, so this is one extra round trip per task run.
TUNED_SETTINGS = {
    "PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
    "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "false",
}


# --------------------------------------------------------------------------------------------
# The plan: what each video does and how long each fake call takes.


class Step(BaseModel):
    id: str
    kind: str
    seconds: float


class VideoPlan(BaseModel):
    channel: str
    video: int
    records: str
    notion: list[Step]
    script: Step
    images: list[Step]
    composites: list[Step]
    clips: list[Step]
    narrations: list[Step]
    sounds: list[Step]
    assembly: Step

    def steps(self) -> list[Step]:
        return [
            *self.notion, self.script, *self.images, *self.composites, *self.clips,
            *self.narrations, *self.sounds, self.assembly,
        ]

    def chain_seconds(self) -> float:
        """The video's critical path: stages run one after another, the scenes of a stage at once."""
        stages = [self.images, self.composites, self.clips, self.narrations, self.sounds]
        return (
            sum(s.seconds for s in self.notion)
            + self.script.seconds
            + sum(max(s.seconds for s in stage) for stage in stages)
            + self.assembly.seconds
        )


def make_plan(channel: str, video: int, scenes: int, scale: float, records: Path, seed: int) -> VideoPlan:
    rng = random.Random(f"{seed}:{channel}:{video}")
    prefix = f"{channel}/{video:03d}"

    def step(kind: str, name: str) -> Step:
        low, high = SEED_LATENCY_S[kind]
        return Step(id=f"{prefix}/{name}", kind=kind, seconds=round(rng.uniform(low, high) * scale, 4))

    def per_scene(kind: str) -> list[Step]:
        return [step(kind, f"{kind}-{i}") for i in range(scenes)]

    return VideoPlan(
        channel=channel,
        video=video,
        records=str(records),
        notion=[step("notion", name) for name in NOTION_STEPS],
        script=step("script", "script"),
        images=per_scene("image"),
        composites=per_scene("composite"),
        clips=per_scene("clip"),
        narrations=per_scene("narration"),
        sounds=per_scene("sound"),
        assembly=step("assembly", "assembly"),
    )


def channel_names(count: int) -> list[str]:
    return [f"channel-{i + 1}" for i in range(count)]


def make_plans(args: argparse.Namespace, records: Path) -> list[VideoPlan]:
    """Round-robin over channels, the order a fair poller starts them in."""
    return [
        make_plan(channel, video, args.scenes, args.scale, records, args.seed)
        for video in range(args.videos)
        for channel in channel_names(args.channels)
    ]


# --------------------------------------------------------------------------------------------
# The fake providers: tasks with the product's tags and options that sleep and record.

_write_lock = threading.Lock()
_pacer_lock = threading.Lock()


def record(path: str, /, **fields: object) -> None:
    """One JSON line per event; O_APPEND keeps lines whole across the flow-run processes."""
    line = (json.dumps(fields) + "\n").encode()
    with _write_lock:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def work(records: str, step: Step, channel: str, start: float | None = None) -> float:
    """The fake provider call; `start` is when the task's body began (it holds its tag slot from then)."""
    start = time.time() if start is None else start
    time.sleep(step.seconds)
    record(records, ev="run", id=step.id, kind=step.kind, tag=STEP_TAG[step.kind], channel=channel, start=start, end=time.time())
    return step.seconds


UUID_IN_PATH = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _api_call(records: str, request, started: float, status: int, retry_after: str | None) -> None:
    """One line per Prefect API call: route, status, latency, and for slot requests the limits asked."""
    path = UUID_IN_PATH.sub("{id}", request.url.path).removeprefix("/api")
    fields: dict[str, object] = {"path": path, "status": status, "took": round(time.time() - started, 4), "at": started}
    if path.startswith("/v2/concurrency_limits/increment"):
        try:
            names = json.loads(request.content)["names"]
        except (ValueError, KeyError):
            names = []
        fields["limit"] = ",".join(n.removeprefix("tag:") for n in names)
        if retry_after is not None:
            fields["retry_after"] = float(retry_after)
    record(records, ev="api", **fields)


def _safe_api_call(records: str, request, started: float, status: int, retry_after: str | None) -> None:
    try:
        _api_call(records, request, started, status, retry_after)
    except Exception as exc:  # measuring must never break the run it measures
        print(f"bench: could not record an API call: {exc!r}", file=sys.stderr)


_instrumented: set[str] = set()


def instrument_api_calls(records: str) -> None:
    """Once per process: time every request Prefect's HTTP clients send (a bench-only wrapper).

    Slot acquisition answers 423 with a Retry-After the client sleeps before asking again; these
    lines show how often that happens, how long the waits are, and how slow the server answers.
    """
    import httpx
    from prefect.client.base import PrefectHttpxAsyncClient, PrefectHttpxSyncClient

    with _pacer_lock:
        if records in _instrumented:
            return
        _instrumented.add(records)
        async_send, sync_send = PrefectHttpxAsyncClient.send, PrefectHttpxSyncClient.send

    async def timed_async_send(self, request, *args, **kwargs):
        started, status, retry_after = time.time(), 0, None
        try:
            response = await async_send(self, request, *args, **kwargs)
            status = response.status_code
            return response
        except httpx.HTTPStatusError as exc:
            status, retry_after = exc.response.status_code, exc.response.headers.get("Retry-After")
            raise
        finally:
            _safe_api_call(records, request, started, status, retry_after)

    def timed_sync_send(self, request, *args, **kwargs):
        started, status, retry_after = time.time(), 0, None
        try:
            response = sync_send(self, request, *args, **kwargs)
            status = response.status_code
            return response
        except httpx.HTTPStatusError as exc:
            status, retry_after = exc.response.status_code, exc.response.headers.get("Retry-After")
            raise
        finally:
            _safe_api_call(records, request, started, status, retry_after)

    # Prefect's clients retry 429/502/503 and dropped connections inside `send`, backing off 2, 4,
    # 8... s; a failed attempt is seen one level down, in httpx's own `send`.
    httpx_async_send, httpx_sync_send = httpx.AsyncClient.send, httpx.Client.send

    def failed_attempt(request, status: int, error: str) -> None:
        path = UUID_IN_PATH.sub("{id}", request.url.path).removeprefix("/api")
        record(records, ev="attempt-failed", path=path, status=status, error=error, at=time.time())

    async def attempt_async_send(self, request, *args, **kwargs):
        try:
            response = await httpx_async_send(self, request, *args, **kwargs)
        except Exception as exc:
            failed_attempt(request, 0, type(exc).__name__)
            raise
        if response.status_code in (429, 502, 503):
            failed_attempt(request, response.status_code, "")
        return response

    def attempt_sync_send(self, request, *args, **kwargs):
        try:
            response = httpx_sync_send(self, request, *args, **kwargs)
        except Exception as exc:
            failed_attempt(request, 0, type(exc).__name__)
            raise
        if response.status_code in (429, 502, 503):
            failed_attempt(request, response.status_code, "")
        return response

    PrefectHttpxAsyncClient.send = timed_async_send
    PrefectHttpxSyncClient.send = timed_sync_send
    httpx.AsyncClient.send = attempt_async_send
    httpx.Client.send = attempt_sync_send


_pacer: PrefectRateLimit | None = None


def notion_pacer() -> PrefectRateLimit:
    """The product's pacer in flows: a slot of the server's `notion-api` rate limit per request."""
    global _pacer
    with _pacer_lock:
        if _pacer is None:
            _pacer = PrefectRateLimit(concurrency_config().notion_rate_limit.name)
        return _pacer


PAID = paid_step_options()


@task(name="update-entry", task_run_name="notion: {step.id}", **NOTION_TASK)
def notion_call(records: str, step: Step, channel: str) -> float:
    asked = time.time()
    notion_pacer().acquire()
    record(records, ev="request", id=step.id, channel=channel, asked=asked, at=time.time())
    return work(records, step, channel, start=asked)


@task(name="write-script", tags=["gemini"], **PAID)
def write_script(records: str, step: Step, channel: str) -> float:
    return work(records, step, channel)


@task(name="generate-image", task_run_name="image {step.id}", tags=["gemini"], **PAID)
def generate_image(records: str, step: Step, channel: str) -> float:
    return work(records, step, channel)


@task(name="compose-frame", task_run_name="frame {step.id}", persist_result=True)
def compose_frame(records: str, step: Step, channel: str) -> float:
    return work(records, step, channel)


@task(name="animate-clip", task_run_name="clip {step.id}", tags=["kling"], timeout_seconds=900, **PAID)
def animate_clip(records: str, step: Step, channel: str) -> float:
    return work(records, step, channel)


@task(name="narrate-scene", task_run_name="narration {step.id}", tags=["elevenlabs"], **PAID)
def narrate_scene(records: str, step: Step, channel: str) -> float:
    return work(records, step, channel)


@task(name="design-sound", task_run_name="sound {step.id}", tags=["elevenlabs"], **PAID)
def design_sound(records: str, step: Step, channel: str) -> float:
    return work(records, step, channel)


@task(name="assemble-video", persist_result=True)
def assemble_video(records: str, step: Step, channel: str) -> float:
    return work(records, step, channel)


@flow(
    name="bench-video",
    flow_run_name="{plan.channel}-{plan.video}",
    persist_result=True,
    task_runner=ThreadPoolTaskRunner(max_workers=6),
)
def bench_video(plan: VideoPlan) -> float:
    """One video, stage by stage as produce-video makes it, with a Notion write at each step."""
    notion = iter(plan.notion)
    rec, ch = plan.records, plan.channel

    def wanted(steps: list[Step]) -> None:
        now = time.time()
        for s in steps:
            record(rec, ev="submit", id=s.id, at=now)

    def say() -> None:
        step = next(notion)
        wanted([step])
        notion_call(rec, step, ch)

    def stage(fn, steps: list[Step]) -> None:
        wanted(steps)
        for future in [fn.submit(rec, s, ch) for s in steps]:
            future.result()

    instrument_api_calls(rec)
    record(rec, ev="video-start", channel=ch, video=plan.video, at=time.time())
    for _ in range(4):  # read-entry, processing, started, assets-generating
        say()
    stage(write_script, [plan.script])
    stage(generate_image, plan.images)
    say()  # composites-creating
    stage(compose_frame, plan.composites)
    say()  # composites-ready
    say()  # videos-generating
    stage(animate_clip, plan.clips)
    say()  # audio-generating
    stage(narrate_scene, plan.narrations)
    say()  # sfx-generating
    stage(design_sound, plan.sounds)
    say()  # sfx-ready
    say()  # assembling
    stage(assemble_video, [plan.assembly])
    say()  # published
    record(rec, ev="video-end", channel=ch, video=plan.video, at=time.time())
    return plan.chain_seconds()


# --------------------------------------------------------------------------------------------
# Workers (subprocesses of the bench, with the server's settings in their environment).


def worker_serve(limit: int) -> None:
    """What `vidgen serve` does for produce-video: one process serving the deployment, its runs
    forked from a server that has imported the flow's module (`flows.serving`)."""
    import importlib

    from flows.serving import WARM_MODULES, serve_leaving_runs

    # This file runs as __main__ here; runs must import it under its module name, warm.
    module = "scripts.bench_orchestration"
    video = importlib.import_module(module).bench_video
    serve_leaving_runs([(video, {"name": "bench-video"})], limit=limit, warm_modules=[*WARM_MODULES, module])


def worker_threads(plans_file: Path, limit: int) -> None:
    """Every video a top-level flow run in a thread of this one process."""
    from concurrent.futures import ThreadPoolExecutor

    plans = [VideoPlan.model_validate(p) for p in json.loads(plans_file.read_text())]
    instrument_api_calls(plans[0].records)
    with ThreadPoolExecutor(max_workers=limit) as pool:
        for future in [pool.submit(bench_video, plan) for plan in plans]:
            try:
                future.result()
            except Exception as exc:  # one failed video must not hide the others' figures
                print(f"video failed: {type(exc).__name__}: {exc}", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# The stack: a Prefect server on a temporary home, and the worker.


def wait_until(check, timeout_s: float, what: str, proc: subprocess.Popen, log: Path) -> None:
    stack_wait(check, what, timeout_s=timeout_s, proc=proc, log=log)


@dataclass
class Stack:
    home: Path
    env: dict[str, str]
    server: PrefectServer | None = None
    worker: subprocess.Popen | None = None
    logs: list[Path] = field(default_factory=list)


@contextmanager
def prefect_stack(database: str, home: Path, extra_env: dict[str, str]) -> Iterator[Stack]:
    """Prefect's server as the product starts it (`vidgen.stack`): on an embedded PostgreSQL of its
    own (the default), on SQLite, or on the PostgreSQL at 127.0.0.1:5432 (`external-postgres`)."""
    pg = None
    with ExitStack() as cleanup:
        if database == "postgres":
            pg = EmbeddedPostgres(home / "postgres").start()
            cleanup.callback(pg.stop)
            pg.ensure_database("prefect")
            db_url = pg.url("prefect", driver="asyncpg")
        elif database == "external-postgres":
            db_url = cleanup.enter_context(postgres_database())
        else:
            db_url = f"sqlite+aiosqlite:///{home / 'prefect.db'}"
        server = start_prefect_server(home, free_port(), db_url, ui=False,
                                      extra_env={"PREFECT_LOGGING_LEVEL": "WARNING", **extra_env})
        stack = Stack(home=home, env={**server.env, "PREFECT_LOGGING_LEVEL": "WARNING", "VIDGEN_RETRY_DELAYS": "0,0", **extra_env},
                      server=server, logs=[server.log])
        try:
            yield stack
        finally:
            if stack.worker is not None:
                stop_process(stack.worker)
            server.stop()


@contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg

    name = f"vidgen_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_worker(stack: Stack, args: argparse.Namespace, plans_file: Path) -> None:
    log = stack.home / f"worker-{args.mode}.log"
    stack.logs.append(log)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", args.mode, "--limit", str(args.limit)]
    if args.mode == "threads":
        command += ["--plans-file", str(plans_file)]
    # The runner's default poll in `vidgen serve`; a run may say otherwise with --set.
    env = {**os.environ, "PREFECT_RUNNER_POLL_FREQUENCY": "2", **stack.env}
    with open(log, "wb") as out:
        stack.worker = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=REPO
        )


def register_limits() -> list[str]:
    """The tag limits and the Notion rate limit, with the calls and numbers `blocks.config.register` uses."""
    from prefect.client.orchestration import get_client

    config = concurrency_config()
    done = []
    with get_client(sync_client=True) as client:
        for tag, limit in config.tags.items():
            client.create_concurrency_limit(tag=tag, concurrency_limit=limit)
            done.append(f"{tag}={limit}")
        rate = config.notion_rate_limit
        client.upsert_global_concurrency_limit_by_name(
            rate.name, int(max(1, rate.requests_per_second)), slot_decay_per_second=rate.requests_per_second
        )
        done.append(f"{rate.name}={rate.requests_per_second}/s")
    return done


def wait_for_deployment(stack: Stack) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    def served() -> bool:
        try:
            with get_client(sync_client=True) as client:
                client.read_deployment_by_name(DEPLOYMENT)
            return True
        except ObjectNotFound:
            return False

    wait_until(served, 120, "the serve() worker to register bench-video", stack.worker, stack.logs[-1])


def submit_runs(plans: list[VideoPlan]) -> None:
    """One deployment run per video, scheduled a millisecond apart so the runner takes them in order."""
    from datetime import datetime, timedelta, timezone

    from prefect.deployments import run_deployment

    now = datetime.now(timezone.utc)
    for i, plan in enumerate(plans):
        run_deployment(
            DEPLOYMENT,
            parameters={"plan": plan.model_dump()},
            timeout=0,
            as_subflow=False,
            scheduled_time=now + timedelta(milliseconds=i),
            tags=[f"channel:{plan.channel}"],
        )


def wait_for_runs(expected: int, timeout_s: float, stack: Stack) -> tuple[float, dict[str, int]]:
    """Until every bench-video run is final or `timeout_s` passed.

    Returns the latest end time (now, on a timeout) and the count per state; runs not final by the
    deadline count as "Unfinished", so a slow run still prints what it measured.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while True:
            runs = []
            while page := client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["bench-video"])), limit=200, offset=len(runs)
            ):
                runs += page
            final = [r for r in runs if r.state and r.state.is_final()]
            timed_out = time.monotonic() > deadline
            if len(final) >= expected or timed_out:
                states: dict[str, int] = defaultdict(int)
                for r in final:
                    states[r.state.name] += 1
                if timed_out and len(final) < expected:
                    states["Unfinished"] = expected - len(final)
                    return time.time(), dict(states)
                return max(r.end_time.timestamp() for r in final if r.end_time), dict(states)
            if stack.worker is not None and stack.worker.poll() is not None and len(runs) < expected:
                raise RuntimeError(f"the worker exited with {stack.worker.returncode}; see {stack.logs[-1]}")
            time.sleep(1.0)


# --------------------------------------------------------------------------------------------
# Figures.


@dataclass
class Interval:
    start: float
    end: float


def peak_concurrency(intervals: list[Interval]) -> int:
    """Most intervals open at one instant (an end at t comes before a start at t)."""
    events = sorted([(i.start, 1) for i in intervals] + [(i.end, -1) for i in intervals], key=lambda e: (e[0], e[1]))
    peak = running = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def idle_slot_seconds(limit: int, waits: list[Interval], runs: list[Interval]) -> float:
    """Seconds x slots a limit had free while a step of its tag was submitted and not yet running.

    `waits` span submit -> body start, `runs` body start -> end: min(limit, waiting + running) -
    running, integrated over time. It counts the slot-acquisition gap plus the task engine's own
    start-up; it is zero when every free slot is taken the moment a step wants it.
    """
    events = sorted([(w.start, 1, 0) for w in waits] + [(w.end, -1, 0) for w in waits]
                    + [(r.start, 0, 1) for r in runs] + [(r.end, 0, -1) for r in runs])
    total = 0.0
    waiting = running = 0
    last = events[0][0] if events else 0.0
    for t, dw, dr in events:
        if waiting > 0:
            total += (t - last) * max(0, min(limit, waiting + running) - running)
        waiting += dw
        running += dr
        last = t
    return total


def api_rows(api: list[dict], seconds: float, top: int = 8) -> list[tuple]:
    """All calls, slot requests per limit, then the busiest routes."""
    def row(name: str, calls: list[dict]) -> tuple:
        took = sorted(c["took"] * 1000 for c in calls)
        p95 = took[min(len(took) - 1, int(0.95 * len(took)))]
        return (name, len(calls), f"{len(calls) / seconds:.1f}", f"{sum(took) / len(took):.0f}", f"{p95:.0f}", f"{took[-1]:.0f}")

    rows = [row("all", api)]
    by_limit: dict[str, list[dict]] = defaultdict(list)
    by_path: dict[str, list[dict]] = defaultdict(list)
    for call in api:
        if "limit" in call:
            by_limit[call["limit"]].append(call)
        by_path[call["path"]].append(call)
    for limit, calls in sorted(by_limit.items()):
        denied = sum(1 for c in calls if c["status"] == 423)
        rows.append(row(f"slot requests {limit} ({denied} answered 423)", calls))
    for path, calls in sorted(by_path.items(), key=lambda kv: -len(kv[1]))[:top]:
        rows.append(row(path, calls))
    return rows


def max_per_window(times: list[float], window: float = 1.0) -> int:
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)), default=0)


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def add(self, text: str = "") -> None:
        self.lines.append(text)

    def table(self, header: tuple[str, ...], rows: list[tuple]) -> None:
        cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        fmt = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"  # noqa: E731
        self.add(fmt(cells[0]))
        self.add("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in cells[1:]:
            self.add(fmt(row))


def analyse(
    args: argparse.Namespace, plans: list[VideoPlan], records: Path, t0: float, t_end: float,
    states: dict[str, int], settings: dict[str, str], load: tuple[float, float],
) -> Report:
    config = concurrency_config()
    events = [json.loads(line) for line in records.read_text().splitlines() if line.strip()]
    runs = [e for e in events if e["ev"] == "run"]
    submits = {e["id"]: e["at"] for e in events if e["ev"] == "submit"}
    requests = [e for e in events if e["ev"] == "request"]
    api = [e for e in events if e["ev"] == "api"]
    retries: dict[str, list[float]] = defaultdict(list)
    for e in api:
        if e.get("status") == 423 and "retry_after" in e:
            retries[e["limit"]].append(e["retry_after"])
    planned = {s.id: s for p in plans for s in p.steps()}
    report = Report()

    # The ideal: no limit can do its work faster than work / limit, no video faster than its chain.
    work_by_tag: dict[str, float] = defaultdict(float)
    for step in planned.values():
        if STEP_TAG[step.kind]:
            work_by_tag[STEP_TAG[step.kind]] += step.seconds
    bounds: list[tuple[str, float]] = [(f"tag {tag}: {work_by_tag[tag]:.0f} s work / {limit}", work_by_tag[tag] / limit)
                                      for tag, limit in config.tags.items() if work_by_tag.get(tag)]
    rate = config.notion_rate_limit
    notion_count = sum(1 for s in planned.values() if s.kind == "notion")
    bounds.append((f"{rate.name}: {notion_count} requests / {rate.requests_per_second:g} per s", notion_count / rate.requests_per_second))
    longest = max(plans, key=VideoPlan.chain_seconds)
    bounds.append((f"longest video chain ({longest.channel} #{longest.video})", longest.chain_seconds()))
    ideal_name, ideal = max(bounds, key=lambda b: b[1])
    measured = t_end - t0
    ratio = ideal / measured if measured > 0 else 0.0

    report.add(f"bench_orchestration: {args.database}, mode {args.mode}, profile {args.profile}, "
               f"{args.videos} videos x {args.channels} channels x {args.scenes} scenes, scale {args.scale:g}, "
               f"serve limit {args.limit}")
    report.add("settings: " + (", ".join(f"{k}={v}" for k, v in settings.items()) or "Prefect defaults"))
    report.add(f"machine: {os.cpu_count()} cores, 1-min load average {load[0]:.1f} before the runs, {load[1]:.1f} after")
    if "Unfinished" in states:
        report.failed.append(f"timed out after {args.timeout:.0f} s: measured makespan is a lower bound")
    if set(states) != {"Completed"}:
        report.failed.append(f"not every video run completed: {states}")
    report.add(f"flow runs: {sum(states.values())} final ({', '.join(f'{n} {k}' for k, n in sorted(states.items()))}); "
               f"steps recorded: {len(runs)}/{len(planned)}")
    report.add()
    report.table(("lower bound on makespan", "seconds"), [(name, f"{value:.1f}") for name, value in bounds])
    report.add()
    ratio_ok = ratio >= 0.90 and "Unfinished" not in states
    report.table(
        ("ideal makespan", "measured makespan", "ideal/measured", "target >= 0.90"),
        [(f"{ideal:.1f} s ({ideal_name.split(':')[0]})", f"{measured:.1f} s", f"{ratio:.2f}", "met" if ratio_ok else "MISSED")],
    )
    starts = sorted(e["at"] for e in events if e["ev"] == "video-start")
    if starts:
        after_first = t_end - starts[0]
        report.add(
            f"flow-run start-up: first video's flow body ran {starts[0] - t0:.1f} s after the runs were submitted, "
            f"the last {starts[-1] - t0:.1f} s after; from the first start on, ideal/measured is "
            f"{ideal / after_first:.2f} ({after_first:.1f} s)"
        )
    began = {(e["channel"], e["video"]): e["at"] for e in events if e["ev"] == "video-start"}
    took = [e["at"] - began[(e["channel"], e["video"])] for e in events
            if e["ev"] == "video-end" and (e["channel"], e["video"]) in began]
    if took:
        chains = [p.chain_seconds() for p in plans]
        report.add(f"one video, flow body start to end: mean {sum(took) / len(took):.1f} s, max {max(took):.1f} s "
                   f"(its chain of provider calls alone: mean {sum(chains) / len(chains):.1f} s)")
    report.add()

    rows = []
    all_within = True
    load: dict[str, tuple[float, float]] = {}  # tag -> (work per slot, utilisation)
    for tag, limit in config.tags.items():
        tag_runs = [Interval(e["start"], e["end"]) for e in runs if e["tag"] == tag]
        if not tag_runs:
            continue
        waits = [Interval(submits[e["id"]], e["start"]) for e in runs if e["tag"] == tag and e["id"] in submits]
        peak = peak_concurrency(tag_runs)
        within = peak <= limit
        all_within &= within
        busy = sum(i.end - i.start for i in tag_runs)
        span = max(i.end for i in tag_runs) - min(i.start for i in tag_runs)
        mean_wait = sum(w.end - w.start for w in waits) / len(waits) if waits else 0.0
        idle = idle_slot_seconds(limit, waits, tag_runs)
        denied = retries.get(tag, [])
        if span > 0:
            load[tag] = (busy / limit, busy / (limit * span))
        rows.append((
            tag, limit, peak, "PASS" if within else "FAIL", len(tag_runs), f"{busy:.0f}",
            f"{busy / (limit * span):.0%}" if span > 0 else "-", f"{mean_wait:.2f}", f"{idle:.0f}",
            len(denied), f"{sum(denied) / len(denied):.2f}" if denied else "-",
        ))
    report.table(
        ("tag", "limit", "peak", "never exceeded", "calls", "busy s", "utilisation", "mean wait s",
         "idle slot-s while waiting", "423s", "mean Retry-After s"),
        rows,
    )
    report.add("utilisation = busy seconds / (limit x the tag's active span); mean wait = submit -> provider call starts")
    if load:
        bottleneck = max(load, key=lambda t: load[t][0])
        used = load[bottleneck][1]
        report.add(f"bottleneck tag {bottleneck}: slot utilisation {used:.0%} while its work was queued "
                   f"(target >= 90%: {'met' if used >= 0.9 else 'below'})")
    waits_by_kind: dict[str, list[float]] = defaultdict(list)
    for e in runs:
        if e["id"] in submits:
            waits_by_kind[e["kind"]].append(e["start"] - submits[e["id"]])
    report.add("wait per step (submit -> call starts; untagged steps show the task engine's own cost): " + ", ".join(
        f"{kind} {sum(w) / len(w):.2f}/{max(w):.1f} s" for kind, w in waits_by_kind.items()
    ) + " (mean/max)")
    report.add(f"never exceeded: {'PASS' if all_within else 'FAIL'} (peak concurrent calls per tag <= its limit)")
    if not all_within:
        report.failed.append("a tag limit was exceeded")
    report.add()

    times = sorted(e["at"] for e in requests)
    if times:
        span = times[-1] - times[0]
        peak_window = max_per_window(times)
        average = len(times) / span if span > 0 else float(len(times))
        rate_waits = [e["at"] - e["asked"] for e in requests]
        denied = retries.get(rate.name, [])
        videos = len({(e["channel"], e["video"]) for e in events if e["ev"] == "video-start"}) or 1
        per_video = len(times) / videos
        report.table(
            ("Notion requests", "per video (goal <= 20)", "average req/s (<= 3)", "max in any 1 s window",
             "mean rate-limit wait s", "423s", "mean Retry-After s"),
            [(len(times), f"{per_video:.1f} {'met' if per_video <= 20 else 'MISSED'}",
              f"{average:.2f} {'PASS' if average <= rate.requests_per_second else 'FAIL'}", peak_window,
              f"{sum(rate_waits) / len(rate_waits):.2f}", len(denied),
              f"{sum(denied) / len(denied):.2f}" if denied else "-")],
        )
        report.add("Notion's documented limit is an average of 3 requests/s with bursts allowed; the worst "
                   "1 s window is printed, not judged. Previews at the review gates are not simulated here "
                   "(scripts/bench_previews.py counts them).")
        if average > rate.requests_per_second:
            report.failed.append("Notion requests averaged more than the rate limit")
        report.add()

    if api:
        report.table(("Prefect API calls (from the video runs)", "calls", "per s", "mean ms", "p95 ms", "max ms"),
                     api_rows(api, measured))
        failed = [e for e in events if e["ev"] == "attempt-failed"]
        by_cause: dict[str, int] = defaultdict(int)
        for e in failed:
            by_cause[f"{e['status'] or e['error']} on {e['path']}"] += 1
        report.add(f"attempts the client retried (it backs off 2, 4, 8 s): {len(failed)}" + (
            " (" + ", ".join(f"{n} x {cause}" for cause, n in sorted(by_cause.items(), key=lambda kv: -kv[1])[:6]) + ")"
            if failed else ""))
        report.add()

    video_starts = defaultdict(list)
    video_ends = defaultdict(list)
    for e in events:
        if e["ev"] == "video-start":
            video_starts[e["channel"]].append(e["at"])
        elif e["ev"] == "video-end":
            video_ends[e["channel"]].append(e["at"])
    rows = []
    for channel in channel_names(args.channels):
        starts = [e["start"] for e in runs if e["channel"] == channel]
        ends = sorted(video_ends[channel])
        rows.append((
            channel,
            f"{min(starts) - t0:.1f}" if starts else "-",
            f"{min(video_starts[channel]) - t0:.1f}" if video_starts[channel] else "-",
            f"{ends[0] - t0:.1f}" if ends else "-",
            f"{ends[-1] - t0:.1f}" if ends else "-",
            f"{len(ends)}/{args.videos}",
        ))
    report.table(("channel", "first task start s", "first video start s", "first video done s", "last video done s", "videos done"), rows)
    report.add()
    for failure in report.failed:
        report.add(f"FAILED: {failure}")
    report.add(f"RESULT: ratio {ratio:.2f} ({'met' if ratio_ok else 'below'} 0.90); never exceeded: {'PASS' if all_within else 'FAIL'}")
    return report


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("postgres", "sqlite", "external-postgres"), default="postgres")
    parser.add_argument("--mode", choices=("serve", "threads"), default="serve", help="see the docstring (default serve)")
    parser.add_argument("--videos", type=int, default=20, help="videos per channel (default 20)")
    parser.add_argument("--channels", type=int, default=3, help="channels (default 3)")
    parser.add_argument("--scenes", type=int, default=6, help="scenes per video, as the sample channels (default 6)")
    parser.add_argument("--scale", type=float, default=0.03,
                        help="seed latency multiplier (default 0.03: a 2-5 min Kling clip takes 3.6-9 s)")
    parser.add_argument("--limit", type=int, default=20, help="videos running at once, as `vidgen serve --limit` (default 20)")
    parser.add_argument("--profile", choices=("baseline", "tuned"), default="baseline",
                        help="baseline: Prefect's defaults; tuned: TUNED_SETTINGS")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="an environment setting for the server and the worker (repeatable)")
    parser.add_argument("--seed", type=int, default=7, help="latency draw seed")
    parser.add_argument("--timeout", type=float, default=1200, help="give up after this many seconds of running")
    parser.add_argument("--keep", action="store_true", help="keep the temporary Prefect home (logs, records)")
    parser.add_argument("--worker", choices=("serve", "threads"), help=argparse.SUPPRESS)
    parser.add_argument("--plans-file", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker == "serve":
        worker_serve(args.limit)
        return 0
    if args.worker == "threads":
        worker_threads(args.plans_file, args.limit)
        return 0

    # A SIGTERM (timeout, CI) must still stop the server and worker and drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = dict(TUNED_SETTINGS) if args.profile == "tuned" else {}
    for item in args.settings:
        key, _, value = item.partition("=")
        settings[key.strip()] = value.strip()
    home = Path(tempfile.mkdtemp(prefix="bench-orchestration-"))
    records = home / "records.jsonl"
    records.touch()
    plans = make_plans(args, records)
    plans_file = home / "plans.json"
    plans_file.write_text(json.dumps([p.model_dump() for p in plans]))
    started = time.monotonic()
    try:
        with prefect_stack(args.database, home, settings) as stack:
            from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

            with temporary_settings(updates={PREFECT_API_URL: stack.env["PREFECT_API_URL"], PREFECT_HOME: home}):
                limits = register_limits()
                print(f"Prefect server up ({args.database}) in {time.monotonic() - started:.1f} s; limits: {', '.join(limits)}",
                      flush=True)
                load_before = os.getloadavg()[0]
                if args.mode == "serve":
                    start_worker(stack, args, plans_file)
                    wait_for_deployment(stack)
                    t0 = time.time()
                    submit_runs(plans)
                else:
                    t0 = time.time()
                    start_worker(stack, args, plans_file)
                print(f"{len(plans)} video runs started; waiting...", flush=True)
                t_end, states = wait_for_runs(len(plans), args.timeout, stack)
            load = (load_before, os.getloadavg()[0])
            report = analyse(args, plans, records, t0, t_end, states, settings, load)
    finally:
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    print()
    print("\n".join(report.lines))
    print(f"\n(wall time including server start: {time.monotonic() - started:.0f} s)")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
