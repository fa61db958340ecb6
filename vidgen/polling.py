"""One look at the Notion board: what to start, what to send back to Draft, which reviews were decided.

`poll_once` is the whole of what the orchestrator's schedule does with Notion each minute. It costs
one request when nothing is waiting, one more (the duplicate-title check) when something is
Queued, and one write per refused entry. A page that cannot be understood is reported, never
allowed to stop the others from being handled.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone

from pydantic import BaseModel, Field

from vidgen.channels import Channel, channel_for_notion_value
from vidgen.errors import VidgenError
from vidgen.models import ReviewAction, ReviewVerdict, VideoEntry
from vidgen.notion.errors import NotionNotFound
from vidgen.notion.gateway import NotionGateway
from vidgen.notion.schema import REVIEW_APPROVE, REVIEW_REJECT
from vidgen.statuses import GATE_REDO, REVIEW_STATUSES, NotionStatus
from vidgen.validation import validate_entry

log = logging.getLogger(__name__)

MAX_REDO_ITEMS = 500  # a typo like "redo: 1-100000" must not become a hundred thousand scenes


class RejectedEntry(BaseModel):
    entry: VideoEntry
    reasons: list[str]


class ReviewRequest(BaseModel):
    entry: VideoEntry
    verdict: ReviewVerdict


class PollResult(BaseModel):
    to_start: list[VideoEntry] = Field(default_factory=list, description="valid Queued entries, fair order")
    rejected: list[RejectedEntry] = Field(default_factory=list, description="invalid Queued entries (sent to Draft)")
    decisions: list[ReviewRequest] = Field(default_factory=list, description="reviews decided on the board")
    problems: list[RejectedEntry] = Field(
        default_factory=list, description="pages the poll could not act on, left as they are (or whose write-back failed)"
    )
    requests: int = Field(default=0, description="Notion requests this poll spent")
    gone: bool = Field(default=False, description="poll_page only: the page is in the trash or no longer exists")


_REDO_WORD = re.compile(r"\bredo\b", re.IGNORECASE)
_SCENES_WORD = re.compile(r"scenes?", re.IGNORECASE)
_AND_WORD = re.compile(r"and\b", re.IGNORECASE)
_DASHES = "-\u2013"
MAX_SCENE_DIGITS = 9  # "redo 99999…" (thousands of digits) is no scene number, and int() of it would raise


class _Cursor:
    """A forward-only reader over one Review Notes text.

    The redo grammar is read by hand, never by a regex with nested or adjacent quantifiers: every
    step either consumes characters or stops, so a text is read in time linear in its length
    (the old single regex backtracked quadratically on "redo" followed by 50,000 spaces).
    """

    def __init__(self, text: str, pos: int) -> None:
        self.text = text
        self.pos = pos

    def spaces(self) -> int:
        """Skip whitespace; how many characters were skipped."""
        start, text = self.pos, self.text
        while self.pos < len(text) and text[self.pos].isspace():
            self.pos += 1
        return self.pos - start

    def digits(self) -> str:
        start, text = self.pos, self.text
        while self.pos < len(text) and text[self.pos].isdecimal():
            self.pos += 1
        return text[start:self.pos]

    def take(self, chars: str) -> bool:
        """Consume one character if it is one of `chars`."""
        if self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1
            return True
        return False

    def word(self, pattern: re.Pattern[str]) -> bool:
        """Consume `pattern` if it matches here (patterns used are bounded words, not quantified runs)."""
        found = pattern.match(self.text, self.pos)
        if found:
            self.pos = found.end()
        return bool(found)

    def item(self) -> tuple[str, str] | None:
        """One "N" or "N-M" item, or None (cursor unmoved) when none starts here."""
        first = self.digits()
        if not first:
            return None
        after_first = self.pos
        self.spaces()
        if self.take(_DASHES):
            self.spaces()
            second = self.digits()
            if second:
                return first, second
        self.pos = after_first
        return first, ""

    def separator(self) -> bool:
        """Consume a list separator (",", ";", "&", "and" or whitespace) when an item follows it."""
        start = self.pos
        skipped = self.spaces()
        if self.take(",;&"):
            self.spaces()
        elif skipped and self.word(_AND_WORD):
            self.spaces()
        elif not skipped:
            self.pos = start
            return False
        if self.pos < len(self.text) and self.text[self.pos].isdecimal():
            return True
        self.pos = start
        return False


def _redo_items(notes: str) -> Iterator[tuple[str, str]]:
    """Every "N" / "N-M" item written after a "redo" (optionally "redo scenes", "redo:", "redo -")."""
    for keyword in _REDO_WORD.finditer(notes):
        cursor = _Cursor(notes, keyword.end())
        before_scenes = cursor.pos
        if not (cursor.spaces() and cursor.word(_SCENES_WORD)):
            cursor.pos = before_scenes
        cursor.spaces()
        cursor.take(":-")
        cursor.spaces()
        item = cursor.item()
        while item is not None:
            yield item
            item = cursor.item() if cursor.separator() else None


def parse_redo(notes: str) -> list[int]:
    """Scene indexes a reviewer asked to make again: "redo: 2, 4" -> [2, 4]; "redo 1-3" -> [1, 2, 3].

    Linear in the length of `notes` (see `_Cursor`); numbers longer than `MAX_SCENE_DIGITS` digits
    are ignored and at most `MAX_REDO_ITEMS` scenes are returned. Never raises.
    """
    found: set[int] = set()
    for start_s, end_s in _redo_items(notes or ""):
        if len(start_s) > MAX_SCENE_DIGITS or len(end_s) > MAX_SCENE_DIGITS:
            continue
        start = int(start_s)
        end = int(end_s) if end_s else start
        low, high = min(start, end), max(start, end)
        found.update(range(low, min(high, low + MAX_REDO_ITEMS - 1) + 1))
        if len(found) >= MAX_REDO_ITEMS:
            return sorted(found)[:MAX_REDO_ITEMS]
    return sorted(found)


def review_verdict(entry: VideoEntry) -> ReviewVerdict | None:
    """The decision a page shows, or None when it shows none the poll can read."""
    status = entry.notion_status
    if status is NotionStatus.REVIEW_APPROVED:
        action = ReviewAction.APPROVE
    elif status is NotionStatus.REVIEW_REJECTED:
        action = ReviewAction.REJECT
    elif status in REVIEW_STATUSES and entry.review == REVIEW_APPROVE:
        action = ReviewAction.APPROVE
    elif status in REVIEW_STATUSES and entry.review == REVIEW_REJECT:
        action = ReviewAction.REJECT
    else:
        return None
    return ReviewVerdict(action=action, notes=entry.review_notes, redo=parse_redo(entry.review_notes))


def _channel_key(entry: VideoEntry, channels: dict[str, Channel]) -> str:
    found = channel_for_notion_value(channels, entry.channel)
    return found.id if found else (entry.channel or "")


_OLDEST = datetime.min.replace(tzinfo=timezone.utc)


def _age_key(entry: VideoEntry) -> tuple[datetime, str]:
    return (entry.created_time or _OLDEST, entry.page_id)


def _queue_key(entry: VideoEntry) -> tuple[int, datetime, str]:
    return (entry.priority_value.rank, *_age_key(entry))


def fair_order(entries: Iterable[VideoEntry], channels: dict[str, Channel]) -> list[VideoEntry]:
    """Round-robin across channels so one busy channel cannot starve the others; within a channel
    High before Normal before Low, then oldest first. The round starts with the channel whose next
    entry is the most urgent."""
    lanes: dict[str, list[VideoEntry]] = {}
    for entry in entries:
        lanes.setdefault(_channel_key(entry, channels), []).append(entry)
    queues = sorted((sorted(lane, key=_queue_key) for lane in lanes.values()), key=lambda lane: _queue_key(lane[0]))
    ordered: list[VideoEntry] = []
    for depth in range(max((len(q) for q in queues), default=0)):
        ordered.extend(q[depth] for q in queues if depth < len(q))
    return ordered


def rejection_text(reasons: list[str]) -> str:
    """The Error column text for a refused entry: what is wrong and how to try again."""
    lines = "\n".join(f"• {r}" for r in reasons)
    return f"Not started — fix the following, then set Status to Queued again:\n{lines}"


def _duplicate_peers(entry: VideoEntry, queued: list[VideoEntry], titled: list[VideoEntry]) -> list[VideoEntry]:
    """Entries `entry`'s title may clash with. Among entries queued together only older ones count,
    so the first of two identical requests is made and the second is sent back."""
    queued_ids = {q.page_id for q in queued}
    peers = [t for t in titled if t.page_id not in queued_ids]
    peers.extend(q for q in queued if _age_key(q) < _age_key(entry))
    return peers


def is_work(entry: VideoEntry) -> bool:
    """Whether `find_work`'s query (`work_filter` in the gateway) would return this page: the same
    rule, read off one page that was fetched on its own. tests/test_polling.py checks that the two agree."""
    status = entry.notion_status
    if entry.archived or status is None:
        return False
    if status is NotionStatus.QUEUED:
        return True
    if status in GATE_REDO:
        return bool(entry.review)
    if status in (NotionStatus.REVIEW_APPROVED, NotionStatus.REVIEW_REJECTED):
        return bool(entry.run_url)
    return False


def _read_decisions(work: list[VideoEntry], result: PollResult) -> None:
    """Review decisions shown by pages that are not Queued; pages showing none readable are problems."""
    for entry in work:
        if entry.notion_status is NotionStatus.QUEUED:
            continue
        verdict = review_verdict(entry)
        if verdict is None:
            result.problems.append(
                RejectedEntry(
                    entry=entry,
                    reasons=[f"Review {entry.review!r} at status {entry.status!r} is not a decision the pipeline understands "
                             f"— set Review to {REVIEW_APPROVE} or {REVIEW_REJECT}"],
                )
            )
        else:
            result.decisions.append(ReviewRequest(entry=entry, verdict=verdict))


def _judge_queued(
    gateway: NotionGateway, channels: dict[str, Channel], queued: list[VideoEntry], result: PollResult, *, write_back: bool
) -> None:
    """Validate the Queued entries in `queued`: the valid go to `to_start` in fair order, the invalid
    back to Draft with their reasons. Other Queued pages with the same titles count as queued
    together (the oldest wins), whether or not they are in `queued`."""
    if not queued:
        return
    titles = {e.title for e in queued} | {e.title.strip() for e in queued}
    titled = gateway.find_titled(titles)
    judged = {e.page_id for e in queued}
    together = queued + [t for t in titled if t.notion_status is NotionStatus.QUEUED and t.page_id not in judged]
    valid: list[VideoEntry] = []
    for entry in sorted(queued, key=_age_key):
        reasons = validate_entry(entry, channels, others=_duplicate_peers(entry, together, titled))
        if not reasons:
            valid.append(entry)
            continue
        log.warning("Notion entry %s (%r) not started: %s", entry.page_id, entry.title, "; ".join(reasons))
        shown = entry
        if write_back:
            try:
                shown = gateway.update_entry(entry, status=NotionStatus.DRAFT, error=rejection_text(reasons))
            except (VidgenError, ValueError) as exc:
                result.problems.append(RejectedEntry(entry=entry, reasons=[f"could not write the reasons back: {exc}"]))
        result.rejected.append(RejectedEntry(entry=shown, reasons=reasons))
    result.to_start = fair_order(valid, channels)


def _classify(gateway: NotionGateway, channels: dict[str, Channel], work: list[VideoEntry], *, write_back: bool) -> PollResult:
    """What the orchestrator makes of `work` (pages `is_work` holds for): the rules of every poll."""
    result = PollResult()
    _read_decisions(work, result)
    _judge_queued(gateway, channels, [e for e in work if e.notion_status is NotionStatus.QUEUED], result, write_back=write_back)
    return result


def poll_once(gateway: NotionGateway, channels: dict[str, Channel], *, write_back: bool = True) -> PollResult:
    """Look at the board once; with `write_back`, refused entries are moved Queued -> Draft with their reasons."""
    start = gateway.requests_sent
    result = _classify(gateway, channels, gateway.find_work(), write_back=write_back)
    result.requests = gateway.requests_sent - start
    return result


def poll_page(
    gateway: NotionGateway, channels: dict[str, Channel], page_id: str, *, write_back: bool = True
) -> PollResult:
    """What `poll_once` would make of one page (a webhook named it), by the same rules.

    The page is read once. A page in the trash, or gone, or in another data source sets `gone`
    (its run, if any, should stop); a page that needs nothing gives an empty result.
    """
    start = gateway.requests_sent
    try:
        entry = gateway.get_entry(page_id)
    except NotionNotFound:
        log.info("Notion page %s does not exist (or is not shared with the integration)", page_id)
        return PollResult(gone=True, requests=gateway.requests_sent - start)
    ours = gateway.data_source_id is None or (entry.data_source_id or "").replace("-", "") == gateway.data_source_id.replace("-", "")
    if not ours:
        log.info("Notion page %s is not in the pipeline's database; ignored", page_id)
        return PollResult(requests=gateway.requests_sent - start)
    if entry.archived:
        return PollResult(gone=True, requests=gateway.requests_sent - start)
    result = _classify(gateway, channels, [entry] if is_work(entry) else [], write_back=write_back)
    result.requests = gateway.requests_sent - start
    return result
