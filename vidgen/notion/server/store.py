"""SQLite persistence for databases, data sources and pages.

Each object is one row holding a JSON document, plus the few columns queries select on. Writes go
through `write()`, one transaction each, so a request that fails half-way changes nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidgen.files import private_dir
from vidgen.notion.server.properties import Schema

_DDL = """
CREATE TABLE IF NOT EXISTS databases (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS data_sources (id TEXT PRIMARY KEY, database_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    data_source_id TEXT,
    in_trash INTEGER NOT NULL DEFAULT 0,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pages_by_data_source ON pages (data_source_id, in_trash);
"""


@dataclass
class DatabaseRecord:
    id: str
    title: list[dict[str, Any]]
    parent: dict[str, Any]
    created_ms: int
    edited_ms: int
    description: list[dict[str, Any]] = field(default_factory=list)
    is_inline: bool = False
    in_trash: bool = False
    icon: dict[str, Any] | None = None
    cover: dict[str, Any] | None = None

    def to_store(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DataSourceRecord:
    id: str
    database_id: str
    title: list[dict[str, Any]]
    schema: Schema
    created_ms: int
    edited_ms: int
    description: list[dict[str, Any]] = field(default_factory=list)
    in_trash: bool = False
    icon: dict[str, Any] | None = None

    def to_store(self) -> dict[str, Any]:
        doc = dict(self.__dict__)
        doc["schema"] = self.schema.to_store()
        return doc

    @classmethod
    def from_store(cls, doc: dict[str, Any]) -> DataSourceRecord:
        doc = dict(doc)
        doc["schema"] = Schema.from_store(doc["schema"])
        return cls(**doc)


@dataclass
class PageRecord:
    """A page; `values` maps property id -> {"t": type when written, "v": stored value}."""

    id: str
    data_source_id: str | None  # None for a page under a page or the workspace
    database_id: str | None
    parent: dict[str, Any]
    values: dict[str, dict[str, Any]]
    created_ms: int
    edited_ms: int
    in_trash: bool = False
    icon: dict[str, Any] | None = None
    cover: dict[str, Any] | None = None
    children: list[dict[str, Any]] = field(default_factory=list)  # only in stores written before blocks had their own table: BlockService adopts them
    seq: int = 0  # creation order, assigned by the store; the last tie-breaker of every sort

    def to_store(self) -> dict[str, Any]:
        doc = dict(self.__dict__)
        doc.pop("seq")
        return doc


class NotionStore:
    """Thread-safe: uvicorn may call in from its worker threads, so every access holds one lock.

    Queries read every page of a data source, and decoding those JSON documents would dominate a
    poll, so decoded pages are cached in memory. The cache is updated only when a transaction commits
    and dropped whenever SQLite reports that another connection changed the file (`data_version`).
    Cached records are shared: callers must not mutate what `pages_of`/`all_pages` return
    (`get_page` always returns a fresh copy for editing).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)  # the board, its tokens' subscription file and uploads: owner only
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(self.path, 0o600)  # a store made by an earlier version was 0644; SQLite's -wal/-shm follow it
        self._lock = threading.RLock()
        self._cache: dict[int, PageRecord] | None = None  # seq -> page, every page of the store
        self._pending: list[PageRecord] = []
        self._data_version = -1
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_DDL)
        self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def write(self) -> Iterator[NotionStore]:
        """One transaction: everything inside commits together or not at all."""
        with self._lock:
            self._pending = []
            try:
                yield self
            except BaseException:
                self._conn.rollback()
                self._pending = []
                raise
            self._conn.commit()
            if self._cache is not None:
                for page in self._pending:
                    self._cache[page.seq] = page
            self._pending = []

    # -- databases ------------------------------------------------------------------------------
    def put_database(self, record: DatabaseRecord) -> None:
        self._conn.execute(
            "INSERT INTO databases (id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
            (record.id, json.dumps(record.to_store())),
        )

    def get_database(self, database_id: str) -> DatabaseRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT doc FROM databases WHERE id = ?", (database_id,)).fetchone()
        return DatabaseRecord(**json.loads(row[0])) if row else None

    # -- data sources ---------------------------------------------------------------------------
    def put_data_source(self, record: DataSourceRecord) -> None:
        self._conn.execute(
            "INSERT INTO data_sources (id, database_id, doc) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
            (record.id, record.database_id, json.dumps(record.to_store())),
        )

    def get_data_source(self, data_source_id: str) -> DataSourceRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT doc FROM data_sources WHERE id = ?", (data_source_id,)).fetchone()
        return DataSourceRecord.from_store(json.loads(row[0])) if row else None

    def data_sources_of(self, database_id: str) -> list[DataSourceRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT doc FROM data_sources WHERE database_id = ? ORDER BY rowid", (database_id,)
            ).fetchall()
        return [DataSourceRecord.from_store(json.loads(r[0])) for r in rows]

    def list_data_sources(self) -> list[DataSourceRecord]:
        with self._lock:
            rows = self._conn.execute("SELECT doc FROM data_sources ORDER BY rowid").fetchall()
        return [DataSourceRecord.from_store(json.loads(r[0])) for r in rows]

    # -- pages ----------------------------------------------------------------------------------
    def put_page(self, record: PageRecord) -> PageRecord:
        doc = json.dumps(record.to_store())
        if record.seq:
            self._conn.execute(
                "UPDATE pages SET doc = ?, in_trash = ?, data_source_id = ? WHERE seq = ?",
                (doc, int(record.in_trash), record.data_source_id, record.seq),
            )
        else:
            cursor = self._conn.execute(
                "INSERT INTO pages (id, data_source_id, in_trash, doc) VALUES (?, ?, ?, ?)",
                (record.id, record.data_source_id, int(record.in_trash), doc),
            )
            record.seq = int(cursor.lastrowid or 0)
        self._pending.append(_page((record.seq, doc)))  # a private copy for the cache
        return record

    def get_page(self, page_id: str) -> PageRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT seq, doc FROM pages WHERE id = ?", (page_id,)).fetchone()
        return _page(row) if row else None

    def pages_of(self, data_source_id: str, *, in_trash: bool) -> list[PageRecord]:
        """All pages of a data source (shared, read-only records; queries filter these in memory)."""
        return [p for p in self._cached_pages() if p.data_source_id == data_source_id and p.in_trash == in_trash]

    def all_pages(self, *, in_trash: bool) -> list[PageRecord]:
        return [p for p in self._cached_pages() if p.in_trash == in_trash]

    def _cached_pages(self) -> list[PageRecord]:
        with self._lock:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if self._cache is None or version != self._data_version:
                rows = self._conn.execute("SELECT seq, doc FROM pages ORDER BY seq").fetchall()
                self._cache = {row[0]: _page(row) for row in rows}
                self._data_version = version
            return list(self._cache.values())


def _page(row: tuple[int, str]) -> PageRecord:
    return PageRecord(seq=row[0], **json.loads(row[1]))
