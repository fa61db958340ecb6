"""`vidgen webhooks pending|accept`: a person chooses the key Notion's webhook events are signed with.

The receiver holds every verification token that arrives as a candidate, because anyone who can
reach it can send one. The person who created the subscription in Notion saw the token Notion
sent (the receiver prints it once), pastes it into Notion's form, and accepts the same value here.
"""

from __future__ import annotations

from datetime import datetime, timezone

import typer

from vidgen.cli.common import console, fail
from vidgen.config import Paths, mask_secret, notion_settings
from vidgen.webhooks import ReceiverConfig
from vidgen.webhooks.store import CandidateTokens, NotACandidate, VerificationTokenStore, accept_token

webhooks_app = typer.Typer(help="Notion webhooks: the verification tokens that arrived, and the key to sign with.", no_args_is_help=True)


def _config(paths: Paths) -> ReceiverConfig:
    return ReceiverConfig.from_paths(paths)


@webhooks_app.command("pending")
def pending(reveal: bool = typer.Option(False, "--reveal", help="print the tokens in full (to paste into Notion)")) -> None:
    """The verification tokens that arrived in the last hour and wait to be accepted."""
    config = _config(Paths.from_env())
    waiting = CandidateTokens(config.candidates_file).pending()
    if not waiting:
        console.print("No verification token is waiting (they expire after an hour).", markup=False)
        return
    for candidate in waiting:
        when = datetime.fromtimestamp(candidate.received_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        console.print(f"{when}  {candidate.token if reveal else mask_secret(candidate.token)}", markup=False)
    console.print("Accept the one Notion showed you with `uv run vidgen webhooks accept TOKEN`.", markup=False)


@webhooks_app.command("accept")
def accept(token: str = typer.Argument(..., help="the verification token, as pasted into Notion's form")) -> None:
    """Make a verification token that arrived the key Notion's events must be signed with."""
    paths = Paths.from_env()
    config = _config(paths)
    try:
        accept_token(VerificationTokenStore(config.token_file), CandidateTokens(config.candidates_file), token.strip())
    except NotACandidate as exc:
        fail(str(exc))
    console.print(f"Accepted {mask_secret(token.strip())}: events signed with it are acted on from now on.", markup=False)
    settings = notion_settings(paths)
    if settings is not None and settings.webhook_token and settings.webhook_token != token.strip():
        console.print(
            f"Note: NOTION_WEBHOOK_TOKEN ({mask_secret(settings.webhook_token)}) is set in the configuration and wins; "
            "remove it for the accepted token to be used.",
            markup=False,
        )


def register(app: typer.Typer) -> None:
    app.add_typer(webhooks_app, name="webhooks")
