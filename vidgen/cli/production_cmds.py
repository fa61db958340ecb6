"""`vidgen setup | serve | run | demo`: the commands that drive Prefect.

Prefect is imported inside each command, after the embedded Prefect server's settings are in the
environment, so `import vidgen` never imports Prefect and settings are read once, correctly.
"""

from __future__ import annotations

import os
import shlex
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from vidgen.cli.common import console, fail
from vidgen.cli.webhook_cmds import webhooks_app
from vidgen.config import Paths

DEMO_TOPICS = {
    "wild_frontiers": (
        "The Salmon Run",
        "Sockeye salmon return upstream to the river where they hatched",
        "Follow one salmon from the open ocean to the spawning grounds; end on the bears and the forest it feeds.",
    ),
    "chronicle_vault": (
        "The Library of Alexandria",
        "How the ancient world's greatest library grew, and how it slowly faded",
        "Open on the harbour and the lighthouse, build to the scholars at work, close on what survived.",
    ),
}


def _prepare() -> Paths:
    """The embedded servers (PostgreSQL, Prefect) running and this process pointed at them."""
    from vidgen.stack import StackError, database_choice, ensure_prefect, export_paths

    from vidgen.files import private_dir

    paths = Paths.from_env()
    private_dir(paths.home)
    export_paths(paths)
    try:
        where = "SQLite" if database_choice() == "sqlite" else "PostgreSQL"
        with console.status(f"Starting Prefect's server ({where} in .vidgen/)..."):
            api = ensure_prefect(paths)
    except StackError as exc:
        fail(str(exc))
    console.print(f"Prefect API: [cyan]{api}[/]")
    return paths


def setup(
    alerts_url: str = typer.Option(None, help="Slack or JSON webhook URL for alerts (default: $VIDGEN_ALERTS_URL)"),
) -> None:
    """Register the Prefect blocks, concurrency limits and alert automations (idempotent: run it again after editing)."""
    _prepare()
    if alerts_url:
        os.environ["VIDGEN_ALERTS_URL"] = alerts_url
    from blocks.config import register

    for line in register():
        console.print(f"  [green]✓[/] {line}")


def worker_settings() -> dict[str, str]:
    """The Prefect settings of a process that runs videos (`vidgen serve`, or a work pool's worker
    through `vidgen env`); the environment overrides each."""
    from blocks.automations import HEARTBEAT_FREQUENCY_S

    return {
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",  # a queued run starts within 2 s, not Prefect's 10
        # Runs send heartbeats; the zombie automation (`vidgen setup`) marks a run Crashed when they stop.
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_FREQUENCY_S),
        # Prefect's server runs without CSRF protection by default; asking for a token costs every
        # new client (one per task run's lease renewal) a refused round trip.
        "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "false",
        # A run rides out a Prefect server restart: its API calls back off 2, 4, ... 128 s (about 4
        # minutes in all) before giving up, instead of Prefect's 5 tries (about a minute).
        "PREFECT_CLIENT_MAX_RETRIES": "7",
    }


def serve(
    poll_interval: int = typer.Option(60, help="seconds between Notion polls"),
    limit: int = typer.Option(20, help="videos produced at once by this process"),
    webhook_port: int = typer.Option(None, help="also receive Notion webhooks on this port (POST /webhooks/notion)"),
) -> None:
    """Serve the poll-notion (scheduled), produce-video and handle-page deployments from this process (no work pool)."""
    _prepare()
    for key, value in worker_settings().items():
        os.environ.setdefault(key, value)
    from blocks.config import register
    from flows.deployments import served_flows
    from flows.serving import serve_leaving_runs
    from vidgen.stack import embedded_on_sqlite

    register()
    if embedded_on_sqlite():
        console.print(
            "[yellow]Prefect's server runs on SQLite (VIDGEN_PREFECT_DATABASE=sqlite): fine for a video or two at "
            "once; tagged tasks wait on \"database is locked\" retries beyond that. Unset it to use PostgreSQL.[/]"
        )
    console.print(
        f"Serving [bold]poll-notion[/] (every {poll_interval} s), [bold]produce-video[/] and [bold]handle-page[/]; "
        "Ctrl+C or SIGTERM stops at once, leaving videos in progress to the next `vidgen serve`."
    )
    with _receiving_webhooks(webhook_port):
        serve_leaving_runs(served_flows(poll_interval=poll_interval), limit=limit)


def receive_webhooks(
    port: int = typer.Option(8766, envvar="VIDGEN_WEBHOOK_PORT", help="port to receive them on (POST /webhooks/notion)"),
) -> None:
    """Receive Notion's webhooks only (no flows served): for work pools, where workers run the videos.

    Each event becomes a handle-page run in this process, which starts or resumes the page's
    produce-video run on its deployment's pool, as `vidgen serve --webhook-port` does for its own."""
    _prepare()
    for key, value in worker_settings().items():
        os.environ.setdefault(key, value)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # `docker stop`: finish handling, then exit
    with _receiving_webhooks(port):
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass


@contextmanager
def _receiving_webhooks(port: int | None) -> Iterator[None]:
    """The Notion webhook receiver in this process while it serves: each event becomes a handle-page run."""
    if not port:
        yield
        return
    from flows.handle_page import PageDispatcher
    from vidgen.config import notion_settings
    from vidgen.webhooks import ReceiverConfig, start_webhook_server

    settings = notion_settings()
    if settings is None or not settings.data_source_id:
        fail("Notion is not configured: run `uv run vidgen notion init` before receiving its webhooks")
    config = ReceiverConfig.from_paths(
        Paths.from_env(), data_source_id=settings.data_source_id, signing_token=settings.webhook_token
    )
    dispatcher = PageDispatcher()
    hooks = start_webhook_server(port, dispatcher, config, host="127.0.0.1")
    console.print(f"Receiving Notion webhooks at [cyan]{hooks.url}[/] (expose it over HTTPS to subscribe from Notion)")
    try:
        yield
    finally:
        hooks.stop()
        dispatcher.close()


def run(
    page_id: str = typer.Argument(..., help="the Notion page id of the entry"),
    wait: bool = typer.Option(True, help="follow the run until it finishes or waits for review"),
) -> None:
    """Produce one entry now, as the poller would start it (needs `vidgen serve` running)."""
    _prepare()
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from flows.poll_notion import PRODUCE_DEPLOYMENT, start_video_run
    from tasks.notion import NotionNotConfigured, notion_gateway
    from vidgen.channels import channel_for_notion_value
    from vidgen.notion.errors import NotionError
    from vidgen.pipeline import configured_channels

    try:
        with get_client(sync_client=True) as client:
            client.read_deployment_by_name(PRODUCE_DEPLOYMENT)
    except ObjectNotFound:
        fail("the produce-video deployment is not served: start `uv run vidgen serve` in another terminal")
    try:
        entry = notion_gateway().get_entry(page_id)
    except NotionNotConfigured as exc:
        fail(str(exc))
    except NotionError as exc:
        fail(f"cannot read Notion page {page_id}: {exc}")
    channel = channel_for_notion_value(configured_channels(Paths.from_env().channels), entry.channel)
    if channel is None:
        fail(f"the entry's channel {entry.channel!r} is not configured in channels/ (`uv run vidgen channels list`)")
    outcome = start_video_run(entry, channel.id)
    if not outcome.started:
        console.print(f"[yellow]{entry.title!r} is already being made by run [bold]{outcome.run_name}[/] ({outcome.state}); not starting another.[/]")
        return
    console.print(f"Started flow run [bold]{outcome.run_name}[/] ({outcome.run_id})")
    if not wait:
        return
    with get_client(sync_client=True) as client, console.status("running...") as status:
        while True:
            state = client.read_flow_run(outcome.run_id).state
            status.update(f"{state.name if state else '...'}")
            if state and (state.is_final() or state.is_paused()):
                break
            time.sleep(2)
    console.print(f"Run ended as [bold]{state.name}[/]: {state.message or ''}")
    if state.is_paused():
        console.print("It waits for a review: approve it in Notion (Review = Approve) or in the Prefect UI.")


def env() -> None:
    """Print the environment that points `prefect` commands and workers at vidgen's Prefect server.

    Use it before `prefect work-pool create`, `prefect deploy` or `prefect worker start`:
    `eval "$(uv run vidgen env)"`."""
    from vidgen.stack import PREFECT_PORT, StackError, client_env, ensure_prefect, export_paths

    paths = Paths.from_env()
    export_paths(paths)
    try:
        ensure_prefect(paths)
    except StackError as exc:
        fail(str(exc))
    values = {k: os.environ[k] for k in client_env(paths.home / "prefect", PREFECT_PORT) if k in os.environ}
    values |= {k: os.environ[k] for k in ("VIDGEN_HOME", "VIDGEN_CHANNELS_DIR", "VIDGEN_WORKSPACES")}
    values |= {k: os.environ.get(k, v) for k, v in worker_settings().items()}
    for key, value in values.items():
        print(f"export {key}={shlex.quote(value)}")


def demo(
    timeout_min: float = typer.Option(45, help="give up after this many minutes"),
    fresh: bool = typer.Option(False, help="archive earlier demo entries and make new ones"),
) -> None:
    """From nothing to finished videos: local Notion, Prefect, one entry per sample channel, reviews approved as a person would."""
    from vidgen.cli.demo import run_demo

    run_demo(_prepare(), timeout_min=timeout_min, fresh=fresh)


def down() -> None:
    """Stop the servers vidgen started (Prefect, local Notion, PostgreSQL); their data stays in .vidgen/."""
    from vidgen.stack import stop_servers

    stopped = stop_servers(Paths.from_env())
    console.print("Stopped: " + ", ".join(stopped) if stopped else "Nothing to stop.")


def register(app: typer.Typer) -> None:
    app.command()(setup)
    app.command()(serve)
    webhooks_app.command("receive")(receive_webhooks)
    app.command()(run)
    app.command()(demo)
    app.command()(down)
    app.command()(env)
