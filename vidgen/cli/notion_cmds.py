"""Notion commands: run the local server, set up the database, add entries, look at the board, poll once.

Every failure a person can fix (server not running, wrong token, database gone, broken channel
file) ends in one line that says what to do; tracebacks are for bugs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.table import Table

from vidgen.channels import Channel, ChannelConfigError, channel_for_notion_value, load_channels
from vidgen.cli.common import console, fail
from vidgen.config import (
    DEFAULT_LOCAL_NOTION_PORT,
    LEGACY_LOCAL_NOTION_TOKEN,
    LOCAL_NOTION_BASE_URL,
    NotionSettings,
    Paths,
    legacy_local_token_in_use,
    local_notion_token,
    mask_secret,
    notion_settings,
    notion_target,
    write_env_file,
)
from vidgen.models import Priority, VideoEntry
from vidgen.notion.errors import NotionError, NotionNotFound
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.schema import DATABASE_TITLE
from vidgen.polling import PollResult, poll_once
from vidgen.statuses import IllegalTransition, NotionStatus
from vidgen.validation import validate_entry

notion_app = typer.Typer(help="The Notion side: the local server and the Video Pipeline database.", no_args_is_help=True)


def _one_line(message: str) -> str:
    return "; ".join(part.strip() for part in message.splitlines() if part.strip())


@contextmanager
def _known_errors() -> Iterator[None]:
    """Known failures become one line via `fail`; anything else is a bug and keeps its traceback."""
    try:
        yield
    except (NotionError, ChannelConfigError, IllegalTransition) as exc:
        fail(_one_line(str(exc)))


def _channels(paths: Paths) -> dict[str, Channel]:
    with _known_errors():
        return load_channels(paths.channels)


def _settings(paths: Paths) -> NotionSettings:
    settings = notion_settings(paths)
    if settings is None:
        fail(
            "Notion is not set up — run `uv run vidgen notion init` (or set NOTION_TOKEN, NOTION_BASE_URL and "
            "NOTION_DATA_SOURCE_ID)"
        )
    assert settings is not None
    return settings


def _resolve_channel(channels: dict[str, Channel], given: str) -> Channel:
    found = channel_for_notion_value(channels, given)
    if found is None:
        known = ", ".join(f"{c.id} ({c.notion_value})" for c in channels.values())
        fail(f"unknown channel {given!r} — use a channel id or its Notion value: {known}")
    assert found is not None
    return found


def _priority(given: str) -> Priority:
    by_name = {p.value.casefold(): p for p in Priority}
    if given.casefold() not in by_name:
        fail(f"unknown priority {given!r} — use one of: {', '.join(p.value for p in Priority)}")
    return by_name[given.casefold()]


# --- vidgen notion serve / init ---------------------------------------------------------------------


@notion_app.command("serve")
def serve(
    port: int = typer.Option(DEFAULT_LOCAL_NOTION_PORT, "--port", help="port to listen on"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (keep it on loopback)"),
    rate_limit: float = typer.Option(3.0, "--rate-limit", help="requests per second before 429, like Notion; 0 = none"),
) -> None:
    """Run the local Notion-API server (the store lives in VIDGEN_HOME)."""
    from vidgen.notion.server import serve_forever

    paths = Paths.from_env()
    token = local_notion_token(paths)
    legacy = legacy_local_token_in_use(paths)
    console.print(
        f"Local Notion on http://{host}:{port} — store {paths.notion_store}, token {mask_secret(token)} "
        f"(in {paths.notion_env_file.name}). Ctrl+C stops it.",
        markup=False,
    )
    if legacy:
        console.print(
            "This installation still uses the old fixed token; it is accepted from this machine until "
            "`uv run vidgen notion init` replaces it.",
            markup=False,
        )
    try:
        serve_forever(paths.notion_store, host, port, token, rate_limit if rate_limit > 0 else None, legacy_token=legacy)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}) — is it already running? pick another --port")
    except ValueError as exc:  # a non-loopback host: the local server is for this machine only
        fail(str(exc))


@notion_app.command("init")
def init(
    parent_page_id: str | None = typer.Option(None, "--parent-page-id", help="page to create the database in (real Notion)"),
    token: str | None = typer.Option(None, "--token", help="integration token (default: the local server's)"),
    base_url: str | None = typer.Option(
        None, "--base-url", help=f"Notion API address (default: NOTION_BASE_URL, the saved one, or {LOCAL_NOTION_BASE_URL})"
    ),
    webhook_url: str | None = typer.Option(
        None, "--webhook-url", help="local server: send page events to this receiver (e.g. http://127.0.0.1:8787/webhooks/notion)"
    ),
) -> None:
    """Create the Video Pipeline database (or reuse the saved one) and save the settings.

    A local address alone (`--base-url` or NOTION_BASE_URL) is enough: the local server's token is known.
    """
    paths = Paths.from_env()
    channels = _channels(paths)
    saved = notion_settings(paths)
    try:
        target = notion_target(paths, token=token, base_url=base_url)
    except ValueError as exc:
        fail(str(exc))
    if not target.is_local and not parent_page_id and not (saved and saved.data_source_id):
        fail("real Notion needs --parent-page-id: a page shared with your integration, to hold the database")
    saved_token = saved.token if saved else None
    if saved and saved.is_local and saved.token == LEGACY_LOCAL_NOTION_TOKEN:
        saved_token = target.token  # init rotates the old fixed token (see notion_target): same server, same database
    reusable = (
        saved.data_source_id
        if saved and saved.data_source_id and (saved_token, saved.base_url) == (target.token, target.base_url)
        else None
    )
    with _known_errors(), NotionGateway(target.token, base_url=target.base_url, data_source_id=reusable) as gateway:
        data_source_id: str | None = None
        if reusable:
            try:
                changed = gateway.sync_channel_options(channels)
                data_source_id = reusable
                console.print(
                    f"Reusing the {DATABASE_TITLE} database (data source {reusable}); "
                    + ("added the missing channel options." if changed else "channel options are up to date."),
                    markup=False,
                )
            except NotionNotFound:
                console.print(f"The saved database (data source {reusable}) is gone; creating a new one.", markup=False)
        if data_source_id is None:
            database_id, data_source_id = gateway.create_database(
                parent_page_id=parent_page_id, title=DATABASE_TITLE, channels=channels
            )
            console.print(f"Created the {DATABASE_TITLE} database {database_id} (data source {data_source_id}).", markup=False)
    values = {
        "NOTION_TOKEN": target.token,
        "NOTION_BASE_URL": target.base_url or "",
        "NOTION_DATA_SOURCE_ID": data_source_id,
    }
    for key, value in values.items():
        typer.echo(f"{key}={mask_secret(value) if key == 'NOTION_TOKEN' else value}")
    write_env_file(paths.notion_env_file, values)
    console.print(f"Saved to {paths.notion_env_file} (environment variables of the same names override it).", markup=False)
    if webhook_url:
        _subscribe_webhooks(target, webhook_url, paths)


def subscribe_local_webhooks(target: NotionSettings, webhook_url: str, paths: Paths) -> dict[str, str]:
    """Subscribe `webhook_url` at the local server and make its verification token the receiver's key.

    Whoever runs this chose the subscription (they hold the integration's token and named the
    URL), so its token is accepted as `vidgen webhooks accept` would, without waiting for the
    verification request to arrive. Raises httpx.HTTPError when the server cannot be reached.
    """
    from vidgen.notion.server.webhooks import request_subscription
    from vidgen.webhooks import ReceiverConfig
    from vidgen.webhooks.store import CandidateTokens, VerificationTokenStore, accept_token

    assert target.base_url is not None
    subscription = request_subscription(target.base_url, target.token, webhook_url)
    config = ReceiverConfig.from_paths(paths)
    accept_token(
        VerificationTokenStore(config.token_file), CandidateTokens(config.candidates_file),
        subscription["verification_token"], chosen_elsewhere=True,
    )  # fmt: skip
    return subscription


def _subscribe_webhooks(target: NotionSettings, webhook_url: str, paths: Paths) -> None:
    """Subscribe the local server to send page events to `webhook_url`; real Notion subscribes in its UI."""
    if not target.is_local or not target.base_url:
        console.print(
            "Real Notion subscribes in its web UI: integration settings > Webhooks > Create a subscription with "
            f"{webhook_url} (HTTPS, reachable from the internet); the receiver prints the verification token once: "
            "paste it into Notion's form and accept it with `uv run vidgen webhooks accept TOKEN`.",
            markup=False,
        )
        return
    import httpx

    try:
        subscription = subscribe_local_webhooks(target, webhook_url, paths)
    except httpx.HTTPError as exc:
        fail(f"could not subscribe {webhook_url} at the local Notion server {target.base_url} ({exc}) — is it running?")
    console.print(
        f"Webhooks: the local Notion server sends page events to {webhook_url} (subscription {subscription['id']}); "
        f"its verification token {mask_secret(subscription['verification_token'])} is the receiver's key.",
        markup=False,
    )


# --- vidgen new / board / poll -------------------------------------------------------------------


def new(
    title: str = typer.Option(..., "--title", help="the video's title"),
    channel: str = typer.Option(..., "--channel", help="channel id or its Notion value"),
    topic: str = typer.Option(..., "--topic", help="what the video is about"),
    direction: str = typer.Option("", "--direction", help="story direction for the script writer"),
    priority: str = typer.Option(Priority.NORMAL.value, "--priority", help="Low, Normal or High"),
    queue: bool = typer.Option(False, "--queue", help="put it straight in Queued (default: Draft)"),
) -> None:
    """Add an entry to the Notion board."""
    paths = Paths.from_env()
    channels = _channels(paths)
    chosen = _resolve_channel(channels, channel)
    level = _priority(priority)
    status = NotionStatus.QUEUED if queue else NotionStatus.DRAFT
    draft = VideoEntry(
        page_id="",
        title=title,
        channel=chosen.notion_value,
        topic=topic,
        story_direction=direction,
        status=status.value,
        priority=level.value,
    )
    with _known_errors(), NotionGateway.from_settings(_settings(paths)) as gateway:
        reasons = validate_entry(draft, channels, others=gateway.find_titled({title, title.strip()}))
        if reasons:
            fail("cannot create this entry: " + "; ".join(reasons))
        entry = gateway.create_entry(
            title=title,
            channel=chosen.notion_value,
            topic=topic,
            story_direction=direction,
            priority=level,
            status=status,
        )
    console.print(f"Created {entry.title!r} in {entry.channel} as {entry.status} ({entry.priority}).", markup=False)
    console.print(f"page {entry.page_id}" + (f" — {entry.url}" if entry.url else ""), markup=False)


def _short(text: str, limit: int = 60) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _board_table(heading: str, entries: list[VideoEntry]) -> Table:
    table = Table(title=f"{heading} ({len(entries)})", title_justify="left", expand=False)
    for column in ("Title", "Channel", "Priority", "Error", "Cost", "Video URL"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(
            e.title or "(no title)",
            e.channel or "—",
            e.priority or Priority.NORMAL.value,
            _short(e.error),
            f"${e.cost_usd:.2f}" if e.cost_usd is not None else "",
            e.video_url or "",
        )
    return table


def board() -> None:
    """The Notion board in the terminal: entries grouped by status, in workflow order."""
    paths = Paths.from_env()
    with _known_errors(), NotionGateway.from_settings(_settings(paths)) as gateway:
        entries = gateway.list_entries()
    if not entries:
        console.print("The board is empty — add an entry with `uv run vidgen new --title … --channel … --topic …`.", markup=False)
        return
    groups: dict[str, list[VideoEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.status, []).append(entry)
    order = [s.value for s in NotionStatus] + sorted(k for k in groups if NotionStatus.parse(k) is None)
    for status in order:
        if status in groups:
            heading = status if NotionStatus.parse(status) else f"Unknown status {status!r}"
            console.print(_board_table(heading, groups[status]))
    console.print(f"{len(entries)} entries in {len(groups)} statuses.", markup=False)


def _print_poll(result: PollResult, *, write_back: bool) -> None:
    console.print(f"Would start ({len(result.to_start)}):", markup=False)
    for i, e in enumerate(result.to_start, 1):
        console.print(f"  {i}. [{e.channel}] {e.title} — {e.priority or Priority.NORMAL.value} ({e.page_id})", markup=False)
    moved = "sent back to Draft" if write_back else "would be sent back to Draft (dry run)"
    console.print(f"Rejected, {moved} ({len(result.rejected)}):", markup=False)
    for r in result.rejected:
        console.print(f"  - {r.entry.title or '(no title)'} ({r.entry.page_id})", markup=False)
        for reason in r.reasons:
            console.print(f"      • {reason}", markup=False)
    console.print(f"Review decisions ({len(result.decisions)}):", markup=False)
    for d in result.decisions:
        redo = f", redo {d.verdict.redo}" if d.verdict.redo else ""
        notes = f" — {_short(d.verdict.notes)}" if d.verdict.notes else ""
        console.print(f"  - {d.entry.title} at {d.entry.status}: {d.verdict.action.value}{redo}{notes}", markup=False)
    if result.problems:
        console.print(f"Could not act on ({len(result.problems)}):", markup=False)
        for p in result.problems:
            console.print(f"  - {p.entry.title or p.entry.page_id}: {'; '.join(p.reasons)}", markup=False)
    console.print(f"Notion requests: {result.requests}. (This only looks; `uv run vidgen serve` starts the runs.)", markup=False)


def poll(
    once: bool = typer.Option(False, "--once", help="poll a single time and print what was found"),
    dry_run: bool = typer.Option(False, "--dry-run", help="do not move refused entries back to Draft"),
) -> None:
    """Look at the board once: what would start, what is refused and why, which reviews are decided."""
    if not once:
        fail(
            "continuous polling is the Prefect deployment — run `uv run vidgen serve`; "
            "use `uv run vidgen poll --once` to look once",
            code=2,
        )
    paths = Paths.from_env()
    channels = _channels(paths)
    with _known_errors(), NotionGateway.from_settings(_settings(paths)) as gateway:
        result = poll_once(gateway, channels, write_back=not dry_run)
    _print_poll(result, write_back=not dry_run)


def register(app: typer.Typer) -> None:
    """Add `vidgen notion serve|init`, `vidgen new`, `vidgen board` and `vidgen poll` to `app`."""
    app.add_typer(notion_app, name="notion")
    app.command("new")(new)
    app.command("board")(board)
    app.command("poll")(poll)


@notion_app.command("blocks")
def blocks(page_id: str = typer.Argument(..., help="the card's page id (as in the board or the page URL)")) -> None:
    """Print a card's page body as a reviewer sees it in Notion: each gate round's previews and notes."""
    from vidgen.previews import describe_page_blocks

    paths = Paths.from_env()
    with _known_errors(), NotionGateway.from_settings(_settings(paths)) as gateway:
        gateway.get_entry(page_id)  # a wrong id fails here with the gateway's one-line advice
        lines = describe_page_blocks(gateway, page_id)
    for line in lines or ["(the page body is empty: no gate has shown previews yet)"]:
        console.print(line, markup=False, soft_wrap=True)


@notion_app.command("review")
def review(
    page_id: str = typer.Argument(..., help="the card's page id (as in the board or the page URL)"),
    decision: str = typer.Argument(..., help="approve or reject"),
    notes: str = typer.Option("", "--notes", help="Review Notes, e.g. `redo: 2, 4` with reject"),
) -> None:
    """Decide the gate a card waits at by writing Review (and Review Notes) on it, as a person does in
    Notion; the webhook or the next poll hands the decision to the run. For the local Notion server,
    which has no editor of its own."""
    choice = {"approve": "Approve", "reject": "Reject"}.get(decision.casefold())
    if choice is None:
        fail(f"unknown decision {decision!r} — use approve or reject", code=2)
    paths = Paths.from_env()
    with _known_errors(), NotionGateway.from_settings(_settings(paths)) as gateway:
        entry = gateway.get_entry(page_id)
        gateway.update_entry(entry, review=choice, review_notes=notes)
    console.print(f"{entry.title!r} ({entry.status}): Review = {choice}" + (f", notes {notes!r}" if notes else ""), markup=False)
