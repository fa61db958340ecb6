"""Chaos suite: faults injected on real servers while several videos are made. Does every video finish?

Each fault runs on a fresh stack of its own, in a child process of this script (a fresh
environment and Prefect settings): `bench_webhooks.start_stack` (a temporary VIDGEN_HOME with free
ports, PostgreSQL (SQLite with `--sqlite`), Prefect's server, the local Notion server and its Video
Pipeline database), `vidgen setup --alerts-url` pointed at a small alert receiver in the child, and
a `vidgen serve` worker polling every `--poll-interval` s. The videos: `--videos` channels on the
paid providers' real adapters, served by the provider stand-ins (tests/standins) in the child, one
channel per video (its own watermark, so each video has its own start frame), review gates off,
`--scenes` scenes; one entry per channel created Queued at once. Kling holds every clip
`--clip-hold-s` s in "generating", so the videos can be caught while their clips are made. Then,
once every card is at `--stage` (default Videos Generating, and every clip's task created):

* kill9: `kill -9` of the worker's process group (the server, the runs' processes), and a new
  `vidgen serve` at once. Expected: zombie automation (no heartbeat for 90 s) -> Crashed ->
  crash-restart automation -> AwaitingRetry -> the new worker runs the same run again.
  With `--kill-stages "Assets Generating,Audio Generating,..."`, kill9 runs once per stage listed
  (the kill comes once every card is at that status or past it; the cards' statuses are printed).
* kill9-card-write: the same kill -9 while every video's next card write (a Notion page PATCH) is on
  the wire: a proxy on the Notion server's port forwards everything but holds those writes
  unanswered, so the dying process holds its pages' outbox claims. Expected: the new worker takes
  the claims of the dead process over at once (not after their 5-minute lease) and every card ends
  where its run is.
* sigterm: SIGTERM to `vidgen serve` (what `docker stop` or systemd send); once it has exited, a new
  worker. It reschedules its in-flight runs itself.
* worker-down: the same SIGTERM, then the worker stays down `--worker-down-s` s (10 minutes) before a
  new one starts. Expected: one poll, not every poll missed meanwhile (counted over the first minute).
* prefect-restart: Prefect's server stopped for `--prefect-down-s` s and started again (same port,
  same database), twice: at the stage, and `--prefect-gap-s` s after it answers again.
* false-crash: every busy run marked Crashed while its process lives, as the zombie automation does
  when a run's heartbeats could not reach the server (an outage longer than its 90-s window).
  Expected: the live process goes on and ends its run Completed (the crash-restart automation's
  AwaitingRetry starts no second process while it lives: the worker refuses a duplicate), and the
  poll leaves its card alone while its heartbeats go on. With `--keep-crashed` the crash-restart
  automation is paused first: the runs stay Crashed while they go on, which only the poll's
  heartbeat check keeps from being written Error: Manual Review.
* notion-down: the local Notion server stopped for `--outage-s` s, then started again on the same
  port and store. Card writes wait in the outbox meanwhile; the poll delivers them.
* notion-429: for `--throttle-s` s (2 minutes) every Notion request is answered 429 `rate_limited`
  with Retry-After `--throttle-retry-after-s` s, then the Notion server answers again. Card writes
  wait in the outbox as for an outage.
* requeue-busy: every card set back to Queued by hand while its run is busy. The poll must start no
  second run and put the card back at the run's status ("already in production").
* bad-script: Gemini's first script for each video is spoiled, in turn numbered from 1, with no scenes
  and with 100 scenes (then it answers well). Expected: renumbered, or asked for once more; the
  video goes on.
* provider-429: Kling's createTask answers each clip 429 with Retry-After `--retry-after` s, then 503
  three times, then takes it (no stage wait: armed before the entries are queued).
* quota: the channels' YouTube quota is spent for the day: videos.insert answers 403 quotaExceeded
  until the day turns, `--quota-reset-s` s after the stack starts (the workers' quota day is moved
  there with VIDGEN_YOUTUBE_QUOTA_RESET, the stand-in's refusals end then). Expected: each upload
  deferred to the reset (card Error: Retriable, "upload deferred until ..."), a second run scheduled
  then, which publishes; nothing made again. Recovered means exactly those two runs per video.

A kill at Script (the script being written; the card shows Assets Generating), Assets Generating,
Audio Generating, SFX Generating or Uploading pins itself inside the step, which the stand-ins would
otherwise answer in milliseconds: each script (a Gemini interaction), image or sound effect (KIE
tasks) is made and billed but kept in progress, each speech made and billed (it is in ElevenLabs'
history) but its answer held, or each upload request held with 256 KiB of it kept, for `--hold-s` s
or until the kill, which comes once every video has one in flight (the new worker's are not held).

The paid steps retry after `--retry-delays` (VIDGEN_RETRY_DELAYS; the product's 1 min, 5 min, 15 min,
1 h would make provider-429 half an hour). Printed per fault: what was injected when, each video's
card, runs and their states, then one table:

    fault | videos | lost | regenerated paid assets | recovered without a person | time to recover | alerts sent

* lost: videos whose card is not at Upload Complete when the fault's run ends (`--timeout`).
* regenerated paid assets: assets the stand-ins were paid for more than once (requests answered
  2xx, grouped by the asset each names: its prompt, start frame, voice and text, video title; a
  sound effect, thumbnail or captions track names none and counts against the narrations or
  uploads it follows). The provider's own count is the honest one: it also sees a call whose
  result died with its worker. The cost ledger cannot (its idempotency key folds a re-made asset
  into one line); the workspaces' audit trail (calls.jsonl: calls whose result was recorded) is
  printed beside it.
* recovered without a person: videos at Upload Complete with one produce-video run each, reached
  by the product alone (the suite only injects the fault and, as a supervisor would, starts the
  stopped worker or server again); for requeue-busy also the card back from Queued.
* time to recover: from the fault lifted (a new worker ready; the server answering again; the
  re-queue; the provider's first success for the last clip) to the last card at Upload Complete.
* alerts sent: notifications the receiver got, up to `--alerts-grace-s` s after the last video.

Prints the load average at the start. Every process it started is stopped, also on Ctrl+C or a
failure. Exit status 0: no video lost, nothing paid twice, every video recovered without a person;
1: not so; 2: the suite could not run (a stack did not start, Ctrl+C).

    uv run python scripts/chaos.py [--faults kill9,sigterm,worker-down,prefect-restart,notion-down,notion-429,requeue-busy,provider-429,bad-script,quota]
        [--videos 3] [--scenes 1] [--stage "Videos Generating"] [--outage-s 120] [--worker-down-s 600] [--retry-after 120]
        [--timeout 900] [--sqlite] [--logs DIR]
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "scripts"), str(REPO / "tests" / "standins")]

from bench_webhooks import Bench, Deadline, read_runs, serve_worker, shutdown, start_stack  # noqa: E402
from standin_servers import BAD_SCRIPTS, StandinServer  # noqa: E402
from vidgen.config import Paths  # noqa: E402
from vidgen.loopback import LoopbackServer  # noqa: E402
from vidgen.models import VideoEntry  # noqa: E402
from vidgen.notion.gateway import NotionGateway  # noqa: E402
from vidgen.notion.ratelimit import RetryPolicy  # noqa: E402
from vidgen.statuses import PIPELINE, NotionStatus as S  # noqa: E402

FAULT_NAMES = ("kill9", "kill9-card-write", "sigterm", "worker-down", "prefect-restart", "false-crash", "notion-down",
               "notion-429", "requeue-busy", "provider-429", "bad-script", "quota")
UPLOAD_KEEP_BYTES = 256 * 1024  # what the stand-in keeps of each upload request when uploads are held
REAL_PROVIDERS = dict(script="gemini", images="kie", clips="kling", narration="elevenlabs", sound="kie",
                      publisher="youtube")
# Paid stand-in services whose requests do not say which video they are for, and the service whose
# distinct assets they follow one for one (a sound effect per narration, a thumbnail and captions per upload).
FOLLOWS = {"elevenlabs-sfx": "elevenlabs-tts", "kie-sound": "elevenlabs-tts", "youtube-thumbnail": "youtube-upload",
           "youtube-captions": "youtube-upload"}
COLUMNS = ("fault", "videos", "lost", "regenerated paid assets", "recovered without a person", "time to recover",
           "alerts sent")


# --- what one fault's run reports -----------------------------------------------------------------


@dataclass
class Outcome:
    """One row of the table, and what explains it."""

    fault: str
    videos: int
    lost: int | None = None
    regenerated: int | None = None
    audit_regenerated: int | None = None
    recovered: int | None = None
    recover_s: float | None = None
    alerts: int | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def ok(self) -> bool:
        return self.error is None and self.lost == 0 and self.regenerated == 0 and self.recovered == self.videos

    def cells(self) -> list[str]:
        if self.error is not None:
            return [self.fault, str(self.videos), "-", "-", "-", "-", f"could not run: {self.error}"[:60]]
        regenerated = f"{self.regenerated} (audit trail {self.audit_regenerated})"
        recover = "-" if self.recover_s is None else f"{self.recover_s:.0f} s"
        return [self.fault, str(self.videos), str(self.lost), regenerated, f"{self.recovered}/{self.videos}", recover,
                str(self.alerts)]


def print_table(outcomes: list[Outcome]) -> None:
    rows = [list(COLUMNS), *(o.cells() for o in outcomes)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    for n, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")


# --- the alert receiver, the channels, the providers ------------------------------------------------


async def request_body(receive: Any) -> bytes:
    """The whole body of an ASGI request (the chaos suite's small servers read it before answering)."""
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


class AlertReceiver:
    """The alerts' webhook (`vidgen setup --alerts-url`): keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.server = LoopbackServer(self, name="chaos-alerts", lifespan="off")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/alerts"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await request_body(receive)
        if scope["method"] == "POST":
            try:
                self.received.append(json.loads(body or b"{}"))
            except ValueError:
                self.received.append({"subject": body[:200].decode(errors="replace")})
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def chaos_channels(directory: Path, channels: int, scenes: int, providers: str = "paid") -> list[str]:
    """The nature sample as `channels` channels (one per video unless `--channels` says fewer): the
    paid providers (or with `--providers local` the local ones), gates off, `scenes` short scenes,
    its own watermark, style and voice (so each video's start frame, and so the stand-in's faults,
    are its own, and its paid requests say which video they are for)."""
    base = yaml.safe_load((REPO / "channels" / "wild_frontiers.yaml").read_text())
    directory.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(1, channels + 1):
        data = {**base, "id": f"chaos_{i}", "name": f"Chaos {i}", "notion_value": f"Chaos {i}",
                "providers": dict(REAL_PROVIDERS) if providers == "paid" else base["providers"], "voice": {**base["voice"], "elevenlabs_voice_id": f"chaos-voice-{i}"},
                "style": {**base["style"], "watermark": f"CHAOS {i}", "preamble": f"{base['style']['preamble']}, take {i}"},
                "script": {**base["script"], "scenes": scenes, "min_scenes": 1, "words_per_scene": 10},
                "review": {gate: {**config, "enabled": False} for gate, config in base["review"].items()}}
        (directory / f"chaos_{i}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        ids.append(data["id"])
    return ids


def provider_env(standins: StandinServer, token_dir: Path, channel_ids: list[str]) -> dict[str, str]:
    """Every paid provider pointed at the stand-ins, and each channel's YouTube token stored as
    `vidgen channels auth` leaves it (far from expiry: nothing refreshes it)."""
    from google.oauth2.credentials import Credentials

    from vidgen.providers.youtube_auth import SCOPES, TokenStore

    keys, url = standins.keys, standins.base_url
    token_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    store = TokenStore(token_dir, token_key)
    for channel_id in channel_ids:
        store.save(channel_id, Credentials(
            token=keys.youtube_token, refresh_token="chaos-refresh-token", token_uri=f"{url}/token",
            client_id="chaos.apps.googleusercontent.com", client_secret="chaos", scopes=list(SCOPES),
            expiry=datetime(2099, 1, 1)))  # fmt: skip
    return {
        "GEMINI_API_KEY": keys.gemini, "GEMINI_BASE_URL": url, "KIE_API_KEY": keys.kie, "KIE_BASE_URL": url,
        "KIE_UPLOAD_BASE_URL": url, "VIDGEN_IMAGE_HOST": "kie", "ELEVENLABS_API_KEY": keys.elevenlabs,
        "ELEVENLABS_BASE_URL": url, "YOUTUBE_BASE_URL": url, "VIDGEN_TOKEN_KEY": token_key,
        "VIDGEN_TOKEN_DIR": str(token_dir),
    }  # fmt: skip


# --- watching the board -----------------------------------------------------------------------------


class Board:
    """The cards as last read (one query every `every_s` s, in a thread), and when each page was first
    seen at each status. Paused while the suite holds Notion down."""

    def __init__(self, bench: Bench, every_s: float = 2.0):
        self.gateway = NotionGateway(bench.notion_token, base_url=bench.notion_url, data_source_id=bench.data_source_id,
                                     retry=RetryPolicy(attempts=2, max_total_s=5))
        self.every_s = every_s
        self.cards: dict[str, VideoEntry] = {}
        self.first_seen: dict[str, dict[str, float]] = defaultdict(dict)
        self.backwards: dict[str, list[str]] = defaultdict(list)  # page id -> "from > to" moves back along the pipeline
        self.changed = time.time()
        self.paused = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="chaos-board", daemon=True)

    def start(self) -> Board:
        self.read()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.gateway.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            if not self.paused.is_set():
                self.read()

    def read(self) -> bool:
        try:
            entries = self.gateway.list_entries()
        except Exception:  # Notion not answering (or rate limiting): the next read will tell
            return False
        now = time.time()
        with self._lock:
            for entry in entries:
                old = self.cards.get(entry.page_id)
                if old is None or (old.status, old.error) != (entry.status, entry.error):
                    self.changed = now
                if old is not None and step(entry.status) < step(old.status):  # to an error, or back to an earlier step
                    self.backwards[entry.page_id].append(f"{old.status} > {entry.status}")
                self.cards[entry.page_id] = entry
                self.first_seen[entry.page_id].setdefault(entry.status or "", now)
        return True

    def status(self, page_id: str) -> str | None:
        card = self.cards.get(page_id)
        return card.status if card else None


def asset_named(request: Any) -> str:
    """The asset a paid stand-in request is for, as far as the request itself says."""
    body = request.json or {}
    if request.service == "gemini":  # the script's prompt names the title; an image's, the channel's style and scene
        return json.dumps(body.get("contents") or [body.get("system_instruction"), body.get("input")], sort_keys=True)
    if request.service == "kling-create":
        return f"{body['input']['image_url']} {body['input']['prompt']}"
    if request.service == "kie-image":  # Gemini's image model via KIE: the channel's style and the scene
        return str(body["input"]["prompt"])
    if request.service == "elevenlabs-tts":  # the channel's own voice
        return f"{request.path} {body.get('text', '')}"
    if request.service == "youtube-upload":
        return str((body.get("snippet") or {}).get("title"))
    return ""


def step(status: str | None) -> int:
    """Where a status is along the pipeline (-1 off it: Queued, an error)."""
    parsed = S.parse(status)
    return PIPELINE.index(parsed) if parsed in PIPELINE else -1


# --- one fault on its own stack -----------------------------------------------------------------------


class Chaos:
    """One fault's run: the stack, the videos, the fault, and what came of it."""

    def __init__(self, name: str, args: argparse.Namespace, bench: Bench, standins: StandinServer,
                 alerts: AlertReceiver, channel_ids: list[str]):
        self.name, self.args, self.bench = name, args, bench
        self.standins, self.alerts, self.channel_ids = standins, alerts, channel_ids
        self.outcome = Outcome(name, args.videos)
        self.pages: dict[str, str] = {}  # page id -> title
        self.board: Board | None = None
        self.lifted_at: float | None = None
        self.unrecovered: dict[str, str] = {}  # page id -> why it does not count as recovered (fault's own check)
        self.runs_per_video = 1  # produce-video runs a video recovered without a person has (a deferral adds one)
        self.other_workers: list[subprocess.Popen] = []  # with --workers N: the N - 1 beside bench.worker
        self.since = datetime.now(timezone.utc)

    # --- helpers the faults use ---
    def say(self, line: str) -> None:
        self.bench.say(f"[{self.name}] {line}")

    def note(self, line: str) -> None:
        self.outcome.notes.append(line)
        self.say(line)

    def worker_args(self) -> list[str]:
        return ["--poll-interval", str(self.args.poll_interval)]

    def start_worker(self) -> None:
        serve_worker(self.bench, self.worker_args())

    def start_other_workers(self) -> None:
        """The workers beside the first (`--workers`), each with its own log."""
        from vidgen.stack import BIN, spawn

        for n in range(2, self.args.workers + 1):
            log = self.bench.paths.home / "logs" / f"serve-{n}.log"
            self.other_workers.append(spawn([str(BIN / "vidgen"), "serve", *self.worker_args()], log, dict(os.environ)))
        if self.other_workers:
            self.say(f"{len(self.other_workers)} more vidgen serve worker(s) started")

    def stop_other_workers(self) -> None:
        from vidgen.stack import stop_process

        for worker in self.other_workers:
            stop_process(worker)
        self.other_workers = []

    def workers(self) -> list[subprocess.Popen]:
        return [w for w in [self.bench.worker, *self.other_workers] if w is not None]

    def replace_worker(self) -> None:
        """After a worker was stopped: a new one, unless others are serving (they take its videos over)."""
        if others := self.workers():
            self.lifted(f"{len(others)} other worker(s) serving; none started in its place")
        else:
            self.start_worker()
            self.lifted("a new vidgen serve is ready")

    def lifted(self, what: str) -> None:
        self.lifted_at = time.time()
        self.say(f"fault lifted: {what}")

    def statuses(self) -> str:
        return ", ".join(f"{self.pages[p]}: {self.board.status(p)}" for p in self.pages)

    def wait(self, check: Callable[[], object], what: str, timeout_s: float | None = None) -> bool:
        """Poll `check` until it holds (True), time runs out, or the worker exits unasked (False, noted)."""
        deadline = time.monotonic() + min(timeout_s or float("inf"), self.bench.deadline.left())
        while time.monotonic() < deadline:
            if check():
                return True
            worker = self.bench.worker
            if worker is not None and worker.poll() is not None:
                from vidgen.stack import log_tail

                self.note(f"vidgen serve exited by itself (code {worker.returncode}) while waiting for {what}; "
                          f"its log ends:\n{log_tail(self.bench.worker_log, 15)}")
                self.bench.worker = None
                return False
            time.sleep(0.5)
        self.note(f"gave up waiting for {what} ({self.statuses()})")
        return False

    def paid_ok(self, service: str) -> list[Any]:
        return [r for r in self.standins.requests if r.service == service and r.status < 400]

    def wait_stage(self) -> bool:
        """Until every card is at `--stage` or past it (and, at Videos Generating, every clip's Kling task exists)."""
        stage = stage_status(self.args.stage)
        reached = self.wait(lambda: all(step(self.board.status(p)) >= PIPELINE.index(stage) for p in self.pages),
                            f"every card at {stage.value}")
        if reached and stage is S.VIDEOS_GENERATING and self.args.providers == "paid":
            clips = self.args.videos * self.args.scenes
            self.wait(lambda: len(self.paid_ok("kling-create")) >= clips, f"{clips} Kling tasks created", timeout_s=60)
        held = HELD.get(self.args.stage)
        if reached and held is not None:
            self.wait(lambda: held.in_flight(self), f"{held.service} answers held", timeout_s=120)
        self.say(f"at the stage: {self.statuses()}")
        return reached

    # --- the run ---
    def queue(self) -> None:
        with NotionGateway(self.bench.notion_token, base_url=self.bench.notion_url, data_source_id=self.bench.data_source_id) as gw:
            for i in range(1, self.args.videos + 1):
                channel = (i - 1) % len(self.channel_ids) + 1
                entry = gw.create_entry(title=f"Chaos {self.name} {i}", channel=f"Chaos {channel}",
                                        topic="A river valley waking up at dawn", status=S.QUEUED)
                self.pages[entry.page_id] = entry.title
        self.board = Board(self.bench).start()
        self.say(f"queued {len(self.pages)} entries")

    def runs(self) -> dict[str, list[Any]]:
        """Every produce-video run of each page."""
        from flows.poll_notion import page_tag

        tags = {page_tag(page): page for page in self.pages}
        found: dict[str, list[Any]] = {page: [] for page in self.pages}
        for run in read_runs("produce-video", self.since):
            for tag in run.tags:
                if tag in tags:
                    found[tags[tag]].append(run)
        return found

    def wait_finished(self) -> None:
        """Until every card is at Upload Complete, or time runs out, or nothing will move any more: every
        run final but Crashed (the automation may restart it) and the board still for 90 s (since the
        fault was lifted, at least)."""
        from prefect.client.schemas.objects import StateType

        still_s = 90.0
        last_look = 0.0

        def finished() -> bool:
            nonlocal last_look
            if all(self.board.status(p) == S.UPLOAD_COMPLETE for p in self.pages):
                return True
            # still since the last change, or since the fault was lifted: a board paused through an
            # outage last changed before it, and the outbox delivers its writes at the next poll
            since = max(self.board.changed, self.lifted_at or 0.0)
            if time.monotonic() - last_look < 10 or time.time() - since < still_s:
                return False
            last_look = time.monotonic()
            try:
                runs = [run for page_runs in self.runs().values() for run in page_runs]
            except Exception:  # Prefect's server not answering: keep waiting
                return False
            final = {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED}
            if runs and all(run.state_type in final for run in runs):
                self.note(f"nothing moves any more: every run is final and the board has been still for {still_s:.0f} s")
                return True
            return False

        self.wait(finished, "every card at Upload Complete")
        self.board.read()

    def measure(self) -> None:
        o = self.outcome
        runs = self.runs()
        done = [p for p in self.pages if self.board.status(p) == S.UPLOAD_COMPLETE]
        o.lost = len(self.pages) - len(done)
        for page, moves in self.board.backwards.items():
            if page in self.pages and self.name not in MOVES_BACK_BY_DESIGN:
                self.unrecovered.setdefault(page, f"its card moved backwards: {'; '.join(moves)}")
        recovered = [p for p in done if len(runs[p]) == self.runs_per_video and p not in self.unrecovered]
        o.recovered = len(recovered)
        if done and not o.lost and self.lifted_at is not None:
            o.recover_s = max(self.board.first_seen[p][S.UPLOAD_COMPLETE] for p in done) - self.lifted_at
            if o.recover_s < 0:
                self.note(f"every video was at Upload Complete {-o.recover_s:.0f} s before the fault was lifted")
                o.recover_s = 0.0
        self.describe(runs)
        o.regenerated, o.audit_regenerated = self.paid_twice()
        time.sleep(max(0.0, self.args.alerts_grace_s))  # the server's automations act within seconds
        o.alerts = len(self.alerts.received)
        for alert in self.alerts.received:
            self.say(f"alert: {alert.get('subject', '?')}")
        self.note(f"events a run-failed alert is for (produce-video runs Failed or Crashed): {self.failure_events()}")

    def failure_events(self) -> int | str:
        """`prefect.flow-run.Failed` and `.Crashed` events of the videos' runs, as Prefect's server holds them."""
        import httpx

        names = ["prefect.flow-run.Failed", "prefect.flow-run.Crashed"]
        body = {"limit": 50, "filter": {"event": {"name": names}, "occurred": {"since": self.since.isoformat()}}}
        try:
            answer = httpx.post(f"{os.environ['PREFECT_API_URL']}/events/filter", json=body, timeout=30)
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            return f"(could not be read: {exc})"
        return sum(1 for event in answer.json().get("events", [])
                   if any(r.get("prefect.resource.role") == "flow" and r.get("prefect.resource.name") == "produce-video"
                          for r in event.get("related", [])))

    def describe(self, runs: dict[str, list[Any]]) -> None:
        """Each video: its card, its runs and the states each went through."""
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            for page, title in self.pages.items():
                card = self.board.cards.get(page)
                error = f" (error: {card.error[:300]})" if card and card.error else ""
                lines = [f"{title}: card {card.status if card else '?'}{error}; {len(runs[page])} run(s)"]
                for run in runs[page]:
                    states = sorted(client.read_flow_run_states(run.id), key=lambda s: s.timestamp)
                    path = " > ".join(s.name for s in states)
                    last = f" ({run.state.message[:200]})" if run.state and run.state.message else ""
                    lines.append(f"    {run.name}: {path}; run_count {run.run_count}{last}")
                    lines += [f"      Crashed: {s.message[:160]}" for s in states if s.is_crashed() and s.message]
                if page in self.unrecovered:
                    lines.append(f"    not recovered: {self.unrecovered[page]}")
                self.note("\n".join(lines))
        polls = [run for run in read_runs("poll-notion", self.since) if run.state_name != "Scheduled"]  # not yet due
        by_state = Counter(run.state_name for run in polls)
        ended = [run.end_time for run in polls if run.state_name == "Completed" and run.end_time]
        self.note(f"poll-notion runs: {dict(by_state)}; last completed "
                  f"{(datetime.now(timezone.utc) - max(ended)).total_seconds():.0f} s ago" if ended else
                  f"poll-notion runs: {dict(by_state)}; none completed")

    def paid_twice(self) -> tuple[int, int]:
        """(assets the stand-ins were paid for more than once, assets the workspaces' audit trails
        record more than once). A paid request answered 2xx is for the asset its request names (the
        prompt, the start frame, the voice and text, the video's title); a sound effect, thumbnail or
        captions track names none, and counts against the narrations or uploads it follows."""
        paid: dict[str, Counter[str]] = defaultdict(Counter)
        for r in self.standins.requests:
            if r.paid and r.status < 400 and not (r.service == "youtube-upload" and r.method != "POST"):
                paid[r.service][asset_named(r)] += 1
        again = {service: sum(n - 1 for n in assets.values()) for service, assets in paid.items() if service not in FOLLOWS}
        for service, leader in FOLLOWS.items():
            again[service] = max(0, sum(paid[service].values()) - len(paid[leader]))
        audit = 0
        for trail in self.bench.paths.workspaces.glob("*/*/calls.jsonl"):
            calls = Counter(json.loads(line)["key"] for line in trail.read_text().splitlines() if line.strip())
            audit += sum(n - 1 for n in calls.values())
        made_again = {service: n for service, n in sorted(again.items()) if n}
        self.note(f"paid requests answered by the stand-ins: {dict(sorted((s, sum(a.values())) for s, a in paid.items()))}"
                  + (f"; paid again for an asset already paid for: {made_again}" if made_again else "; none for an asset twice"))
        return sum(again.values()), audit


# --- the faults -------------------------------------------------------------------------------------


def group_processes(pgid: int) -> list[str]:
    """The processes left in a worker's process group (its runs' processes), but the worker itself."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.pid != pgid and os.getpgid(proc.pid) == pgid and proc.info["status"] != "zombie":
                found.append(f"{proc.pid} {' '.join(proc.info['cmdline'] or [])[:100]}")
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def busiest_worker(chaos: Chaos) -> subprocess.Popen:
    """The worker whose loss matters most: the one running the most processes (its videos' runs).
    It leaves the suite's list of workers, since it is about to be stopped."""
    worker = max(chaos.workers(), key=lambda w: len(group_processes(w.pid)))
    if worker is chaos.bench.worker:
        chaos.bench.worker = None
    else:
        chaos.other_workers.remove(worker)
    return worker


def kill_worker(chaos: Chaos, in_flight: str = "") -> None:
    """`kill -9` of a `vidgen serve`'s process group (its runs' processes with it): the busiest one."""
    worker = busiest_worker(chaos)
    chaos.note(f"kill -9 of vidgen serve's process group {worker.pid} ({len(group_processes(worker.pid))} processes "
               f"beside it) with {chaos.statuses()}" + (f"; in flight: {in_flight}" if in_flight else ""))
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(30)


def kill9(chaos: Chaos) -> None:
    chaos.wait_stage()
    held = HELD.get(chaos.args.stage)
    kill_worker(chaos, held.describe(chaos) if held is not None else "")
    chaos.standins.state.release()
    chaos.replace_worker()


@dataclass(frozen=True)
class Held:
    """A step whose paid answers the stand-ins hold, so a kill lands while they are billed and unanswered."""

    service: str  # as the stand-ins name it

    def hold(self, state: Any, seconds: float) -> None:
        state.holds[self.service] = seconds
        if self.service == "youtube-upload":
            state.upload_keep_bytes = UPLOAD_KEEP_BYTES

    def in_flight(self, chaos: Chaos) -> bool:
        """As many answers held as may be asked for at once: one per scene, uploads up to the `youtube` limit."""
        from blocks.config import concurrency_config

        wanted = chaos.args.videos * chaos.args.scenes
        if self.service == "gemini-script":
            wanted = chaos.args.videos
        if self.service == "youtube-upload":
            wanted = min(chaos.args.videos, concurrency_config().tags["youtube"])
        return chaos.standins.state.holding[self.service] >= wanted

    def describe(self, chaos: Chaos) -> str:
        state = chaos.standins.state
        said = f"{state.holding[self.service]} {self.service} answer(s) held, the work done and billed"
        if self.service == "youtube-upload":
            said += ": " + "; ".join(f"{len(s.received):,} of {s.total:,} bytes in" for s in dict(state.sessions).values())
        return said


# Kill points inside a step that has no card status of its own: the status the card shows meanwhile.
WITHIN: dict[str, S] = {"Script": S.ASSETS_GENERATING}


def stage_status(stage: str) -> S:
    return WITHIN.get(stage) or S(stage)


HELD: dict[str, Held] = {
    "Script": Held("gemini-script"),
    S.ASSETS_GENERATING.value: Held("kie-image"),
    S.AUDIO_GENERATING.value: Held("elevenlabs-tts"),
    S.SFX_GENERATING.value: Held("kie-sound"),
    S.UPLOADING.value: Held("youtube-upload"),
}


def stop_worker(chaos: Chaos) -> None:
    """SIGTERM to a `vidgen serve` (what `docker stop` or systemd send; the busiest, with several),
    until its process group is empty."""
    worker = busiest_worker(chaos)
    chaos.note(f"SIGTERM to vidgen serve (pid {worker.pid}) with {chaos.statuses()}")
    sent = time.monotonic()
    os.kill(worker.pid, signal.SIGTERM)
    try:
        worker.wait(60)
        chaos.note(f"vidgen serve exited with code {worker.returncode} {time.monotonic() - sent:.1f} s after SIGTERM")
    except subprocess.TimeoutExpired:
        chaos.note("vidgen serve had not exited 60 s after SIGTERM: killed")
    if not chaos.wait(lambda: not group_processes(worker.pid), "its process group to empty", timeout_s=10):
        chaos.note(f"left running in its process group 10 s after it exited (killed now): {group_processes(worker.pid)}")
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def sigterm(chaos: Chaos) -> None:
    chaos.wait_stage()
    stop_worker(chaos)
    chaos.replace_worker()


POLL_FLOOD_WINDOW_S = 60.0


def worker_down(chaos: Chaos) -> None:
    """`vidgen serve` stopped for `--worker-down-s` s mid-video, then back: the polls that fell due
    meanwhile must not all run (the poll deployment runs one at a time and drops a poll due while
    another runs). Counted: poll runs that ran (not dropped at submission) in the first minute after
    the new worker was ready, against the minute's polls (60 / interval, and one for the first); more
    is a flood."""
    chaos.wait_stage()
    stop_worker(chaos)
    chaos.note(f"vidgen serve down for {chaos.args.worker_down_s:g} s")
    time.sleep(chaos.args.worker_down_s)
    chaos.start_worker()
    back = datetime.now(timezone.utc)
    chaos.lifted("a new vidgen serve is ready")
    time.sleep(POLL_FLOOD_WINDOW_S)
    polls = [run for run in read_runs("poll-notion", chaos.since)
             if run.start_time and 0 <= (run.start_time - back).total_seconds() <= POLL_FLOOD_WINDOW_S]
    # A poll dropped at submission (one runs at a time) is Cancelled without running: not a replay.
    started = [run for run in polls if run.state_name != "Cancelled"]
    due = int(POLL_FLOOD_WINDOW_S // chaos.args.poll_interval) + 1
    missed = int(chaos.args.worker_down_s // chaos.args.poll_interval)
    chaos.note(f"poll runs that ran in the first {POLL_FLOOD_WINDOW_S:.0f} s back: {len(started)}, "
               f"{len(polls) - len(started)} more dropped at submission "
               f"(polls due in that minute: {due}; missed while down: {missed})")
    if len(started) > due:
        for page in chaos.pages:
            chaos.unrecovered[page] = f"missed polls replayed: {len(started)} polls in {POLL_FLOOD_WINDOW_S:.0f} s"


def prefect_restart(chaos: Chaos) -> None:
    from vidgen import stack

    chaos.wait_stage()
    paths = chaos.bench.paths
    pidfile = stack.pidfiles(paths)["prefect-server"]
    port = int(os.environ["VIDGEN_PREFECT_PORT"])
    for n in (1, 2):
        if n == 2:
            time.sleep(chaos.args.prefect_gap_s)
        chaos.note(f"Prefect's server stopped ({n} of 2) for {chaos.args.prefect_down_s:.0f} s with {chaos.statuses()}")
        stack.stop_process(int(pidfile.read_text()))
        time.sleep(chaos.args.prefect_down_s)
        server = stack.start_prefect_server(paths.home / "prefect", port, stack.prefect_database_url(paths), ui=False,
                                            timeout_s=chaos.bench.deadline.left())
        pidfile.write_text(str(server.process.pid))
        chaos.lifted(f"Prefect's server answers again ({n} of 2)")


def false_crash(chaos: Chaos) -> None:
    """Every busy run marked Crashed while its process is alive, as the zombie automation marks a run
    whose heartbeats did not reach the server: Prefect's server down longer than the detector's
    window (prefect-restart with `--prefect-down-s 150`), where it is a race with the first
    heartbeat back; here it is certain."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    from blocks.automations import CRASH_RESTART_AUTOMATION, zombie_automation

    chaos.wait_stage()
    message = zombie_automation().actions[0].message
    chaos.note(f"every Running run marked Crashed ({message!r}) with {chaos.statuses()}")
    with get_client(sync_client=True) as client:
        if chaos.args.keep_crashed:
            for automation in client.read_automations_by_name(CRASH_RESTART_AUTOMATION):
                client.pause_automation(automation.id)
            chaos.note(f"automation {CRASH_RESTART_AUTOMATION!r} paused: the marked runs stay Crashed")
        for page_runs in chaos.runs().values():
            for run in page_runs:
                if run.state_type == StateType.RUNNING:
                    client.set_flow_run_state(run.id, Crashed(message=message))
    chaos.lifted("the runs are marked Crashed")


def notion_down(chaos: Chaos) -> None:
    from vidgen import stack

    chaos.wait_stage()
    paths = chaos.bench.paths
    port = urlparse(chaos.bench.notion_url).port
    chaos.note(f"local Notion server stopped for {chaos.args.outage_s:.0f} s with {chaos.statuses()}")
    chaos.board.paused.set()
    stack.stop_process(int(stack.pidfiles(paths)["notion-server"].read_text()))
    time.sleep(chaos.args.outage_s)
    stack.ensure_local_notion(paths, port=port)
    chaos.board.paused.clear()
    chaos.lifted("the local Notion server answers again, same port and store")


class NotionHoldingWrites:
    """The local Notion server behind a proxy on its port: every request is forwarded, but page
    writes (PATCH /v1/pages/...) are held unanswered while `holding`, so a kill lands while a card
    write is on the wire."""

    HOP_HEADERS = {b"host", b"content-length", b"transfer-encoding", b"connection", b"content-encoding"}

    def __init__(self, port: int, upstream: str) -> None:
        self.upstream = upstream
        self.held: set[str] = set()  # the pages whose write is held
        self.holding = threading.Event()
        self.holding.set()
        self.server = LoopbackServer(self, port=port, name="chaos-notion-hold", lifespan="off")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        import asyncio

        import httpx

        if scope["type"] != "http":
            return
        body = await request_body(receive)
        path = scope["path"]
        if scope["method"] == "PATCH" and path.startswith("/v1/pages/") and self.holding.is_set():
            self.held.add(path.removeprefix("/v1/pages/"))
            while self.holding.is_set():
                await asyncio.sleep(0.2)
            await send({"type": "http.response.start", "status": 502, "headers": []})  # its caller is gone
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.lower() not in self.HOP_HEADERS]
        url = self.upstream + path + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.request(scope["method"], url, headers=headers, content=body)
        await send({"type": "http.response.start", "status": answer.status_code,
                    "headers": [(k.encode(), v.encode()) for k, v in answer.headers.items()
                                if k.lower().encode() not in self.HOP_HEADERS]})
        await send({"type": "http.response.body", "body": answer.content})


def kill9_card_write(chaos: Chaos) -> None:
    """kill -9 while each video's next card write is held on the wire, its page's outbox claim held."""
    from vidgen import stack

    chaos.wait_stage()
    paths = chaos.bench.paths
    port = urlparse(chaos.bench.notion_url).port
    chaos.board.paused.set()
    stack.stop_process(int(stack.pidfiles(paths)["notion-server"].read_text()))
    proxy = NotionHoldingWrites(port, stack.ensure_local_notion(paths, port=stack.free_port())).server.start()
    chaos.board.paused.clear()
    chaos.note(f"card writes held from now, with {chaos.statuses()}")
    try:
        chaos.wait(lambda: len(proxy.app.held) >= len(chaos.pages), "a card write of every video held",
                   timeout_s=chaos.args.hold_s)
        kill_worker(chaos, f"{len(proxy.app.held)} card write(s) held unanswered")
    finally:
        chaos.board.paused.set()
        proxy.app.holding.clear()
        proxy.stop()
        stack.stop_process(int(stack.pidfiles(paths)["notion-server"].read_text()))
        stack.ensure_local_notion(paths, port=port)
        chaos.board.paused.clear()
    chaos.start_worker()
    chaos.lifted("a new vidgen serve is ready (Notion answers directly again)")


class NotionThrottled:
    """Notion in a rate-limit storm: every request answered 429 `rate_limited` with Retry-After, as
    https://developers.notion.com/reference/request-limits documents, on the Notion server's port."""

    def __init__(self, port: int, retry_after_s: float) -> None:
        self.answered = 0
        self.retry_after_s = retry_after_s
        self.server = LoopbackServer(self, port=port, name="chaos-notion-429", lifespan="off")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await request_body(receive)
        self.answered += 1
        body = json.dumps({"object": "error", "status": 429, "code": "rate_limited",
                           "message": "You have been rate limited. Please try again in a few minutes."}).encode()
        headers = [(b"content-type", b"application/json"), (b"retry-after", f"{self.retry_after_s:g}".encode())]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def notion_429(chaos: Chaos) -> None:
    """Notion answers every request 429 with Retry-After for `--throttle-s` s, then the same server
    and store answer again."""
    from vidgen import stack

    chaos.wait_stage()
    paths = chaos.bench.paths
    port = urlparse(chaos.bench.notion_url).port
    chaos.note(f"local Notion server answers 429 (Retry-After {chaos.args.throttle_retry_after_s:g} s) "
               f"for {chaos.args.throttle_s:.0f} s with {chaos.statuses()}")
    chaos.board.paused.set()
    stack.stop_process(int(stack.pidfiles(paths)["notion-server"].read_text()))
    throttled = NotionThrottled(port, chaos.args.throttle_retry_after_s).server.start()
    try:
        time.sleep(chaos.args.throttle_s)
    finally:
        throttled.stop()
    chaos.note(f"requests answered 429 meanwhile: {throttled.app.answered}")
    stack.ensure_local_notion(paths, port=port)
    chaos.board.paused.clear()
    chaos.lifted("the local Notion server answers again, same port and store")


def requeue_busy(chaos: Chaos) -> None:
    """Every card to Queued by hand (a person dragging it; no transition rules), while its run is busy."""
    from notion_client import Client

    chaos.wait_stage()
    client = Client(auth=chaos.bench.notion_token, base_url=chaos.bench.notion_url, log_level=logging.ERROR)  # 429s: it retries
    chaos.note(f"every card set to Queued by hand with {chaos.statuses()}")
    for page in chaos.pages:
        client.pages.update(page, properties={"Status": {"select": {"name": S.QUEUED.value}}})
    chaos.lifted("the cards are Queued")
    fresh = chaos.lifted_at + 2 * chaos.board.every_s  # a board read started after the re-queue has ended
    chaos.wait(lambda: time.time() > fresh and all(chaos.board.status(p) != S.QUEUED for p in chaos.pages),
               "every card to leave Queued", timeout_s=120)
    for page, title in chaos.pages.items():
        card = chaos.board.cards[page]
        back = f"{title}: card back at {card.status} {time.time() - chaos.lifted_at:.0f} s after the re-queue"
        if card.status == S.QUEUED:
            chaos.unrecovered[page] = "the card stayed Queued"
        elif step(card.status) < PIPELINE.index(stage_status(chaos.args.stage)):
            chaos.unrecovered[page] = f"the card went back to {card.status}, before the run's status"
        chaos.note(back + (f", saying {card.error[:120]!r}" if card.error else ", with no note"))


def arm_provider_faults(chaos: Chaos) -> None:
    faults: list[tuple[int, float | None]] = [(429, chaos.args.retry_after), (503, None), (503, None), (503, None)]
    chaos.standins.state.kling_create_faults = faults
    chaos.say(f"Kling's createTask answers each clip {', '.join(str(s) for s, _ in faults)} before it takes it "
              f"(Retry-After {chaos.args.retry_after:g} s on the 429)")


def provider_429(chaos: Chaos) -> None:
    faults = len(chaos.standins.state.kling_create_faults)
    clips = chaos.args.videos * chaos.args.scenes
    taken = lambda: sum(1 for n in chaos.standins.state.create_attempts.values() if n > faults)  # noqa: E731
    if not chaos.wait(lambda: taken() >= clips, f"Kling to take all {clips} clips after its refusals"):
        return
    by_frame: dict[str, list[Any]] = defaultdict(list)
    for request in chaos.standins.seen("kling-create"):
        by_frame[request.json["input"]["image_url"]].append(request)
    firsts = []
    for frame, requests in by_frame.items():
        requests.sort(key=lambda r: r.at)
        answers = " ".join(str(r.status) for r in requests)
        gaps = " ".join(f"{b.at - a.at:.0f}" for a, b in zip(requests, requests[1:]))
        chaos.note(f"{frame.rsplit('/', 1)[-1]}: createTask answered {answers}; seconds between tries: {gaps}")
        firsts.append(next(r.at for r in requests if r.status < 400))
    chaos.lifted_at = max(firsts)
    chaos.say("fault lifted: Kling has taken every clip")


def arm_bad_scripts(chaos: Chaos) -> None:
    spoiled = {f"Chaos {chaos.name} {i}": BAD_SCRIPTS[(i - 1) % len(BAD_SCRIPTS)] for i in range(1, chaos.args.videos + 1)}
    chaos.standins.state.script_faults.update(spoiled)
    chaos.say("Gemini's first script for each video is spoiled: " + ", ".join(f"{t}: {k}" for t, k in spoiled.items()))


def bad_script(chaos: Chaos) -> None:
    """The fault is there from the start; it is over once every video has a script (its card past
    Assets Generating). Printed: the script requests Gemini answered for each video."""
    chaos.lifted("the entries are queued (the models' first answers are spoiled)")
    chaos.wait(lambda: all(step(chaos.board.status(p)) > PIPELINE.index(S.ASSETS_GENERATING) for p in chaos.pages),
               "every card past Assets Generating")
    scripts = [r for r in chaos.standins.seen("gemini") if r.path == "/v1beta/interactions"]
    for title in chaos.pages.values():
        asked = [r for r in scripts if title in json.dumps(r.json)]
        chaos.note(f"{title}: {len(asked)} script request(s), answered {' '.join(str(r.status) for r in asked)}")


def move_quota_reset(seconds: float) -> None:
    """Turn the workers' quota day `seconds` from now (VIDGEN_YOUTUBE_QUOTA_RESET, before they start)."""
    from vidgen.providers.youtube import PACIFIC, QUOTA_RESET_ENV

    os.environ[QUOTA_RESET_ENV] = datetime.fromtimestamp(time.time() + seconds, PACIFIC).strftime("%H:%M:%S")


def arm_quota(chaos: Chaos) -> None:
    """The stand-in refuses uploads until the reset the workers compute from the moved time."""
    from vidgen.providers.youtube import seconds_until_quota_reset

    reset = time.time() + seconds_until_quota_reset(datetime.now(timezone.utc))
    chaos.standins.state.quota_spent_until = reset
    chaos.runs_per_video = 2
    chaos.say(f"YouTube answers quotaExceeded for {reset - time.time():.0f} s, until the day turns at "
              f"{os.environ['VIDGEN_YOUTUBE_QUOTA_RESET']} Pacific")


def quota(chaos: Chaos) -> None:
    """Every upload refused and deferred to the reset; lifted when the day turns. Printed: each card's
    words while deferred, and the deferred runs scheduled."""
    reset = chaos.standins.state.quota_spent_until
    deferred = lambda p: chaos.board.status(p) == S.ERROR_RETRIABLE and "deferred" in (chaos.board.cards[p].error or "")  # noqa: E731
    if chaos.wait(lambda: all(deferred(p) for p in chaos.pages) or time.time() >= reset, "every upload deferred"):
        for page, title in chaos.pages.items():
            card = chaos.board.cards.get(page)
            if deferred(page):
                chaos.note(f"{title}: {card.status}: {card.error[:240]}")
            else:
                chaos.unrecovered[page] = f"not deferred (card {card.status if card else '?'} when the day turned)"
    chaos.note(f"uploads refused by the spent quota: {chaos.standins.state.quota_refusals}")
    time.sleep(max(0.0, reset - time.time()))
    chaos.lifted("the quota day turned")


FAULTS: dict[str, Callable[[Chaos], None]] = {
    "kill9": kill9, "sigterm": sigterm, "worker-down": worker_down, "prefect-restart": prefect_restart,
    "false-crash": false_crash, "kill9-card-write": kill9_card_write,
    "notion-down": notion_down, "notion-429": notion_429, "requeue-busy": requeue_busy,
    "provider-429": provider_429, "bad-script": bad_script, "quota": quota,
}
# Faults whose cards move back on purpose: re-queued by the suite, or deferred to Error: Retriable until the quota day turns.
MOVES_BACK_BY_DESIGN = {"requeue-busy", "quota"}
BEFORE_QUEUE: dict[str, Callable[[Chaos], None]] = {"provider-429": arm_provider_faults, "bad-script": arm_bad_scripts,
                                                    "quota": arm_quota}


def teardown(bench: Bench) -> None:
    """`bench_webhooks.shutdown` without cancelling the runs first: the whole stack is thrown away, and
    the poll's schedule alone leaves about a hundred Scheduled runs, cancelled one request each."""
    if bench.prefect_up:
        from prefect._internal.concurrency.services import _QueueServiceBase

        _QueueServiceBase.drain_all(timeout=10, at_exit=False)  # before its server goes away
        bench.prefect_up = False
    shutdown(bench)


def setup_alerts(url: str) -> None:
    """`vidgen setup --alerts-url URL`, as a user runs it: blocks, limits, automations, the alerts' webhook."""
    from vidgen.stack import BIN

    done = subprocess.run([str(BIN / "vidgen"), "setup", "--alerts-url", url], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))
    if done.returncode != 0:
        raise RuntimeError(f"vidgen setup failed ({done.returncode}): {(done.stdout + done.stderr)[-2000:]}")


def planned_downtime(name: str, args: argparse.Namespace) -> float:
    """Seconds the fault keeps a part down on purpose; `--timeout` is for everything else."""
    return {"notion-down": args.outage_s, "worker-down": args.worker_down_s, "notion-429": args.throttle_s,
            "prefect-restart": 2 * args.prefect_down_s + args.prefect_gap_s, "quota": args.quota_reset_s}.get(name, 0.0)


def fault_label(name: str, stage: str, workers: int = 1) -> str:
    """The table's name for a fault: with the stage when it is not the default one, and the workers when several."""
    label = name if stage == S.VIDEOS_GENERATING.value else f"{name} at {stage}"
    return label if workers == 1 else f"{label}, {workers} workers"


def run_fault(name: str, args: argparse.Namespace) -> Outcome:
    """One fault on a fresh stack; every process started for it is stopped before it returns."""
    load = os.getloadavg()
    outcome = Outcome(fault_label(name, args.stage, args.workers), args.videos)
    with tempfile.TemporaryDirectory(prefix=f"vidgen-chaos-{name}-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        channel_ids = chaos_channels(root / "channels", args.channels or args.videos, args.scenes, args.providers)
        paths = Paths(home=root / "home", channels=root / "channels", workspaces=root / "workspaces")
        logs = args.logs / outcome.fault.replace(", ", "-").replace(" ", "-") if args.logs else None
        bench = Bench(paths=paths, deadline=Deadline(args.timeout + planned_downtime(name, args)), keep_logs=logs)
        bench.say(f"[{name}] load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.videos} videos, "
                  f"{args.scenes} scene(s), Kling holds each clip {args.clip_hold_s:g} s")
        standins = StandinServer(root / "standins").start()
        standins.state.kling_generating_s = args.clip_hold_s
        if name == "kill9" and args.stage in HELD:  # pin the kill inside the step
            HELD[args.stage].hold(standins.state, args.hold_s)
        alerts = AlertReceiver()
        alerts.server.start()
        chaos: Chaos | None = None
        try:
            os.environ.update(provider_env(standins, root / "youtube-tokens", channel_ids))
            os.environ.pop("GOOGLE_API_KEY", None)
            os.environ["VIDGEN_RETRY_DELAYS"] = args.retry_delays
            if name == "quota":
                move_quota_reset(args.quota_reset_s)
            start_stack(bench, sqlite=args.sqlite)
            setup_alerts(alerts.url)
            chaos = Chaos(name, args, bench, standins, alerts, channel_ids)
            chaos.outcome.fault = outcome.fault
            chaos.start_worker()
            chaos.start_other_workers()
            if name in BEFORE_QUEUE:
                BEFORE_QUEUE[name](chaos)
            chaos.queue()
        except Exception as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
            print(f"[{name}] the stack could not start: {outcome.error}", file=sys.stderr)
            chaos = None
        try:
            if chaos is not None:
                outcome = chaos.outcome
                try:
                    FAULTS[name](chaos)
                    chaos.wait_finished()
                except Exception as exc:  # the fault's own machinery failed: still measure what happened
                    chaos.note(f"the fault's run broke off: {type(exc).__name__}: {exc}")
                chaos.measure()
        except Exception as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
            print(f"[{name}] could not measure: {outcome.error}", file=sys.stderr)
        finally:
            if chaos is not None and chaos.board is not None:
                chaos.board.stop()
            if chaos is not None:
                chaos.stop_other_workers()
            teardown(bench)
            standins.stop()
            alerts.server.stop()
    return outcome


# --- the suite ------------------------------------------------------------------------------------


def child(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))  # a killed child still stops what it started
    os.chdir(REPO)  # the worker serves the flows from here
    outcome = run_fault(args.run_fault, args)
    args.result.write_text(json.dumps(asdict(outcome)))
    return 0


def suite(args: argparse.Namespace) -> int:
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown or not faults:
        print(f"unknown fault(s) {unknown}; choose from {', '.join(FAULT_NAMES)}", file=sys.stderr)
        return 2
    kill_stages = [st.strip() for st in args.kill_stages.split(",") if st.strip()] if args.kill_stages else []
    bad_stages = [st for st in kill_stages if st not in WITHIN and S.parse(st) not in PIPELINE]
    if bad_stages:
        print(f"not pipeline statuses: {bad_stages}; choose from {', '.join([*WITHIN, *(st.value for st in PIPELINE)])}",
              file=sys.stderr)
        return 2
    runs = [(name, stage) for name in faults for stage in (kill_stages if name == "kill9" and kill_stages else [args.stage])]
    load = os.getloadavg()
    print(f"load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)", flush=True)
    outcomes: list[Outcome] = []
    interrupted = False
    child_proc: subprocess.Popen | None = None

    def forward(signum: int, _frame: Any) -> None:
        if child_proc is not None and child_proc.poll() is None:
            child_proc.send_signal(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, forward)
    with tempfile.TemporaryDirectory(prefix="vidgen-chaos-results-") as results:
        for n, (name, stage) in enumerate(runs):
            result = Path(results) / f"{n}-{name}.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:], "--stage", stage,
                   "--run-fault", name, "--result", str(result)]
            child_proc = subprocess.Popen(cmd)
            try:
                child_proc.wait(timeout=args.timeout + planned_downtime(name, args) + 600)
            except subprocess.TimeoutExpired:
                child_proc.terminate()
            except KeyboardInterrupt:
                interrupted = True
            try:  # a child told to stop (Ctrl+C reaches it too) cleans up before it exits
                child_proc.wait(timeout=180)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                child_proc.kill()
            if result.is_file():
                outcomes.append(Outcome(**json.loads(result.read_text())))
            else:
                outcomes.append(Outcome(fault_label(name, stage, args.workers), args.videos, error="interrupted" if interrupted else
                                        f"its run exited with {child_proc.returncode} and no result"))
            if interrupted:
                break
    print(f"\nchaos: {args.videos} videos at once per fault, {args.scenes} scene(s) each; load average at the start "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print_table(outcomes)
    if interrupted or any(o.error for o in outcomes):
        return 2
    return 0 if all(o.ok() for o in outcomes) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faults", default=",".join(FAULT_NAMES), help="comma-separated, from: " + ", ".join(FAULT_NAMES))
    parser.add_argument("--videos", type=int, default=3, help="videos made at once, per fault")
    parser.add_argument("--channels", type=int, help="channels the videos are spread over (default: one per video)")
    parser.add_argument("--providers", choices=["paid", "local"], default="paid",
                        help="the channels' providers: the paid ones against the stand-ins, or the local ones (which "
                             "really render, so compute dominates; the audit trail is then the count that matters)")
    parser.add_argument("--workers", type=int, default=1,
                        help="vidgen serve workers on the one Prefect server; with 2 or more, kill9 and sigterm stop one "
                             "and start none: the others take its videos over")
    parser.add_argument("--scenes", type=int, default=1, help="scenes per video")
    parser.add_argument("--stage", default=S.VIDEOS_GENERATING.value, help="the card status the fault waits for")
    parser.add_argument("--kill-stages", help="kill9 once per status listed (comma-separated; also 'Script'), "
                                              "instead of at --stage")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds per fault, its stack's start included, beyond the fault's planned downtime")
    parser.add_argument("--outage-s", type=float, default=120, help="notion-down: seconds the Notion server is down")
    parser.add_argument("--throttle-s", type=float, default=120, help="notion-429: seconds Notion answers 429")
    parser.add_argument("--throttle-retry-after-s", type=float, default=30, help="notion-429: the 429's Retry-After (s)")
    parser.add_argument("--worker-down-s", type=float, default=600, help="worker-down: seconds vidgen serve is down")
    parser.add_argument("--prefect-down-s", type=float, default=20, help="prefect-restart: seconds down, each time")
    parser.add_argument("--prefect-gap-s", type=float, default=15, help="prefect-restart: seconds between the restarts")
    parser.add_argument("--keep-crashed", action="store_true",
                        help="false-crash: pause the crash-restart automation first, so the marked runs stay Crashed")
    parser.add_argument("--retry-after", type=float, default=120, help="provider-429: the 429's Retry-After (s)")
    parser.add_argument("--retry-delays", default="5,5,5,5", help="VIDGEN_RETRY_DELAYS of the workers (s, comma-separated)")
    parser.add_argument("--quota-reset-s", type=float, default=300,
                        help="quota: seconds from the stack's start to the quota day's turn")
    parser.add_argument("--hold-s", type=float, default=600.0,
                        help="a kill at Assets / Audio / SFX Generating or Uploading: seconds the stand-ins hold each "
                             "answer of that step (or until the kill)")
    parser.add_argument("--clip-hold-s", type=float, default=30, help="seconds Kling keeps each clip generating")
    parser.add_argument("--poll-interval", type=int, default=5, help="the worker's Notion poll interval (s)")
    parser.add_argument("--alerts-grace-s", type=float, default=10, help="seconds alerts may still arrive after the videos")
    parser.add_argument("--sqlite", action="store_true", help="Prefect on SQLite (VIDGEN_PREFECT_DATABASE=sqlite)")
    parser.add_argument("--logs", type=Path, help="copy each fault's worker and server logs to DIR/<fault>")
    parser.add_argument("--run-fault", choices=FAULT_NAMES, help=argparse.SUPPRESS)  # the child's one fault
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)  # where the child writes its Outcome
    args = parser.parse_args()
    return child(args) if args.run_fault else suite(args)


if __name__ == "__main__":
    sys.exit(main())
