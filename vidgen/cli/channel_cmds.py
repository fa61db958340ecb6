"""`vidgen channels list|check|auth`: what each channel uses, whether it can run, and YouTube sign-in.

`check` is what to run before switching a channel to paid providers: it reads every channel file
on its own (so one broken file does not hide the others), then for each step says which provider
serves it and exactly which key, file or token is missing. Nothing here calls a paid API.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from vidgen.channels import Channel, ChannelConfigError, channel_for_notion_value, load_channel, load_channels
from vidgen.cli.common import console, fail
from vidgen.config import Paths
from vidgen.errors import ProviderError
from vidgen.providers.registry import STEPS
from vidgen.providers.settings import ProviderSettings

channels_app = typer.Typer(
    help="Channels: what each one uses, whether its credentials are in place, and YouTube sign-in.",
    no_args_is_help=True,
)

GATES = ("assets", "videos", "audio", "final")


@dataclass(frozen=True)
class Check:
    """One thing a provider needs, and whether it is there."""

    ok: bool
    text: str


def _key_check(value: object, env: str, purpose: str) -> Check:
    if value is None:
        return Check(False, f"{env} is not set ({purpose})")
    return Check(True, f"{env} set")


def _youtube_checks(channel: Channel, settings: ProviderSettings) -> list[Check]:
    from vidgen.providers.youtube_auth import TokenStore

    checks: list[Check] = []
    secrets = settings.youtube_client_secrets
    if secrets is None:
        checks.append(Check(False, "YOUTUBE_CLIENT_SECRETS is not set (OAuth client JSON used by `vidgen channels auth`)"))
    elif not secrets.is_file():
        checks.append(Check(False, f"client secrets file not found: {secrets} (YOUTUBE_CLIENT_SECRETS)"))
    else:
        checks.append(Check(True, f"client secrets {secrets}"))
    if settings.token_key is None:
        checks.append(Check(False, "VIDGEN_TOKEN_KEY is not set (it encrypts stored YouTube tokens)"))
        return checks
    try:
        store = TokenStore(settings.token_dir, settings.token_key)
    except ProviderError as e:
        checks.append(Check(False, _plain(e)))
        return checks
    if not store.exists(channel.id):
        checks.append(Check(False, f"no stored token in {store.directory} — run `vidgen channels auth {channel.id}`"))
        return checks
    try:
        store.read(channel.id)
    except ProviderError as e:
        checks.append(Check(False, _plain(e)))
    else:
        checks.append(Check(True, "stored token decrypts"))
    return checks


def _plain(error: ProviderError) -> str:
    prefix = f"{error.provider}: "
    text = str(error)
    return text[len(prefix):] if error.provider and text.startswith(prefix) else text


def provider_checks(step: str, provider: str, channel: Channel, settings: ProviderSettings) -> list[Check]:
    """What `provider` needs to serve `step` for `channel`; an empty list means nothing."""
    if provider == "local":
        return []
    if provider == "gemini":
        return [_key_check(settings.gemini_api_key, "GEMINI_API_KEY", f"Gemini {step}")]
    if provider == "elevenlabs":
        return [_key_check(settings.elevenlabs_api_key, "ELEVENLABS_API_KEY", f"ElevenLabs {step}")]
    if provider == "kie":
        return [_key_check(settings.kie_api_key, "KIE_API_KEY", f"{step} via KIE.ai")]
    if provider == "kling":
        checks = [_key_check(settings.kie_api_key, "KIE_API_KEY", "Kling clips via KIE.ai")]
        if settings.image_host == "s3":
            checks.append(_key_check(settings.s3_presign_endpoint, "VIDGEN_S3_PRESIGN_ENDPOINT", "the s3 image host"))
        elif settings.image_host != "kie":
            checks.append(Check(False, f"VIDGEN_IMAGE_HOST={settings.image_host!r} is not 'kie' or 's3'"))
        return checks
    if provider == "youtube":
        return _youtube_checks(channel, settings)
    return [Check(False, f"unknown provider {provider!r}")]


def _channel_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def _load_each(directory: Path) -> tuple[list[Channel], list[str]]:
    """Every readable channel, plus one message per file (or clash) that is not."""
    channels: list[Channel] = []
    problems: list[str] = []
    for path in _channel_files(directory):
        try:
            channels.append(load_channel(path))
        except ChannelConfigError as e:
            problems.append(str(e))
    try:
        load_channels(directory)
    except ChannelConfigError as e:  # clashes between files (duplicate ids / Notion values), or no files
        message = str(e)
        if message not in problems:
            problems.append(message)
    return channels, problems


def _channels_or_fail() -> dict[str, Channel]:
    try:
        return load_channels(Paths.from_env().channels)
    except ChannelConfigError as e:
        message = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
    fail(f"{message} (run `vidgen channels check` for every problem)")
    return {}


def list_channels() -> None:
    """Show every channel: ids, Notion values, providers per step and which review gates are on."""
    channels = _channels_or_fail()
    table = Table(title="Channels")
    table.add_column("ID", no_wrap=True)
    table.add_column("Name", overflow="fold")
    table.add_column("Notion value", overflow="fold")
    table.add_column("Active", no_wrap=True)
    table.add_column("Providers", no_wrap=True)
    table.add_column("Gates", no_wrap=True)
    for channel in channels.values():
        providers = "\n".join(f"{step}={getattr(channel.providers, step)}" for step in STEPS)
        gates = "\n".join(f"{gate} {'on' if channel.review.gate(gate).enabled else 'off'}" for gate in GATES)
        table.add_row(
            channel.id, escape(channel.name), escape(channel.notion_value), "yes" if channel.active else "no",
            providers, gates,
        )
    console.print(table)


def check(
    channel: str | None = typer.Argument(None, help="Channel id (or Notion value); all channels when left out."),
) -> None:
    """Validate channel files and the credentials of the providers each channel uses; exit 1 if anything is missing."""
    paths = Paths.from_env()
    if not paths.channels.is_dir():
        fail(f"{paths.channels}: channel directory not found (set VIDGEN_CHANNELS_DIR)")
    settings = ProviderSettings.from_env()
    loaded, problems = _load_each(paths.channels)
    selected = loaded
    if channel is not None:
        match = channel_for_notion_value({c.id: c for c in loaded}, channel)
        if match is None:
            for problem in problems:
                console.print(f"[red]✗[/] {escape(problem)}", soft_wrap=True)
            known = ", ".join(c.id for c in loaded) or "none readable"
            fail(f"unknown channel {channel!r}; known: {known}")
        selected = [match]

    missing = len(problems)
    for problem in problems:
        console.print(f"[red]✗ configuration:[/] {escape(problem)}", soft_wrap=True)
    if problems:
        # Channels are loaded together, so one broken file stops every channel, not just its own.
        console.print("  (the pipeline loads all channel files at once: fix these before any channel can run)",
                      soft_wrap=True)
    for ch in selected:
        console.print(f"\n[bold]{escape(ch.id)}[/] ({escape(ch.name)}) — configuration OK"
                      + ("" if ch.active else " [dim](inactive)[/]"), soft_wrap=True)
        for step in STEPS:
            provider = getattr(ch.providers, step)
            checks = provider_checks(step, provider, ch, settings)
            bad = [c for c in checks if not c.ok]
            missing += len(bad)
            label = f"  {step:<10} {provider:<11}"
            if not checks:
                console.print(f"{label} [green]ok[/] (nothing needed)", soft_wrap=True)
            elif not bad:
                console.print(f"{label} [green]ok[/] ({escape('; '.join(c.text for c in checks))})", soft_wrap=True)
            else:
                console.print(f"{label} [red]missing:[/] {escape('; '.join(c.text for c in bad))}", soft_wrap=True)
    if missing:
        console.print(f"\n[red]{missing} problem(s) found[/]", soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"\n[green]{len(selected)} channel(s) ready[/]", soft_wrap=True)


def auth(
    channel: str = typer.Argument(..., help="Channel id to authorise."),
    client_secrets: Path | None = typer.Option(
        None, "--client-secrets", help="OAuth client JSON (Desktop app); default: $YOUTUBE_CLIENT_SECRETS."
    ),
    port: int = typer.Option(0, help="Local port for Google's redirect (0: any free port)."),
    open_browser: bool = typer.Option(False, "--open-browser/--no-open-browser", help="Open the consent page."),
    timeout: int = typer.Option(600, help="Seconds to wait for the browser to come back."),
) -> None:
    """Sign a channel in to YouTube (installed-app OAuth) and store its token encrypted."""
    from vidgen.providers.youtube_auth import TokenStore, run_installed_app_flow

    channels = _channels_or_fail()
    target = channel_for_notion_value(channels, channel)
    if target is None:
        fail(f"unknown channel {channel!r}; known: {', '.join(channels)}")
        return
    settings = ProviderSettings.from_env()
    secrets = client_secrets or settings.youtube_client_secrets
    if secrets is None:
        fail("no OAuth client secrets: pass --client-secrets PATH or set YOUTUBE_CLIENT_SECRETS")
        return
    if target.providers.publisher != "youtube":
        console.print(
            f"note: {target.id} publishes with {target.providers.publisher!r}; the token is kept for when it "
            "switches to youtube", soft_wrap=True,
        )
    try:
        store = TokenStore.from_settings(settings)
        run_installed_app_flow(target.id, secrets, store, port=port, open_browser=open_browser,
                               timeout_seconds=timeout)
    except ProviderError as e:
        fail(_plain(e))
        return
    console.print(f"[green]stored an encrypted YouTube token for {target.id}[/] at {store.path_for(target.id)}",
                  soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `vidgen channels list|check|auth` to `app`."""
    channels_app.command("list")(list_channels)
    channels_app.command("check")(check)
    channels_app.command("auth")(auth)
    app.add_typer(channels_app, name="channels")
