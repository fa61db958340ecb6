"""`vidgen setup | serve | run | demo`: the commands that drive Prefect.

Prefect is imported inside each command, after the embedded Prefect server's settings are in the
environment, so `import vidgen` never imports Prefect and settings are read once, correctly.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer
from rich.table import Table

from vidgen.cli.common import console, fail
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


def _prepare(*, start_prefect: bool = True) -> Paths:
    from vidgen.cli.stack import StackError, ensure_prefect, export_paths

    paths = Paths.from_env()
    paths.home.mkdir(parents=True, exist_ok=True)
    export_paths(paths)
    if start_prefect:
        try:
            with console.status("Starting Prefect's server (SQLite in .vidgen/prefect)..."):
                api = ensure_prefect(paths)
        except StackError as exc:
            fail(str(exc))
        console.print(f"Prefect API: [cyan]{api}[/]")
    return paths


def setup() -> None:
    """Register the Prefect blocks and concurrency limits (idempotent: run it again after editing)."""
    _prepare()
    from blocks.config import register

    for line in register():
        console.print(f"  [green]✓[/] {line}")


def serve(
    poll_interval: int = typer.Option(60, help="seconds between Notion polls"),
    limit: int = typer.Option(20, help="videos produced at once by this process"),
) -> None:
    """Serve the poll-notion (scheduled) and produce-video deployments from this process (no work pool)."""
    _prepare()
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    # Prefect's server runs without CSRF protection by default; asking for a token costs every new
    # client (one per task run's lease renewal) a refused round trip.
    os.environ.setdefault("PREFECT_CLIENT_CSRF_SUPPORT_ENABLED", "false")
    from prefect import serve as prefect_serve

    from blocks.config import register
    from flows.poll_notion import poll_notion
    from flows.produce_video import produce_video

    register()
    from vidgen.cli.stack import embedded_on_sqlite

    if embedded_on_sqlite():
        console.print(
            "[yellow]Prefect's server runs on SQLite here: fine for a few videos at once. For more, run it on "
            "PostgreSQL (README, \"Running at scale\").[/]"
        )
    console.print(f"Serving [bold]poll-notion[/] (every {poll_interval} s) and [bold]produce-video[/]; Ctrl+C stops.")
    prefect_serve(
        poll_notion.to_deployment(name="poll-notion", interval=poll_interval),
        produce_video.to_deployment(name="produce-video", tags=["vidgen"]),
        limit=limit,
    )


def run(
    page_id: str = typer.Argument(..., help="the Notion page id of the entry"),
    wait: bool = typer.Option(True, help="follow the run until it finishes or waits for review"),
) -> None:
    """Produce one entry ad hoc, as a produce-video deployment run (needs `vidgen serve` running)."""
    _prepare()
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    from flows.poll_notion import PRODUCE_DEPLOYMENT, page_tag, video_run_name
    from vidgen.channels import channel_for_notion_value
    from vidgen.config import Paths, notion_settings
    from vidgen.notion.errors import NotionError
    from vidgen.notion.gateway import NotionGateway
    from vidgen.pipeline import configured_channels

    try:
        with get_client(sync_client=True) as client:
            client.read_deployment_by_name(PRODUCE_DEPLOYMENT)
    except ObjectNotFound:
        fail("the produce-video deployment is not served: start `uv run vidgen serve` in another terminal")
    settings = notion_settings()
    if settings is None:
        fail("Notion is not configured: run `uv run vidgen notion init` (or `uv run vidgen demo`) first")
    try:
        entry = NotionGateway.from_settings(settings).get_entry(page_id)
    except NotionError as exc:
        fail(f"cannot read Notion page {page_id}: {exc}")
    channel = channel_for_notion_value(configured_channels(Paths.from_env().channels), entry.channel)
    tags = [page_tag(page_id)] + ([f"channel:{channel.id}"] if channel else [])
    flow_run = run_deployment(
        PRODUCE_DEPLOYMENT,
        parameters={"page_id": page_id},
        timeout=0,
        as_subflow=False,
        flow_run_name=video_run_name(channel.id if channel else entry.channel or "?", entry.title),
        tags=tags,
    )
    console.print(f"Started flow run [bold]{flow_run.name}[/] ({flow_run.id})")
    if not wait:
        return
    with get_client(sync_client=True) as client, console.status("running...") as status:
        while True:
            state = client.read_flow_run(flow_run.id).state
            status.update(f"{state.name if state else '...'}")
            if state and (state.is_final() or state.is_paused()):
                break
            time.sleep(2)
    console.print(f"Run ended as [bold]{state.name}[/]: {state.message or ''}")
    if state.is_paused():
        console.print("It waits for a review: approve it in Notion (Review = Approve) or in the Prefect UI.")


def demo(
    timeout_min: float = typer.Option(45, help="give up after this many minutes"),
    fresh: bool = typer.Option(False, help="archive earlier demo entries and make new ones"),
) -> None:
    """From nothing to finished videos: local Notion, Prefect, one entry per sample channel, reviews approved as a person would."""
    from vidgen.cli.demo import run_demo

    run_demo(_prepare(), timeout_min=timeout_min, fresh=fresh)


def down() -> None:
    """Stop the Prefect and local Notion servers that `vidgen demo` / `vidgen serve` started."""
    from vidgen.cli.stack import stop_servers

    stopped = stop_servers(Paths.from_env())
    console.print("Stopped: " + ", ".join(stopped) if stopped else "Nothing to stop.")


def register(app: typer.Typer) -> None:
    app.command()(setup)
    app.command()(serve)
    app.command()(run)
    app.command()(demo)
    app.command()(down)
