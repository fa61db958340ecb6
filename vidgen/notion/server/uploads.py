"""Notion's File Upload API on the local server: create, send (multipart form data), complete, retrieve,
and the bytes behind an attached file's URL.

Documented rules kept here (https://developers.notion.com/reference/file-upload and the create/send/
complete pages): `single_part` sends one file of at most 20 MB; `multi_part` needs `filename` and
`number_of_parts` (1..10000) and takes parts numbered 1..n of at most 20 MB each (all but the last at
least 5 MB), then `complete`; statuses are pending -> uploaded, or expired when an upload is not attached
within an hour (`expiry_time`; null once attached); a file larger than the workspace allows (5 MiB on
a free workspace) is refused with 400 validation_error. The clock and the workspace limit are settings
of `FileUploadService`, so tests can expire an upload or shrink the workspace without waiting.
"""

from __future__ import annotations

import json
import mimetypes
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from vidgen.notion.server.errors import NotionAPIError, body_validation_error, object_not_found, validation_error
from vidgen.notion.server.ids import bot_partial_user, iso_from_ms, new_id, normalize_id
from vidgen.notion.server.store import NotionStore

MB = 1_000_000
MAX_PART_BYTES = 20 * MB  # single_part files and each multi_part part
MIN_PART_BYTES = 5 * MB  # every multi_part part but the last
MAX_PARTS = 10_000
DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024  # a free workspace's limit per file
UPLOAD_TTL_S = 3600.0  # an upload must be attached within an hour
FILE_URL_TTL_S = 3600.0  # how long a file block's URL is said to be valid
FILES_PATH = "/files/"  # downloads: outside /v1, no Notion auth (like Notion's signed S3 URLs)
# What previews upload (vidgen/previews.py) and a browser may show in place; anything else downloads.
INLINE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4", "audio/mp4",
                                "audio/x-m4a", "audio/mpeg"})  # fmt: skip
PURGE_AFTER_S = 24 * 3600.0  # an upload never attached is deleted (with its bytes) a day after it expired
PURGE_EVERY_S = 600.0  # how often `create` looks for such uploads
MAX_SEND_BODY = MAX_PART_BYTES + 64 * 1024  # a part plus its form-data envelope

_DDL = """
CREATE TABLE IF NOT EXISTS file_uploads (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS file_upload_parts (
    upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
"""
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_DISPOSITION_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class UploadRecord:
    id: str
    mode: str
    filename: str | None
    content_type: str | None
    number_of_parts: int | None
    created_s: float
    edited_s: float
    secret: str  # the unguessable part of the download URL
    status: str = "pending"  # pending | uploaded (expired is computed from the clock)
    content_length: int | None = None
    attached: bool = False


def _iso(seconds: float) -> str:
    return iso_from_ms(int(seconds * 1000))


def parse_form_data(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """multipart/form-data fields: name -> (filename or None, bytes). Split by hand so binary parts
    come back byte for byte (the server has no python-multipart)."""
    match = _BOUNDARY.search(content_type or "")
    if not content_type.lower().startswith("multipart/form-data") or match is None:
        raise validation_error("Content-Type should be multipart/form-data with a boundary for this endpoint.")
    delimiter = b"--" + match.group(1).encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        disposition = next(
            (line for line in head.decode("utf-8", "replace").split("\r\n") if line.lower().startswith("content-disposition")),
            "",
        )
        params = dict(_DISPOSITION_PARAM.findall(disposition))
        if "name" in params:
            fields[params["name"]] = (params.get("filename"), data.removesuffix(b"\r\n"))
    return fields


class FileUploadService:
    """File uploads kept in the store's SQLite file (own tables, own connection)."""

    def __init__(
        self,
        store: NotionStore,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_file_bytes = max_file_bytes
        self.clock = clock
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(store.path, check_same_thread=False, timeout=10)
        self._conn.executescript(_DDL)
        self._conn.commit()
        self._purged_at = float("-inf")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- records --------------------------------------------------------------------------------
    def _load(self, raw_id: str, label: str = "file_upload_id") -> UploadRecord:
        upload_id = normalize_id(raw_id, label)
        with self._lock:
            row = self._conn.execute("SELECT doc FROM file_uploads WHERE id = ?", (upload_id,)).fetchone()
        if row is None:
            raise object_not_found("file upload", upload_id)
        return UploadRecord(**json.loads(row[0]))

    def _save(self, record: UploadRecord) -> None:
        record.edited_s = max(self.clock(), record.edited_s)
        with self._lock:
            self._conn.execute(
                "INSERT INTO file_uploads (id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                (record.id, json.dumps(asdict(record))),
            )
            self._conn.commit()

    def _expired(self, record: UploadRecord) -> bool:
        return not record.attached and self.clock() >= record.created_s + UPLOAD_TTL_S

    def response(self, record: UploadRecord, base_url: str) -> dict[str, Any]:
        expired = self._expired(record)
        status = "expired" if expired else record.status
        body: dict[str, Any] = {
            "object": "file_upload",
            "id": record.id,
            "created_time": _iso(record.created_s),
            "last_edited_time": _iso(record.edited_s),
            "created_by": {**bot_partial_user(), "type": "bot"},
            "expiry_time": None if record.attached else _iso(record.created_s + UPLOAD_TTL_S),
            "upload_url": f"{base_url}/v1/file_uploads/{record.id}/send" if status == "pending" else None,
            "archived": False,
            "in_trash": False,
            "status": status,
            "filename": record.filename,
            "content_type": record.content_type,
            "content_length": record.content_length,
        }
        if record.mode == "multi_part":
            body["complete_url"] = f"{base_url}/v1/file_uploads/{record.id}/complete" if status == "pending" else None
            body["number_of_parts"] = {"total": record.number_of_parts, "sent": self._parts_sent(record.id)}
        return body

    # -- endpoints ------------------------------------------------------------------------------
    def purge_expired(self) -> int:
        """Delete uploads never attached that expired more than PURGE_AFTER_S ago, bytes and all; how many.

        An upload that is never attached would otherwise keep its bytes (up to 20 MB a send) in the
        store forever. Expired ones stay readable ("expired") for a day, as clients may still ask.
        """
        cutoff = self.clock() - UPLOAD_TTL_S - PURGE_AFTER_S
        with self._lock:
            stale = [row[0] for row in self._conn.execute(
                "SELECT id FROM file_uploads WHERE json_extract(doc, '$.attached') = 0 "
                "AND json_extract(doc, '$.created_s') < ?", (cutoff,))]  # fmt: skip
            for upload_id in stale:
                self._conn.execute("DELETE FROM file_upload_parts WHERE upload_id = ?", (upload_id,))
                self._conn.execute("DELETE FROM file_uploads WHERE id = ?", (upload_id,))
            self._conn.commit()
            self._purged_at = self.clock()
        return len(stale)

    def create(self, body: dict[str, Any]) -> UploadRecord:
        if self.clock() - self._purged_at >= PURGE_EVERY_S:
            self.purge_expired()
        mode = body.get("mode", "single_part")
        if mode not in ("single_part", "multi_part"):
            message = "should be `single_part` or `multi_part` (external_url imports are not served locally)"
            raise body_validation_error("body.mode", message, mode)
        filename, content_type = body.get("filename"), body.get("content_type")
        for key, value in (("filename", filename), ("content_type", content_type)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise body_validation_error(f"body.{key}", "should be a non-empty string", value)
        if filename is not None and len(filename.encode()) > 900:
            raise body_validation_error("body.filename.length", "should be ≤ `900` bytes", len(filename.encode()))
        parts = body.get("number_of_parts")
        if mode == "multi_part":
            if filename is None:
                raise validation_error("body failed validation: body.filename should be defined when mode is multi_part.")
            if not isinstance(parts, int) or isinstance(parts, bool) or not 1 <= parts <= MAX_PARTS:
                raise body_validation_error("body.number_of_parts", f"should be an integer from 1 to {MAX_PARTS}", parts)
        elif parts is not None:
            raise validation_error("body failed validation: body.number_of_parts is only for mode multi_part.")
        if content_type is None and filename:
            content_type = mimetypes.guess_type(filename)[0]
        moment = self.clock()
        record = UploadRecord(id=new_id(), mode=mode, filename=filename, content_type=content_type,
                              number_of_parts=parts, created_s=moment, edited_s=moment,
                              secret=secrets.token_urlsafe(16))  # fmt: skip
        self._save(record)
        return record

    def retrieve(self, raw_id: str) -> UploadRecord:
        return self._load(raw_id)

    def send(self, raw_id: str, content_type: str, body: bytes) -> UploadRecord:
        record = self._pending(raw_id, "sent to")
        fields = parse_form_data(content_type, body)
        if "file" not in fields or fields["file"][0] is None:
            raise validation_error("body failed validation: the form data should hold the file under the `file` key.")
        sent_name, data = fields["file"]
        part_field = fields.get("part_number")
        if len(data) > MAX_PART_BYTES:
            what = "part" if record.mode == "multi_part" else "file"
            raise validation_error(
                f"The {what} is {len(data)} bytes; a single send takes at most 20MB ({MAX_PART_BYTES} bytes). "
                "Use mode multi_part for larger files."
            )
        if record.mode == "single_part":
            if part_field is not None:
                raise validation_error("part_number is only for file uploads created with mode multi_part.")
            self._check_workspace_limit(len(data))
            record.filename = record.filename or sent_name
            record.content_type = record.content_type or mimetypes.guess_type(sent_name or "")[0]
            self._put_part(record.id, 1, data)
            record.content_length = len(data)
            record.status = "uploaded"
        else:
            number = self._part_number(part_field, record)
            if number < (record.number_of_parts or 0) and len(data) < MIN_PART_BYTES:
                raise validation_error(
                    f"Part {number} is {len(data)} bytes; every part but the last must be at least 5MB."
                )
            others = self._bytes_sent(record.id, excluding=number)
            self._check_workspace_limit(others + len(data))
            self._put_part(record.id, number, data)
        self._save(record)
        return record

    def complete(self, raw_id: str) -> UploadRecord:
        record = self._pending(raw_id, "completed")
        if record.mode != "multi_part":
            raise validation_error("Only file uploads created with mode multi_part are completed.")
        sent = self._parts_sent(record.id)
        if sent != record.number_of_parts:
            raise validation_error(
                f"Expected {record.number_of_parts} parts to be sent before completing, but {sent} were sent."
            )
        record.content_length = self._bytes_sent(record.id, excluding=0)
        record.status = "uploaded"
        self._save(record)
        return record

    # -- attaching and downloading (used by blocks) ---------------------------------------------------
    def attachable(self, raw_id: Any, path: str) -> UploadRecord:
        """The upload a block names, if it can be attached: uploaded, not expired."""
        if not isinstance(raw_id, str):
            raise body_validation_error(f"{path}.file_upload.id", "should be a string", raw_id)
        record = self._load(raw_id, "file_upload_id")
        if self._expired(record):
            raise validation_error(f"File upload {record.id} has expired: an upload must be attached within an hour.")
        if record.status != "uploaded":
            raise validation_error(f"File upload {record.id} is in status `{record.status}`; send it (and complete it) first.")
        return record

    def attach(self, record: UploadRecord) -> None:
        if not record.attached:
            record.attached = True
            self._save(record)

    def file_object(self, raw_id: str, base_url: str) -> dict[str, Any]:
        """The `file` object a block shows for an attached upload: a URL this server serves."""
        record = self._load(raw_id)
        name = record.filename or "file"
        return {"url": f"{base_url}{FILES_PATH}{record.id}/{record.secret}/{name}",
                "expiry_time": _iso(self.clock() + FILE_URL_TTL_S)}  # fmt: skip

    def download(self, raw_id: str, secret: str) -> tuple[bytes, str]:
        record = self._load(raw_id)
        if not secrets.compare_digest(secret, record.secret) or not record.attached:
            raise object_not_found("file", record.id)
        with self._lock:
            rows = self._conn.execute(
                "SELECT data FROM file_upload_parts WHERE upload_id = ? ORDER BY part_number", (record.id,)
            ).fetchall()
        return b"".join(r[0] for r in rows), record.content_type or "application/octet-stream"

    # -- helpers --------------------------------------------------------------------------------
    def _pending(self, raw_id: str, verb: str) -> UploadRecord:
        record = self._load(raw_id)
        if self._expired(record):
            raise validation_error(f"File upload {record.id} has expired and can no longer be {verb}.")
        if record.status != "pending":
            raise validation_error(f"File upload {record.id} is in status `{record.status}` and can no longer be {verb}.")
        return record

    def _check_workspace_limit(self, size: int) -> None:
        if size > self.max_file_bytes:
            raise validation_error(
                f"The file is {size} bytes, larger than this workspace's file size limit of {self.max_file_bytes} bytes."
            )

    @staticmethod
    def _part_number(field: tuple[str | None, bytes] | None, record: UploadRecord) -> int:
        raw = field[1].decode("utf-8", "replace").strip() if field else None
        if raw is None or not raw.isdigit() or not 1 <= int(raw) <= (record.number_of_parts or 0):
            raise body_validation_error(
                "body.part_number", f"should be a string integer from 1 to {record.number_of_parts}", raw
            )
        return int(raw)

    def _put_part(self, upload_id: str, number: int, data: bytes) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO file_upload_parts (upload_id, part_number, data) VALUES (?, ?, ?) "
                "ON CONFLICT(upload_id, part_number) DO UPDATE SET data = excluded.data",
                (upload_id, number, data),
            )
            self._conn.commit()

    def _parts_sent(self, upload_id: str) -> int:
        with self._lock:
            return int(self._conn.execute(
                "SELECT COUNT(*) FROM file_upload_parts WHERE upload_id = ?", (upload_id,)).fetchone()[0])  # fmt: skip

    def _bytes_sent(self, upload_id: str, *, excluding: int) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM file_upload_parts WHERE upload_id = ? AND part_number != ?",
                (upload_id, excluding),
            ).fetchone()
        return int(row[0])


def too_large() -> NotionAPIError:
    return validation_error(f"Request body too large; a send takes at most {MAX_SEND_BODY} bytes.")


def _ascii_fallback(name: str) -> str:
    """A file name safe inside a quoted-string: ASCII letters, digits and `._-` (others become `_`)."""
    cleaned = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in name)
    return cleaned.strip("._") or "file"


def download_headers(content_type: str, filename: str) -> dict[str, str]:
    """How a downloaded file is served: inline only for the media types previews use, as an attachment
    otherwise, never sniffed, with its name quoted per RFC 6266 (an ASCII `filename` and the exact
    name as `filename*`), so an uploaded page or script never runs on this server's origin and a
    quote in a name cannot end the header's parameter."""
    name = PurePosixPath(filename).name or "file"
    inline = content_type.split(";")[0].strip().lower() in INLINE_MEDIA_TYPES
    disposition = (
        f'{"inline" if inline else "attachment"}; filename="{_ascii_fallback(name)}"; '
        f"filename*=UTF-8''{quote(name, safe='')}"
    )
    return {"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox"}  # fmt: skip
