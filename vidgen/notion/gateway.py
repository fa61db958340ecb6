"""The one way vidgen talks to Notion: `NotionGateway`, on an unmodified `notion_client.Client`.

Everything that crosses the wire goes through `_send`, which paces requests with the shared token
bucket, retries what is worth retrying (tenacity, exponential backoff with jitter, Retry-After
honoured), counts requests (the poll's cost is a product requirement), and turns every failure
into a typed `NotionError` whose message says what to do.

notion-client's own retry loop is switched off: two retry loops would multiply attempts, and the
limiter and counter must see every attempt.
"""

from __future__ import annotations

import io
import itertools
import logging
import random
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import httpx
from notion_client import Client
from notion_client.errors import HTTPResponseError, InvalidPathParameterError, RequestTimeoutError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_before_delay

from vidgen.channels import Channel
from vidgen.config import DEFAULT_LOCAL_NOTION_PORT, NotionSettings, is_loopback_url
from vidgen.errors import VidgenError, parse_retry_after
from vidgen.models import Priority, VideoEntry
from vidgen.notion import properties as P
from vidgen.notion.errors import (
    NotionInvalidEntry,
    NotionNotFound,
    NotionRateLimited,
    NotionUnauthorized,
    NotionUnavailable,
)
from vidgen.notion.ids import InvalidNotionId, notion_id
from vidgen.notion.ratelimit import DEFAULT_NOTION_URL, Limiter, RetryPolicy, shared_limiter
from vidgen.notion.schema import DATABASE_TITLE, Prop, channel_options, database_properties, property_type
from vidgen.statuses import GATE_REDO, NotionStatus, check_transition

T = TypeVar("T")
log = logging.getLogger(__name__)

PAGE_SIZE = 100  # Notion's maximum page size
SINGLE_PART_MAX_BYTES = 20_000_000  # File Upload API: one send takes up to 20 MB; larger files go in parts
MULTI_PART_BYTES = 10_000_000  # each part 5-20 MB (the last may be smaller)
_UNSET: Any = object()  # update_entry(review=...) sentinel: None means "clear", so absence needs its own value


def _status_is(status: NotionStatus) -> dict[str, Any]:
    return {"property": Prop.STATUS, "select": {"equals": status.value}}


def work_filter() -> dict[str, Any]:
    """The filter of the one query a poll makes: every page that needs the orchestrator, nothing else.

    - Queued: waiting to be started.
    - A review-gate status with Review chosen: a reviewer decided at that gate.
    - Review Approved / Review Rejected with Run set: a reviewer moved the card at the final gate
      while a run may be waiting there. Run is the page's claim by a flow run: the orchestrator
      clears it (`run_url=""`) when it finds no run waiting for such a move, and a run that ends at
      one of these statuses clears it too; otherwise the page is returned by every poll.

    Kept at two levels of nesting, the most Notion accepts.
    """
    gate_decided = [
        {"and": [_status_is(status), {"property": Prop.REVIEW, "select": {"is_not_empty": True}}]}
        for status in GATE_REDO
    ]
    final_moved = [
        {"and": [_status_is(status), {"property": Prop.RUN, "url": {"is_not_empty": True}}]}
        for status in (NotionStatus.REVIEW_APPROVED, NotionStatus.REVIEW_REJECTED)
    ]
    return {"or": [_status_is(NotionStatus.QUEUED), *gate_decided, *final_moved]}


WORK_SORTS: list[dict[str, str]] = [
    {"property": Prop.PRIORITY, "direction": "ascending"},
    {"timestamp": "created_time", "direction": "ascending"},
]


def _retry_after(exc: BaseException) -> float | None:
    if isinstance(exc, HTTPResponseError) and exc.status == 429:
        return parse_retry_after(exc.headers.get("retry-after"))
    return None


def _is_rate_limited(exc: BaseException) -> bool:
    return isinstance(exc, HTTPResponseError) and (exc.status == 429 or str(exc.code) == "rate_limited")


def _never_arrived(exc: BaseException) -> bool:
    """True when the request certainly did not reach the server, so even a create may be resent."""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return True
    return isinstance(exc, RequestTimeoutError) and isinstance(exc.__context__, httpx.ConnectTimeout)


def _is_transient(exc: BaseException, idempotent: bool) -> bool:
    """Worth another attempt. Non-idempotent calls (creating a page) only retry when the server
    certainly did nothing (429, connection never made): a retried create after a lost response
    would make the entry twice."""
    if _is_rate_limited(exc) or _never_arrived(exc):
        return True
    if not idempotent:
        return False
    if isinstance(exc, HTTPResponseError):
        return exc.status >= 500 or exc.status == 409
    return isinstance(exc, (RequestTimeoutError, httpx.TransportError))


class NotionGateway:
    """The "Video Pipeline" database, read and written the way the pipeline needs it."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str | None = None,
        data_source_id: str | None = None,
        client: httpx.Client | Client | None = None,
        limiter: Limiter | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 30.0,
    ):
        """`client` is either the httpx.Client to send through (for transports and event hooks) or
        a ready notion_client.Client (used as is, including its own retry settings)."""
        self.base_url = base_url.rstrip("/") if base_url else None
        self.data_source_id = data_source_id
        self.limiter = limiter if limiter is not None else shared_limiter(self.base_url, token)
        self.retry = retry or RetryPolicy()
        self._counter = itertools.count(1)
        self._requests = 0
        if isinstance(client, Client):
            self._notion = client
            self._owns_http = False
        else:
            self._owns_http = client is None
            self._notion = Client(
                client=client,
                auth=token,
                base_url=self.base_url or DEFAULT_NOTION_URL,
                timeout_ms=int(timeout_s * 1000),
                retry=False,
                logger=logging.getLogger("vidgen.notion.http"),
                log_level=logging.ERROR,  # failures become NotionErrors; notion-client's warnings would be noise
            )

    @classmethod
    def from_settings(cls, settings: NotionSettings, **kwargs: Any) -> NotionGateway:
        return cls(settings.token, base_url=settings.base_url, data_source_id=settings.data_source_id, **kwargs)

    def close(self) -> None:
        if self._owns_http:
            self._notion.close()

    def __enter__(self) -> NotionGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return self.base_url or DEFAULT_NOTION_URL

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far, retries included: what the Notion quota has been charged."""
        return self._requests

    # --- sending --------------------------------------------------------------------------------

    def _attempt(self, call: Callable[[], T]) -> T:
        self.limiter.acquire()
        self._requests = next(self._counter)
        try:
            return call()
        except HTTPResponseError as exc:
            retry_after = _retry_after(exc)
            if retry_after:
                self.limiter.hold_off(retry_after)
            raise

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = _retry_after(exc) if exc else None
        if retry_after is not None:
            return retry_after
        policy = self.retry
        backoff = min(policy.max_wait_s, policy.initial_wait_s * 2 ** (state.attempt_number - 1))
        return backoff + random.uniform(0, policy.jitter_s)

    def _stop(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = _retry_after(exc) if exc else None
        if retry_after is not None and retry_after > self.retry.max_retry_after_s:
            return True  # told to wait longer than we are willing to: report it now, with the delay
        stop = stop_after_attempt(self.retry.attempts) | stop_before_delay(self.retry.max_total_s)
        return stop(state)

    def _send(self, call: Callable[[], T], *, target: str, idempotent: bool = True) -> T:
        retrying = Retrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception(lambda e: _is_transient(e, idempotent)),
            reraise=True,
        )
        try:
            return retrying(self._attempt, call)
        except VidgenError:
            raise
        except Exception as exc:
            translated = self._translate(exc, target)
            if translated is None:
                raise
            raise translated from exc

    def _unavailable(self, detail: str) -> NotionUnavailable:
        if is_loopback_url(self.url):
            port = urlparse(self.url).port
            serve = "uv run vidgen notion serve" + (f" --port {port}" if port and port != DEFAULT_LOCAL_NOTION_PORT else "")
            hint = f"start it with `{serve}` or check NOTION_BASE_URL"
        else:
            hint = "check the network, or start the local server with `uv run vidgen notion serve` and set NOTION_BASE_URL"
        return NotionUnavailable(f"Notion at {self.url} is not reachable — {hint} ({detail})", base_url=self.url)

    def _translate(self, exc: Exception, target: str) -> VidgenError | None:
        url = self.url
        if isinstance(exc, HTTPResponseError):
            status, code = exc.status, str(getattr(exc.code, "value", exc.code))
            if _is_rate_limited(exc):
                retry_after = _retry_after(exc)
                wait = f"; Notion asks to wait {retry_after:.0f} s" if retry_after else ""
                return NotionRateLimited(
                    f"Notion at {url} is rate limiting this token{wait} — another process is using the same "
                    "integration; try again shortly",
                    base_url=url,
                    retry_after=retry_after,
                )
            if status == 401 or code == "unauthorized":
                return NotionUnauthorized(
                    f"Notion at {url} refused the token (HTTP 401) — check NOTION_TOKEN "
                    "(or run `uv run vidgen notion init` to save the right one)",
                    base_url=url,
                )
            if status == 403 or code == "restricted_resource":
                return NotionUnauthorized(
                    f"Notion at {url} denied access to {target} (HTTP 403) — share the database with the "
                    "integration, or check NOTION_TOKEN",
                    base_url=url,
                )
            if code in ("object_not_found",) or (status == 404 and code != "notionhq_client_response_error"):
                return NotionNotFound(
                    f"Notion {target} was not found at {url} — run `uv run vidgen notion init` to create the "
                    "database (or share it with the integration)",
                    base_url=url,
                )
            if code in ("validation_error", "invalid_request", "invalid_json", "invalid_request_url"):
                return NotionInvalidEntry(f"Notion refused the request for {target}: {exc}", base_url=url)
            if status >= 500 or status == 409:
                return self._unavailable(f"HTTP {status} after {self.retry.attempts} attempts")
            return self._unavailable(f"HTTP {status} from something that is not the Notion API")
        if isinstance(exc, RequestTimeoutError):
            return self._unavailable("timed out")
        if isinstance(exc, httpx.ConnectError):
            return self._unavailable("connection refused")
        if isinstance(exc, httpx.TransportError):
            return self._unavailable(type(exc).__name__)
        if isinstance(exc, InvalidPathParameterError):
            return NotionNotFound(f"Notion {target}: not a valid id ({exc})", base_url=url)
        return None

    def _require_data_source(self) -> str:
        if not self.data_source_id:
            raise NotionNotFound(
                "No Notion database is configured (NOTION_DATA_SOURCE_ID is not set) — run `uv run vidgen notion init`",
                base_url=self.url,
            )
        return notion_id(self.data_source_id, "NOTION_DATA_SOURCE_ID")

    @staticmethod
    def _entry(page: Any) -> VideoEntry:
        """A page from Notion's answer as an entry; its id is checked before anything puts it in a URL or path."""
        entry = P.entry_from_page(page)
        notion_id(entry.page_id, "page id in Notion's answer")
        return entry

    # --- database -------------------------------------------------------------------------------

    def create_database(
        self, *, parent_page_id: str | None, title: str = DATABASE_TITLE, channels: dict[str, Channel]
    ) -> tuple[str, str]:
        """Create the database and return (database_id, data_source_id); the gateway then uses it."""
        parent: dict[str, Any] = (
            {"type": "page_id", "page_id": parent_page_id} if parent_page_id else {"type": "workspace", "workspace": True}
        )
        for option in channel_options(channels):
            P.select_value(option["name"])  # refuse an impossible option before creating anything
        response = self._send(
            lambda: self._notion.databases.create(
                parent=parent,
                title=P.rich_text(title),
                initial_data_source={"properties": database_properties(channels)},
            ),
            target=f"parent page {parent_page_id}" if parent_page_id else "workspace",
            idempotent=False,
        )
        sources = response.get("data_sources") or []
        if not sources:
            raise NotionInvalidEntry(f"Notion created database {response.get('id')} without a data source", base_url=self.url)
        self.data_source_id = notion_id(str(sources[0]["id"]), "data source id in Notion's answer")
        return str(response["id"]), self.data_source_id

    def sync_channel_options(self, channels: dict[str, Channel]) -> bool:
        """Add missing Channel options (and any column a newer vidgen expects); True if it wrote.

        Reading costs one request; writing happens only when something is missing, so running
        `vidgen notion init` again is cheap and safe. Existing options are sent back unchanged
        because Notion replaces the option list with what it is given.
        """
        ds_id = self._require_data_source()
        target = f"data source {ds_id}"
        source = self._send(lambda: self._notion.data_sources.retrieve(ds_id), target=target)
        if source.get("in_trash") or source.get("archived"):
            raise NotionNotFound(
                f"Notion {target} at {self.url} is in the trash — restore it, or run `uv run vidgen notion init`",
                base_url=self.url,
            )
        existing = source.get("properties") or {}
        wanted = database_properties(channels)
        retyped = [
            f"{name} is {property_type(existing[name])!r} (vidgen needs {property_type(spec)!r})"
            for name, spec in wanted.items()
            if name in existing and property_type(existing[name]) != property_type(spec)
        ]
        if retyped:
            # Changing a column's type back would convert (and may lose) what people typed in it.
            raise NotionInvalidEntry(
                f"Notion {target} has columns of the wrong type: {'; '.join(retyped)} — change them back in "
                "Notion, or run `uv run vidgen notion init` with a fresh VIDGEN_HOME to make a new database",
                base_url=self.url,
            )
        update: dict[str, Any] = {name: spec for name, spec in wanted.items() if name not in existing}
        if Prop.CHANNEL not in update:
            current = (existing[Prop.CHANNEL].get("select") or {}).get("options") or []
            have = {o.get("name") for o in current}
            missing = [o for o in channel_options(channels) if o["name"] not in have]
            for option in missing:
                P.select_value(option["name"])
            if missing:
                kept = [{k: o[k] for k in ("id", "name") if k in o} for o in current]
                update[Prop.CHANNEL] = {"select": {"options": [*kept, *missing]}}
        if not update:
            return False
        self._send(lambda: self._notion.data_sources.update(ds_id, properties=update), target=target)
        return True

    # --- entries --------------------------------------------------------------------------------

    def create_entry(
        self,
        *,
        title: str,
        channel: str,
        topic: str,
        story_direction: str = "",
        priority: Priority | str = Priority.NORMAL,
        status: NotionStatus | str = NotionStatus.DRAFT,
    ) -> VideoEntry:
        """A new page; `channel` is the Channel option (the channel's `notion_value`)."""
        ds_id = self._require_data_source()
        props = P.new_entry_properties(
            title=title,
            channel=channel,
            topic=topic,
            story_direction=story_direction,
            priority=Priority(priority),
            status=NotionStatus(status),
            now=datetime.now(timezone.utc),
        )
        page = self._send(
            lambda: self._notion.pages.create(parent={"type": "data_source_id", "data_source_id": ds_id}, properties=props),
            target=f"data source {ds_id}",
            idempotent=False,
        )
        return self._entry(page)

    def get_entry(self, page_id: str) -> VideoEntry:
        notion_id(page_id)
        page = self._send(lambda: self._notion.pages.retrieve(page_id), target=f"page {page_id}")
        return self._entry(page)

    def _query(self, *, filter: dict[str, Any] | None = None, sorts: list[dict[str, Any]] | None = None) -> list[VideoEntry]:
        """Every matching non-archived page, PAGE_SIZE per request."""
        ds_id = self._require_data_source()
        body: dict[str, Any] = {"page_size": PAGE_SIZE}
        if filter is not None:
            body["filter"] = filter
        if sorts is not None:
            body["sorts"] = sorts
        entries: list[VideoEntry] = []
        cursor: str | None = None
        while True:
            kwargs = {**body, "start_cursor": cursor} if cursor else body
            response = self._send(
                lambda: self._notion.data_sources.query(ds_id, **kwargs), target=f"data source {ds_id}"
            )
            for page in response.get("results") or []:
                if isinstance(page, dict) and page.get("object", "page") == "page":
                    try:
                        entry = self._entry(page)
                    except InvalidNotionId as exc:  # one odd page must not stop a poll over the others
                        log.warning("skipped a page of data source %s: %s", ds_id, exc)
                        continue
                    if not entry.archived:
                        entries.append(entry)
            cursor = response.get("next_cursor")
            if not response.get("has_more") or not cursor:
                return entries

    def list_entries(self) -> list[VideoEntry]:
        """All non-archived entries, oldest first."""
        return self._query(sorts=[{"timestamp": "created_time", "direction": "ascending"}])

    def find_work(self) -> list[VideoEntry]:
        """Pages that need the orchestrator (see `work_filter`), by priority then age.

        One query: an idle poll costs one request however large the database is.
        """
        return self._query(filter=work_filter(), sorts=WORK_SORTS)

    def find_titled(self, titles: Iterable[str]) -> list[VideoEntry]:
        """Non-archived entries whose title is exactly one of `titles` (for duplicate checks).

        Asks for the titles only, so the cost does not grow with the database; 100 titles per
        query, the most conditions one Notion filter takes.
        """
        wanted = sorted({t for t in titles if t})
        found: dict[str, VideoEntry] = {}
        for i in range(0, len(wanted), 100):
            conditions = [{"property": Prop.TITLE, "title": {"equals": t}} for t in wanted[i : i + 100]]
            for entry in self._query(filter={"or": conditions}):
                found[entry.page_id] = entry
        return list(found.values())

    def update_entry(
        self,
        entry: VideoEntry,
        *,
        status: NotionStatus | str | None = None,
        error: str | None = None,
        cost_usd: float | None = None,
        video_url: str | None = None,
        workspace: str | None = None,
        run_url: str | None = None,
        review: str | None = _UNSET,
        review_notes: str | None = None,
    ) -> VideoEntry:
        """Write what changed and return the page as Notion now holds it.

        None leaves a field as it is; "" clears a text or URL field (`review=None` clears Review).
        A status move the board does not allow raises IllegalTransition before anything is sent,
        and when nothing differs from `entry` no request is made at all.
        """
        changes: dict[str, Any] = {}
        if status is not None:
            new_status = NotionStatus(status)
            old_status = entry.notion_status
            if old_status is None:
                if new_status not in (NotionStatus.DRAFT, NotionStatus.ARCHIVED):
                    raise NotionInvalidEntry(
                        f"page {entry.page_id} has status {entry.status!r}, which is not one of the 26; "
                        "it can only be moved to Draft or Archived",
                        base_url=self.url,
                    )
            else:
                check_transition(old_status, new_status)
            changes["status"] = new_status.value
        for field, value in (
            ("error", error),
            ("cost_usd", cost_usd),
            ("video_url", video_url),
            ("workspace", workspace),
            ("run_url", run_url),
            ("review_notes", review_notes),
        ):
            if value is not None:
                changes[field] = value
        if review is not _UNSET:
            changes["review"] = review
        payload = P.property_changes(entry, changes)
        if not payload:
            return entry
        payload[Prop.UPDATED] = P.date_value(datetime.now(timezone.utc))
        page_id = notion_id(entry.page_id)
        page = self._send(
            lambda: self._notion.pages.update(page_id, properties=payload), target=f"page {page_id}"
        )
        return self._entry(page)

    def archive(self, page_id: str) -> None:
        notion_id(page_id)
        """Move the page to Notion's trash (restorable there); it leaves every list and poll."""
        self._send(lambda: self._notion.pages.update(page_id, in_trash=True), target=f"page {page_id}")

    # --- page content: files and blocks ---------------------------------------------------------

    def upload_file(self, path: Path, content_type: str) -> str:
        """Upload a file with Notion's File Upload API and return the upload's id, to attach in a block
        within the hour. Up to 20 MB in one send (single_part); larger files go as 10 MB parts
        (multi_part) and are completed. A missing file raises OSError before any request."""
        size = path.stat().st_size
        target = f"file upload of {path.name}"
        if size <= SINGLE_PART_MAX_BYTES:
            data = path.read_bytes()
            created = self._send(
                lambda: self._notion.file_uploads.create(mode="single_part", filename=path.name, content_type=content_type),
                target=target, idempotent=False,
            )
            upload_id = notion_id(str(created["id"]), "file upload id in Notion's answer")
            self._send(lambda: self._notion.file_uploads.send(upload_id, file=(path.name, io.BytesIO(data), content_type)),
                       target=target)  # fmt: skip
            return upload_id
        parts = -(-size // MULTI_PART_BYTES)
        created = self._send(
            lambda: self._notion.file_uploads.create(mode="multi_part", filename=path.name, content_type=content_type,
                                                     number_of_parts=parts),
            target=target, idempotent=False,
        )  # fmt: skip
        upload_id = notion_id(str(created["id"]), "file upload id in Notion's answer")
        with path.open("rb") as handle:
            for number in range(1, parts + 1):
                chunk = handle.read(MULTI_PART_BYTES)
                self._send(
                    lambda chunk=chunk, number=number: self._notion.file_uploads.send(
                        upload_id, file=(path.name, io.BytesIO(chunk), content_type), part_number=str(number)),
                    target=f"{target} (part {number}/{parts})",
                )  # fmt: skip
        self._send(lambda: self._notion.file_uploads.complete(upload_id), target=target)
        return upload_id

    def append_blocks(self, parent_id: str, blocks: list[dict[str, Any]], after: str | None = None) -> list[dict[str, Any]]:
        """Append blocks under a page or block (after the sibling `after`, else at the end); the created blocks.
        Not retried on a lost answer: a resent append would add the blocks twice."""
        notion_id(parent_id, "block id")
        created: list[dict[str, Any]] = []
        for start in range(0, len(blocks), PAGE_SIZE):  # Notion takes at most 100 blocks per request
            batch = blocks[start : start + PAGE_SIZE]
            extra = {"after": after} if after else {}
            response = self._send(lambda batch=batch, extra=extra: self._notion.blocks.children.append(
                parent_id, children=batch, **extra), target=f"block {parent_id}", idempotent=False)  # fmt: skip
            created += response["results"]
            if after and created:
                after = str(created[-1]["id"])
        return created

    def list_blocks(self, parent_id: str) -> list[dict[str, Any]]:
        """Every child block of a page or block, all pages of the listing."""
        notion_id(parent_id, "block id")
        results: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            response = self._send(lambda cursor=cursor: self._notion.blocks.children.list(
                parent_id, start_cursor=cursor, page_size=PAGE_SIZE), target=f"block {parent_id}")  # fmt: skip
            results += response["results"]
            cursor = response.get("next_cursor")
            if not response.get("has_more") or not cursor:
                return results

    def delete_block(self, block_id: str) -> None:
        """Archive a block (Notion's delete moves it to the trash, children included)."""
        notion_id(block_id, "block id")
        self._send(lambda: self._notion.blocks.delete(block_id), target=f"block {block_id}")
