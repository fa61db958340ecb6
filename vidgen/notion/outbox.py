"""Card writes that wait for Notion: a durable outbox, ordered per page, delivered in order.

A video must not fail because Notion is down for a few minutes or rate limits a token: a status write
that the gateway gave up on (NotionUnavailable, NotionRateLimited, after its own retries) is kept
here and the run goes on with the card as it will be once delivered. Every card write passes
through the outbox (kept, then delivered at once when it can be), so a write never overtakes an
older one of the same page; the poller delivers whatever is left at the start of each poll.

The outbox is a SQLite file (`notion-outbox.sqlite` under VIDGEN_HOME): it survives a restart of
the process, and the runs and the poller of one machine share it. One process at a time delivers a
page (a claim with a lease, so a dead deliverer does not block the page for good; a claim whose
owner was a process on this host that is gone, a killed worker, is taken over at once).

A pending write is kept with the card it was made from (`base`), so it is sent exactly as it would
have been (`NotionGateway.update_entry` from that card): sending it again is harmless. Consecutive
writes of a page are coalesced into one request when the board allows the move from the first
write's card to the last write's status; later fields win, the others are kept.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from vidgen.config import Paths
from vidgen.models import VideoEntry
from vidgen.notion import properties as P
from vidgen.notion.errors import NotionInvalidEntry, NotionNotFound, NotionRateLimited, NotionUnavailable
from vidgen.notion.gateway import NotionGateway
from vidgen.statuses import TRANSITIONS, IllegalTransition, NotionStatus, check_transition

log = logging.getLogger(__name__)

# What "Notion is not answering" looks like once the gateway has retried: the write waits.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (NotionUnavailable, NotionRateLimited)
# Longer than one gateway write with all its retries (60 s) plus a request timeout (30 s).
CLAIM_LEASE_S = 300.0


def new_owner() -> str:
    """A deliverer's name: this host, this process, and a token for this delivery."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex}"


def owner_is_gone(owner: str) -> bool:
    """Whether a claim's owner was a process of this host that no longer runs (killed mid-delivery).
    Another host's owner, or one named otherwise, is never judged: its lease decides."""
    host, _, rest = owner.partition("/")
    pid_text = rest.partition("/")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


class Logger(Protocol):
    def warning(self, msg: str, *args: Any) -> None: ...


def outbox_path(paths: Paths) -> Path:
    """Where this machine's outbox lives: beside the other state under VIDGEN_HOME."""
    return paths.home / "notion-outbox.sqlite"


def card_changes(status: NotionStatus | str | None = None, **fields: Any) -> dict[str, Any]:
    """`update_entry`'s keyword arguments as a storable dict: None leaves a field alone (so it is not
    kept), except `review`, where None clears the reviewer's choice."""
    changes = {name: value for name, value in fields.items() if value is not None or name == "review"}
    if status is not None:
        changes["status"] = NotionStatus(status).value
    return changes


def expected_card(entry: VideoEntry, changes: dict[str, Any]) -> VideoEntry:
    """The card as Notion will hold it once `changes` are delivered.

    Refuses what the gateway would refuse before sending (an illegal status move, a value Notion
    cannot store), so a write that could never be delivered fails at once instead of waiting."""
    status = changes.get("status")
    if status is not None and entry.notion_status is not None:
        check_transition(entry.notion_status, NotionStatus(status))
    P.property_changes(entry, changes)  # raises NotionInvalidEntry for a value Notion would refuse
    update: dict[str, Any] = {}
    for field, value in changes.items():
        kind = P.WRITABLE_FIELDS[field][1]
        if kind == "text":
            stored: Any = P.stored_text(value or "")
            if stored == "" and VideoEntry.model_fields[field].default is None:
                stored = None  # e.g. Workspace: an empty text reads back as None
        elif kind == "number":
            stored = float(value)
        else:
            stored = str(value) if value else None
        update[field] = stored
    return entry.model_copy(update=update)


class PendingWrite(BaseModel):
    """One card write waiting for Notion (or several coalesced: `seqs` in the order they were made)."""

    seqs: list[int]
    page_id: str
    base: VideoEntry = Field(description="the card the write was made from: what Notion holds before it")
    changes: dict[str, Any] = Field(description="update_entry's keyword arguments (see `card_changes`)")

    def followed_by(self, later: PendingWrite) -> PendingWrite | None:
        """Both writes as one, or None when the board does not allow going straight to `later`'s status."""
        status = later.changes.get("status")
        if status is not None:
            old, new = self.base.notion_status, NotionStatus(status)
            if old is None or (new is not old and new not in TRANSITIONS[old]):
                return None
        return PendingWrite(
            seqs=self.seqs + later.seqs, page_id=self.page_id, base=self.base, changes={**self.changes, **later.changes}
        )


class DroppedWrite(BaseModel):
    """A write Notion refused for a reason waiting cannot fix; it left the outbox."""

    page_id: str
    seqs: list[int]
    changes: dict[str, Any]
    gone: bool = Field(description="the page no longer exists")
    reason: str


class Delivery(BaseModel):
    """What one delivery did."""

    delivered: list[int] = Field(default_factory=list, description="seqs of the writes that reached Notion")
    dropped: list[DroppedWrite] = Field(default_factory=list)
    pending: int = Field(default=0, description="writes still waiting afterwards (of the page, or of all pages)")
    outage: str | None = Field(default=None, description="why delivery stopped: Notion unreachable or rate limiting")
    card: VideoEntry | None = Field(default=None, description="the page as Notion answered the last delivered write")


class CardWrite(BaseModel):
    """What `CardOutbox.write` did with one card write."""

    card: VideoEntry = Field(description="the card as Notion holds it, or will once the write is delivered")
    queued: bool = Field(description="the write waits in the outbox")
    refused: DroppedWrite | None = None
    delivery: Delivery


class CardOutbox:
    """The pending card writes of this machine, in a SQLite file."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self._clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS pending_writes (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                "page_id TEXT NOT NULL, base TEXT NOT NULL, changes TEXT NOT NULL, queued_at TEXT NOT NULL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS pending_by_page ON pending_writes (page_id, seq)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS delivery_claims (page_id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
                "until REAL NOT NULL)"
            )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction on a fresh connection (safe across threads and processes). The
        default rollback journal, not WAL: WAL needs every process on one host, and workers in
        containers may share VIDGEN_HOME on a volume."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    # --- what is waiting ------------------------------------------------------------------------

    def pending(self, page_id: str | None = None) -> list[PendingWrite]:
        """Waiting writes, oldest first (of one page, or of all)."""
        query = "SELECT seq, page_id, base, changes FROM pending_writes"
        args: tuple[str, ...] = ()
        if page_id is not None:
            query, args = query + " WHERE page_id = ?", (page_id,)
        with self._transaction() as db:
            rows = db.execute(query + " ORDER BY seq", args).fetchall()
        return [
            PendingWrite(seqs=[seq], page_id=page, base=VideoEntry.model_validate_json(base), changes=json.loads(changes))
            for seq, page, base, changes in rows
        ]

    def count(self, page_id: str | None = None) -> int:
        query, args = "SELECT COUNT(*) FROM pending_writes", ()
        if page_id is not None:
            query, args = query + " WHERE page_id = ?", (page_id,)
        with self._transaction() as db:
            return int(db.execute(query, args).fetchone()[0])

    def _keep(self, entry: VideoEntry, changes: dict[str, Any]) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO pending_writes (page_id, base, changes, queued_at) VALUES (?, ?, ?, ?)",
                (entry.page_id, entry.model_dump_json(), json.dumps(changes), datetime.now(timezone.utc).isoformat()),
            )
            return int(cursor.lastrowid or 0)

    def _remove(self, seqs: list[int]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM pending_writes WHERE seq = ?", [(seq,) for seq in seqs])

    # --- who delivers a page --------------------------------------------------------------------

    def _claim(self, page_id: str, owner: str, logger: Logger = log) -> bool:
        """Take (or renew) the page's delivery; False while another deliverer's lease runs."""
        now = self._clock()
        with self._transaction() as db:
            row = db.execute("SELECT owner, until FROM delivery_claims WHERE page_id = ?", (page_id,)).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                if not owner_is_gone(row[0]):
                    return False
                logger.warning("Taking over the card writes of page %s from %s: that process is gone", page_id, row[0])
            db.execute(
                "INSERT OR REPLACE INTO delivery_claims (page_id, owner, until) VALUES (?, ?, ?)",
                (page_id, owner, now + CLAIM_LEASE_S),
            )
            return True

    def _release(self, page_id: str, owner: str, *, only_if_empty: bool) -> bool:
        """Give the page's delivery up; with `only_if_empty`, only when nothing of the page is waiting,
        checked in the same transaction, so a write kept meanwhile is never left without a deliverer."""
        with self._transaction() as db:
            if only_if_empty and db.execute("SELECT 1 FROM pending_writes WHERE page_id = ? LIMIT 1", (page_id,)).fetchone():
                return False
            db.execute("DELETE FROM delivery_claims WHERE page_id = ? AND owner = ?", (page_id, owner))
            return True

    # --- writing and delivering -----------------------------------------------------------------

    def write(
        self, gateway: NotionGateway, entry: VideoEntry, changes: dict[str, Any], *, logger: Logger = log
    ) -> CardWrite:
        """Keep the write, then deliver the page's writes in order; the card as Notion answered, or
        as it will be once the write is delivered when Notion is not answering (or another process
        is delivering this page right now). Refusals are reported in `refused`, never raised."""
        expected = expected_card(entry, changes)
        if not P.property_changes(entry, changes):
            return CardWrite(card=entry, queued=False, delivery=Delivery(pending=self.count(entry.page_id)))
        seq = self._keep(entry, changes)
        delivery = Delivery()
        self._deliver_page(gateway, entry.page_id, delivery, logger)
        delivery.pending = self.count(entry.page_id)
        refused = next((d for d in delivery.dropped if seq in d.seqs), None)
        delivered = seq in delivery.delivered
        card = delivery.card if delivered and delivery.card is not None else expected
        return CardWrite(card=card, queued=not delivered and refused is None, refused=refused, delivery=delivery)

    def deliver(self, gateway: NotionGateway, *, logger: Logger = log) -> Delivery:
        """Deliver every waiting write, page by page, oldest page first; stop at the first outage."""
        delivery = Delivery()
        pages = list(dict.fromkeys(write.page_id for write in self.pending()))
        for page_id in pages:
            self._deliver_page(gateway, page_id, delivery, logger)
            if delivery.outage is not None:
                break
        delivery.card = None  # several pages: no one card to report
        delivery.pending = self.count()
        return delivery

    def _deliver_page(self, gateway: NotionGateway, page_id: str, delivery: Delivery, logger: Logger) -> None:
        owner = new_owner()
        if not self._claim(page_id, owner, logger):
            return  # another process delivers this page, including what was just kept
        try:
            while True:
                waiting = self.pending(page_id)
                if not waiting:
                    if self._release(page_id, owner, only_if_empty=True):
                        return
                    continue
                batch = waiting[0]
                for later in waiting[1:]:
                    merged = batch.followed_by(later)
                    if merged is None:
                        break
                    batch = merged
                self._claim(page_id, owner)  # renew the lease for this request
                if not self._send(gateway, batch, delivery, logger):
                    return
        finally:
            self._release(page_id, owner, only_if_empty=False)

    def _send(self, gateway: NotionGateway, batch: PendingWrite, delivery: Delivery, logger: Logger) -> bool:
        """One request for `batch`; False when delivery of the page must stop (outage, page gone)."""
        try:
            delivery.card = gateway.update_entry(batch.base, **batch.changes)
        except OUTAGE_ERRORS as exc:
            delivery.outage = str(exc)
            return False
        except NotionNotFound as exc:  # the page is gone: none of its writes can ever land
            every = [write.seqs[0] for write in self.pending(batch.page_id)]
            self._drop(batch.model_copy(update={"seqs": every}), str(exc), delivery, logger, gone=True)
            return False
        except (NotionInvalidEntry, IllegalTransition) as exc:  # waiting cannot fix this one
            self._drop(batch, str(exc), delivery, logger, gone=False)
            return True
        self._remove(batch.seqs)
        delivery.delivered += batch.seqs
        return True

    def _drop(self, batch: PendingWrite, reason: str, delivery: Delivery, logger: Logger, *, gone: bool) -> None:
        dropped = DroppedWrite(page_id=batch.page_id, seqs=batch.seqs, changes=batch.changes, gone=gone, reason=reason)
        self._remove(dropped.seqs)
        delivery.dropped.append(dropped)
        what = "the page is gone" if dropped.gone else "Notion refused it"
        logger.warning(
            "Dropped %d card write(s) of Notion page %s (%s), %s: %s",
            len(dropped.seqs), dropped.page_id, dropped.changes.get("status", "fields only"), what, dropped.reason,
        )  # fmt: skip
