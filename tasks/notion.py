"""Notion as the status board: every read and write the flows make, as tagged, persisted tasks.

Results are persisted so a resumed run (which re-executes the flow from the top) does not write the
same status again. Card writes go through the durable outbox (`vidgen.notion.outbox`): while Notion
is unreachable or rate limiting they wait there, in order, and the video goes on.

Every call takes a slot of the `notion` tag (at most 3 calls at once), and every request a slot of the server-wide `notion-api` rate limit, so all flow runs together stay under
Notion's 3 requests/second.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prefect import get_run_logger, runtime, task
from prefect.cache_policies import DEFAULT
from prefect.concurrency.sync import rate_limit

from blocks.config import concurrency_config
from vidgen.config import Paths, notion_settings
from vidgen.errors import VidgenError
from vidgen.models import VideoEntry
from vidgen.notion.errors import NotionInvalidEntry, NotionNotFound
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.outbox import CardOutbox, Delivery, DroppedWrite, card_changes, outbox_path
from vidgen.statuses import NotionStatus


class NotionNotConfigured(VidgenError):
    pass


class EntryGone(VidgenError):
    """The page was deleted or archived while its video was being made: the run stops cleanly."""


class PrefectRateLimit:
    """The gateway's pacer inside flows: a slot of the server-wide `notion-api` rate limit, which every
    process's Notion calls share (one slot decaying at Notion's 3 requests/second, `vidgen setup`)."""

    def __init__(self, limit_name: str):
        self.limit_name = limit_name

    def acquire(self) -> float:
        rate_limit(self.limit_name, strict=False)
        return 0.0

    def hold_off(self, seconds: float) -> None:
        """Nothing to hold here: the gateway waits out a 429's Retry-After before it asks again."""


@lru_cache(maxsize=1)
def notion_gateway() -> NotionGateway:
    settings = notion_settings()
    if settings is None or not settings.data_source_id:
        raise NotionNotConfigured(
            "Notion is not configured: run `uv run vidgen notion init` (or set NOTION_TOKEN, "
            "NOTION_BASE_URL and NOTION_DATA_SOURCE_ID)"
        )
    return NotionGateway.from_settings(settings, limiter=PrefectRateLimit(concurrency_config().notion_rate_limit.name))


# No task-level retries: the gateway already retries 429s, 5xx and timeouts with backoff.
NOTION_TASK = {"tags": ["notion"], "persist_result": True}


@task(name="read-entry", **NOTION_TASK)
def read_entry(page_id: str) -> VideoEntry:
    return notion_gateway().get_entry(page_id)


def card_outbox() -> CardOutbox:
    """This machine's outbox of card writes, under VIDGEN_HOME (shared by its runs and its poller)."""
    return CardOutbox(outbox_path(Paths.from_env()))


CARD_WRITE_PREFIX = "card: "


def card_write_name() -> str:
    """A card write's run name: the status it writes, the fields, the round ("card: Assets Ready #2",
    "card: Processing + error, run_url #1", "card: + error #3"); `status_in_card_write` reads it back."""
    params = runtime.task_run.parameters
    status = params.get("status")
    fields = ", ".join(sorted(params.get("fields") or {}))
    what = " ".join(part for part in (getattr(status, "value", status) or "", f"+ {fields}" if fields else "") if part)
    return f"{CARD_WRITE_PREFIX}{what} #{params.get('round', 1)}"


def status_in_card_write(run_name: str) -> NotionStatus | None:
    """The status a card write's run (named by `card_write_name`) wrote; None for a fields-only write."""
    if not run_name.startswith(CARD_WRITE_PREFIX):
        return None
    what = run_name.removeprefix(CARD_WRITE_PREFIX).rsplit(" #", 1)[0]
    return NotionStatus.parse(what.split("+", 1)[0].strip() or None)


@task(name="update-card", task_run_name=card_write_name, cache_policy=DEFAULT - "entry", **NOTION_TASK)
def update_card(entry: VideoEntry, status: NotionStatus | None = None, round: int = 1, **fields: Any) -> VideoEntry:
    """Write a status (and fields) to the card and return the card as Notion now holds it, or, while
    Notion is unreachable or rate limiting, as it will hold it once the write waiting in the outbox
    is delivered: a Notion outage does not fail the video.

    Its cache key is what it writes (status, round, fields) in this flow run, never the card it
    starts from: a resumed run re-executing the flow finds each write done and sends nothing, while
    a redo round (a new `round`) writes its statuses again."""
    gateway = notion_gateway()
    logger = get_run_logger()
    outcome = card_outbox().write(gateway, entry, card_changes(status, **fields), logger=logger)
    if outcome.refused is not None:
        raise _refusal(gateway, entry, outcome.refused)
    if outcome.queued:
        logger.warning(
            "Card write %r waits in the outbox (%s; %d write(s) of this page waiting), delivered in order "
            "once Notion answers: production continues",
            status.value if status else "fields", outcome.delivery.outage or "another process is delivering this page",
            outcome.delivery.pending,
        )
    return outcome.card


def _refusal(gateway: NotionGateway, entry: VideoEntry, refused: DroppedWrite) -> Exception:
    """What a refused card write means for the run: EntryGone when the page was deleted or archived
    (Notion refuses edits to archived pages), else the refusal itself."""
    try:
        gone = refused.gone or gateway.get_entry(entry.page_id).archived
    except NotionNotFound:
        gone = True
    if gone:
        return EntryGone(f"the Notion page {entry.page_id} ({entry.title!r}) was deleted")
    return NotionInvalidEntry(refused.reason, base_url=gateway.url)


@task(name="deliver-card-writes", tags=["notion"])
def deliver_card_writes() -> Delivery:
    """Deliver the card writes that waited for Notion, in order (the poller does this first)."""
    return card_outbox().deliver(notion_gateway(), logger=get_run_logger())


@task(name="link-notion-page", persist_result=True)
def link_notion_page(entry: VideoEntry) -> str | None:
    """The card's address on the run (a link artifact), so the UI leads back to Notion."""
    from prefect.artifacts import create_link_artifact

    if not entry.url:
        return None
    create_link_artifact(link=entry.url, link_text=f"Notion: {entry.title}", description="The entry on the Notion board")
    return entry.url
