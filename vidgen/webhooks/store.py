"""What the receiver keeps between restarts: the verification token and the ids of events seen.

Both live under VIDGEN_HOME (`.vidgen/`). The token is a secret (it signs every event), so its file
is readable by its owner only. Event ids go in SQLite so a redelivery after a restart is still
recognised; ids older than the retention are pruned, since older events are refused by age anyway.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path


class TokenConflict(Exception):
    """A verification request brought a token different from the stored one."""


class VerificationTokenStore:
    """One verification token in a 0600 file; a different one replaces it only when allowed."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def read(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def save(self, token: str, *, replace: bool = False) -> bool:
        """Store `token`; True when it is new or replaced, False when it was already stored.

        Raises TokenConflict when another token is stored and `replace` is False: a verification
        request is unsigned, so anyone who can reach the endpoint could otherwise swap the key.
        """
        with self._lock:
            current = self.read()
            if current == token:
                return False
            if current is not None and not replace:
                raise TokenConflict(
                    f"a verification token is already stored in {self.path}; a different one was received and "
                    "refused. If you re-created the Notion subscription, restart the receiver with "
                    "--replace-token (or delete that file) and send the verification again."
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(token + "\n")
            os.chmod(self.path.with_suffix(".tmp"), 0o600)
            os.replace(self.path.with_suffix(".tmp"), self.path)
            return True


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
