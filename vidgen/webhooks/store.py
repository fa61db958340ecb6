"""What the receiver keeps between restarts: the signing key, candidate keys and the ids of events seen.

All live under VIDGEN_HOME (`.vidgen/`). Tokens are secrets (the key signs every event), so their
files are readable by their owner only. Event ids go in SQLite so a redelivery after a restart is still
recognised; ids older than the retention are pruned, since older events are refused by age anyway.
"""

from __future__ import annotations

import hmac
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from vidgen.errors import VidgenError
from vidgen.files import private_dir


CANDIDATE_TTL_S = 3600.0  # a verification token not accepted within an hour is forgotten
MAX_CANDIDATES = 8  # newest kept; an unsigned flood cannot grow the file
CANDIDATES_PER_MINUTE = 2.0  # verification requests held per minute (bursts of `CANDIDATE_BURST`)
CANDIDATE_BURST = 4.0


class NotACandidate(VidgenError):
    """`vidgen webhooks accept` was given a token no verification request brought (or it expired)."""


def _write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by its owner only, never half-written."""
    private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class VerificationTokenStore:
    """The signing key: the verification token a person accepted, in a 0600 file.

    Only `vidgen webhooks accept` (and `vidgen notion init --webhook-url`, which made the local
    subscription itself) write it; a request to the receiver never does.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def save(self, token: str) -> None:
        _write_private(self.path, token + "\n")


class Candidate(BaseModel):
    token: str
    received_at: float  # epoch seconds


class _CandidateFile(BaseModel):
    candidates: list[Candidate] = Field(default_factory=list)


class CandidateTokens:
    """Verification tokens that arrived and wait for a person to accept one (a 0600 JSON file).

    Anyone who reaches the receiver can send a verification request, so an arriving token is only
    ever a candidate: it is never used to check a signature. The file is shared with the CLI
    (`vidgen webhooks pending|accept`), which runs in another process.
    """

    def __init__(self, path: Path, *, ttl_s: float = CANDIDATE_TTL_S, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()

    def _load(self) -> list[Candidate]:
        try:
            stored = _CandidateFile.model_validate_json(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return []
        oldest = self._clock() - self.ttl_s
        return [c for c in stored.candidates if c.received_at >= oldest]

    def _store(self, candidates: list[Candidate]) -> None:
        _write_private(self.path, _CandidateFile(candidates=candidates[-MAX_CANDIDATES:]).model_dump_json())

    def pending(self) -> list[Candidate]:
        """Unexpired candidates, oldest first."""
        with self._lock:
            return self._load()

    def offer(self, token: str) -> bool:
        """Hold `token` as a candidate; False when it is already held (nothing to announce again)."""
        with self._lock:
            held = self._load()
            if any(hmac.compare_digest(c.token.encode(), token.encode()) for c in held):
                return False
            self._store([*held, Candidate(token=token, received_at=self._clock())])
            return True

    def take(self, token: str) -> bool:
        """Remove every candidate (one was chosen); True when `token` was among them."""
        with self._lock:
            found = any(hmac.compare_digest(c.token.encode(), token.encode()) for c in self._load())
            if found:
                self._store([])
            return found


def accept_token(key: VerificationTokenStore, candidates: CandidateTokens, token: str, *, chosen_elsewhere: bool = False) -> None:
    """Make `token` the signing key: what `vidgen webhooks accept TOKEN` does.

    The token must be one a verification request brought within the candidates' lifetime, so a
    typo cannot lock the receiver out; `chosen_elsewhere` skips that check for a caller that got
    the token from the subscription it made itself (the local server's answer to `notion init`).
    Raises NotACandidate.
    """
    if not candidates.take(token) and not chosen_elsewhere:
        raise NotACandidate(
            "no verification request brought this token in the last hour — check it against what the "
            "receiver printed (`uv run vidgen webhooks pending`), or have Notion send it again"
        )
    key.save(token)


class SeenEvents:
    """Durable set of event ids: `claim` is true exactly once per id, across threads and restarts."""

    def __init__(self, path: Path, *, retention_s: float = 7 * 24 * 3600) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.retention_s = retention_s
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS seen_events (id TEXT PRIMARY KEY, seen_at REAL NOT NULL)")
        self._conn.execute("DELETE FROM seen_events WHERE seen_at < ?", (time.time() - retention_s,))

    def claim(self, event_id: str) -> bool:
        """Record `event_id`; False when it was recorded before (a redelivery)."""
        with self._lock:
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO seen_events (id, seen_at) VALUES (?, ?)", (event_id, time.time())
            )
            return cursor.rowcount == 1

    def release(self, event_id: str) -> None:
        """Forget `event_id` (its action failed), so Notion's next delivery of it is acted on."""
        with self._lock:
            self._conn.execute("DELETE FROM seen_events WHERE id = ?", (event_id,))

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM seen_events").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
