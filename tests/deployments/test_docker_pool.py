"""The Docker work pool, run here (issue 18): deployments/README.md's steps, as a test.

The image is built (on the local base scripts/container_base.sh makes when no registry answers),
deployments/compose.yaml brings up PostgreSQL, Prefect's server, `vidgen setup`, the webhook
receiver and two Docker workers (through podman's Docker-compatible socket), and
`prefect deploy` puts the flows on the `vidgen-docker` pool. One video on a channel with every
review gate on goes from a Notion entry to Upload Complete: each gate is decided on the Notion card
(Review = Approve, as a person would), and each decision resumes the run in a new container.
Nothing is made twice (the workspace's calls.jsonl), and the page has one produce-video run.

Everything runs on the host's network on ports of its own, with its own volume, project and podman
socket, so it does not meet other stacks on the machine; all of it is removed afterwards, also when
the test fails. Only the image stays, as the build cache of the next run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from dotenv import dotenv_values

from vidgen.stack import StackError, free_port, healthy, spawn, stop_process, wait_until

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BASE_IMAGE = "localhost/debian:bookworm"
IMAGE = "localhost/vidgen:test"
CA_BUNDLE = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))
CHANNEL = "container_check"
GATE_STATUSES = {"Assets Ready", "Videos Ready", "Audio Ready", "Ready for Review"}

pytestmark = [
    pytest.mark.containers,
    pytest.mark.skipif(shutil.which("podman") is None,
                       reason="podman is not installed: the Docker work pool runs through podman's Docker API "
                              "(scripts/container_base.sh installs it)"),
    pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0,
                       reason="the container stack runs as root here (podman's system socket, the base image)"),
]


def run(*cmd: str, env: dict[str, str] | None = None, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited with {done.returncode}:\n{(done.stdout + done.stderr)[-4000:]}")
    return done


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return run("podman", *args, timeout=timeout, check=check)


def build_image() -> None:
    """deployments/README.md's build, on the local base when there is one (the script makes it
    when no registry answers). Cached layers make a rebuild take seconds."""
    run(str(REPO / "scripts" / "container_base.sh"), timeout=900)
    args = ["build", "-f", "deployments/Dockerfile", "-t", IMAGE]
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        args += ["--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    if CA_BUNDLE.is_file():
        args += ["--secret", f"id=ca,src={CA_BUNDLE}"]
    podman(*args, ".", timeout=1200)


def gated_channel(directory: Path) -> None:
    """The nature sample with every gate on, cut to one short scene so the video is quick to make."""
    data = yaml.safe_load((REPO / "channels" / "wild_frontiers.yaml").read_text())
    data.update(id=CHANNEL, name="Container Check", notion_value="Container Check")
    data["script"].update(scenes=1, min_scenes=1, words_per_scene=10)
    assert all(gate["enabled"] for gate in data["review"].values())
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{CHANNEL}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@dataclass
class Stack:
    env: dict[str, str]  # what the README has the user load: stack.env, then notion.env
    volume_dir: Path  # the /data volume, as the host sees it
    prefect_api: str

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        return run(str(BIN / "podman-compose"), "-p", self.env["VIDGEN_DATA_VOLUME"], "-f", "deployments/compose.yaml",
                   *args, env=self.env, timeout=timeout, check=check)

    def containers_created_for(self, flow_run_id: str, since: float) -> list[str]:
        """Every container made for the run, also those already removed (podman's event log)."""
        events = podman("events", "--stream=false", "--since", str(int(since)), "--filter", "event=create",
                        "--filter", f"label=io.prefect.flow-run-id={flow_run_id}", "--format", "{{.Name}}")
        return events.stdout.split()

    def logs(self) -> str:
        out = []
        for name in ("postgres", "prefect-server", "setup", "webhooks", "worker"):
            for container in podman("ps", "-aq", "--filter", f"label=com.docker.compose.project={self.env['VIDGEN_DATA_VOLUME']}",
                                    "--filter", f"label=com.docker.compose.service={name}", check=False).stdout.split():
                logs = podman("logs", "--tail", "25", container, check=False)
                out.append(f"--- {name} ---\n" + (logs.stdout + logs.stderr)[-3000:])
        return "\n".join(out)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("docker-pool")
    name = f"vidgen-test-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "NOTION_", "VIDGEN_"))}
    env.update({k: v or "" for k, v in dotenv_values(REPO / "deployments" / "stack.env").items()})
    env.update(
        VIDGEN_IMAGE=IMAGE, VIDGEN_DATA_VOLUME=name, VIDGEN_CONTAINER_CHANNELS_DIR="/data/channels",
        VIDGEN_PREFECT_PORT=str(free_port()), VIDGEN_POSTGRES_PORT=str(free_port()),
        VIDGEN_WEBHOOK_PORT=str(free_port()), VIDGEN_DOCKER_SOCKET=str(tmp / "podman.sock"),
    )
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{env['VIDGEN_PREFECT_PORT']}/api"
    host = {**env, "VIDGEN_HOME": str(tmp / "home"), "VIDGEN_CHANNELS_DIR": str(tmp / "channels")}
    notion_port = free_port()
    processes: list[subprocess.Popen] = []
    stack = Stack(env=env, volume_dir=tmp, prefect_api=env["PREFECT_API_URL"])
    try:
        build_image()
        processes.append(podman_service := spawn(
            ["podman", "system", "service", "--time=0", f"unix://{env['VIDGEN_DOCKER_SOCKET']}"], tmp / "podman-service.log", env))
        wait_until(lambda: Path(env["VIDGEN_DOCKER_SOCKET"]).exists(), "podman's API socket", timeout_s=60,
                   proc=podman_service, log=tmp / "podman-service.log")

        # Notion: the local server on this host (loopback only), the database, its settings.
        gated_channel(tmp / "channels")
        processes.append(notion := spawn([str(BIN / "vidgen"), "notion", "serve", "--port", str(notion_port)],
                                          tmp / "notion-server.log", host))
        wait_until(lambda: healthy(f"http://127.0.0.1:{notion_port}/v1/users/me"), "local Notion server",
                   timeout_s=60, proc=notion, log=tmp / "notion-server.log")
        run(str(BIN / "vidgen"), "notion", "init", "--base-url", f"http://127.0.0.1:{notion_port}", env=host)
        env.update({k: v or "" for k, v in dotenv_values(tmp / "home" / "notion.env").items()})

        # The channel, where the containers read channels from (VIDGEN_CONTAINER_CHANNELS_DIR=/data/channels).
        podman("volume", "create", name)
        stack.volume_dir = Path(podman("volume", "inspect", name, "--format", "{{.Mountpoint}}").stdout.strip())
        gated_channel(stack.volume_dir / "channels")

        stack.compose("up", "-d")
        wait_until(lambda: healthy(f"{stack.prefect_api}/health"), "Prefect's server in the stack", timeout_s=300)
        setup = podman("wait", f"{name}_setup_1", timeout=300).stdout.strip()
        assert setup == "0", f"vidgen setup exited with {setup}:\n{stack.logs()}"
        run(str(BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/docker.prefect.yaml",
            env=env, timeout=300)
        wait_until(lambda: podman("logs", f"{name}_webhooks_1", check=False).stdout.count("Receiving Notion webhooks"),
                   "the webhook receiver", timeout_s=300)
        # In the receiver's container, so the subscription's signing key is stored where it reads it.
        podman("exec", f"{name}_webhooks_1", "vidgen", "notion", "init", "--webhook-url",
               f"http://127.0.0.1:{env['VIDGEN_WEBHOOK_PORT']}/webhooks/notion")
        yield stack
    finally:
        # The stack's containers and volumes; `volume rm --force` also removes flow-run containers
        # still using the volume. Then the podman socket and the Notion server.
        stack.compose("down", "-v", "-t", "20", timeout=300, check=False)
        for volume in (name, f"{name}-postgres"):
            podman("volume", "rm", "--force", volume, check=False, timeout=300)
        for process in reversed(processes):
            stop_process(process)
        left = podman("ps", "-aq", "--filter", f"volume={name}", check=False).stdout.split()
        assert not left, f"containers of the test stack left behind: {left}"


def wait_for_card(gateway, page_id: str, accept, what: str, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        entry = gateway.get_entry(page_id)
        if accept(entry):
            return entry
        time.sleep(2)
    raise AssertionError(f"{what}: the card is at {entry.status!r} ({entry.error or 'no error'}) after {timeout_s:.0f} s")


@pytest.fixture
def prefect_on_stack(stack: Stack) -> Iterator[None]:
    """This process's Prefect client pointed at the stack's server. Prefect reads its settings once
    per process, so an environment variable set now would not reach a client in a suite where an
    earlier test already loaded them (this test then watched another server and timed out)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: stack.env["PREFECT_API_URL"]}):
        yield


@pytest.mark.timeout(2400)  # a few minutes on an idle 2-core machine (the first build longer); the guard is for hangs
def test_a_gated_video_is_made_in_containers_and_resumed_from_notion_at_every_gate(stack: Stack, prefect_on_stack, monkeypatch):
    for key in ("NOTION_TOKEN", "NOTION_BASE_URL", "NOTION_DATA_SOURCE_ID"):
        monkeypatch.setenv(key, stack.env[key])
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.objects import StateType

    from vidgen.config import notion_settings
    from vidgen.notion.gateway import NotionGateway
    from vidgen.statuses import NotionStatus

    started = time.time()
    gateway = NotionGateway.from_settings(notion_settings())
    entry = gateway.create_entry(title="Salmon in a container", channel="Container Check", status=NotionStatus.QUEUED,
                                 topic="Sockeye salmon return upstream to the river where they hatched")

    def produce_runs():
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"page:{entry.page_id}"])))
        return [r for r in runs if r.name.startswith(f"{CHANNEL}:")]

    def paused() -> bool:
        return any(r.state_type is StateType.PAUSED for r in produce_runs())

    def run_history() -> str:
        """Each produce-video run's states, with their messages: what a failure here has to explain."""
        with get_client(sync_client=True) as client:
            return "\n".join(
                f"{run.name}: " + " > ".join(f"{s.name}" + (f" ({s.message[:200]})" if s.message else "")
                                             for s in sorted(client.read_flow_run_states(run.id), key=lambda s: s.timestamp))
                for run in produce_runs())

    decided = []
    try:
        while True:
            entry = wait_for_card(gateway, entry.page_id, lambda e: e.status in GATE_STATUSES | {"Upload Complete"}
                                  or e.status.startswith("Error") or e.status == "Review Rejected",
                                  f"after {decided or 'the entry was queued'}", timeout_s=900)
            if entry.status not in GATE_STATUSES:
                break
            # Decided as soon as Prefect shows the run suspended, its container possibly still ending.
            wait_until(paused, f"the run suspended at {entry.status}", timeout_s=600)
            gateway.update_entry(entry, review="Approve", review_notes="Looks good (container test)")
            decided.append(entry.status)
            wait_for_card(gateway, entry.page_id, lambda e, gate=entry.status: e.status != gate,
                          f"the decision at {entry.status}", timeout_s=900)
    except (AssertionError, StackError) as exc:
        raise AssertionError(f"{exc}\nruns:\n{run_history()}\n{stack.logs()}") from None

    assert entry.status == "Upload Complete", f"{entry.status}: {entry.error}\n{stack.logs()}"
    assert decided == ["Assets Ready", "Videos Ready", "Audio Ready", "Ready for Review"]

    runs = produce_runs()
    assert len(runs) == 1, [r.name for r in runs]
    containers = stack.containers_created_for(str(runs[0].id), since=started - 5)
    assert len(containers) == len(set(containers)) == 1 + len(decided), containers  # a new container per resume, each its own name

    workspace = stack.volume_dir / Path(entry.workspace).relative_to("/data")
    calls = [json.loads(line)["key"] for line in (workspace / "calls.jsonl").read_text().splitlines() if line.strip()]
    assert calls and not [key for key, n in Counter(calls).items() if n > 1], calls
    assert list((workspace / "final").glob("*.mp4")), sorted(p.name for p in workspace.rglob("*"))[:50]
    assert httpx.get(f"{stack.prefect_api}/health", timeout=10).status_code == 200
