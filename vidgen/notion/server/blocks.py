"""Page content on the local server: blocks, their children, and files attached to them.

Endpoints (https://developers.notion.com/reference/patch-block-children, get-block-children,
retrieve-a-block, delete-a-block): append children to a page or block (at the end, or `after` a
sibling; up to 100 blocks and two levels of nesting per request), list children with cursor
pagination, retrieve a block, delete (archive) a block. A page's body is the children of the page id.

File blocks (image, video, audio, file, pdf) may name a finished upload, `{"type": "file_upload",
"file_upload": {"id": ...}}`; attaching it ends the upload's expiry, and reading the block shows it
as Notion does, `{"type": "file", "file": {"url": ..., "expiry_time": ...}}`, the URL served here.

Blocks live in their own table of the store's SQLite file. Blocks given when a page was created
(kept on the page record) are moved into that table the first time the page's children are touched.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

from vidgen.notion.server.errors import body_validation_error, object_not_found, validation_error
from vidgen.notion.server.ids import bot_partial_user, iso_from_ms, new_id, normalize_id, now_ms
from vidgen.notion.server.properties import MAX_ARRAY_ITEMS, parse_rich_text
from vidgen.notion.server.query import page_size_of
from vidgen.notion.server.store import NotionStore
from vidgen.notion.server.uploads import FileUploadService

FILE_BLOCKS = frozenset({"image", "video", "audio", "file", "pdf"})
MAX_NESTING = 2  # levels of children below the appended blocks Notion takes in one request
_MEDIA_PREFIX = {"image": "image/", "video": "video/", "audio": "audio/"}

_DDL = """
CREATE TABLE IF NOT EXISTS blocks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    parent_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    in_trash INTEGER NOT NULL DEFAULT 0,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS blocks_by_parent ON blocks (parent_id, in_trash, position);
"""


class BlockService:
    def __init__(self, store: NotionStore, uploads: FileUploadService) -> None:
        self.store, self.uploads = store, uploads
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(store.path, check_same_thread=False, timeout=10)
        self._conn.executescript(_DDL)
        self._conn.commit()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- endpoints ------------------------------------------------------------------------------
    def append_children(self, raw_id: str, body: dict[str, Any], base_url: str) -> dict[str, Any]:
        parent_id, parent = self._writable_parent(raw_id)
        after = body.get("after")
        raw = body.get("children")
        attach: list[Any] = []
        rows: list[tuple[dict[str, Any], str]] = []  # (block, its parent id), parents before children
        added = self._parse(raw, parent, "body.children", 0, rows, attach)
        with self._lock:
            siblings = self._child_ids(parent_id)
            if after is not None:
                after_id = normalize_id(after, "after") if isinstance(after, str) else None
                if after_id not in siblings:
                    raise validation_error(f"body failed validation: body.after should be the id of a child of {parent_id}, "
                                           f"instead was `{after}`.")  # fmt: skip
                index = siblings.index(after_id) + 1
            else:
                index = len(siblings)
            order = siblings[:index] + [b["id"] for b in added] + siblings[index:]
            for block, owner in rows:
                self._conn.execute(
                    "INSERT INTO blocks (id, parent_id, position, doc) VALUES (?, ?, ?, ?)",
                    (block["id"], owner, 0, json.dumps(block)),
                )
            for owner in {owner for _, owner in rows if owner != parent_id}:
                for position, child in enumerate(b["id"] for b, o in rows if o == owner):
                    self._conn.execute("UPDATE blocks SET position = ? WHERE id = ?", (position, child))
            for position, child in enumerate(order):
                self._conn.execute("UPDATE blocks SET position = ? WHERE id = ?", (position, child))
            self._conn.commit()
        for record in attach:
            self.uploads.attach(record)
        return _list([self._render(b, base_url) for b in added], None, "block")

    def list_children(self, raw_id: str, start_cursor: str | None, page_size: Any, base_url: str) -> dict[str, Any]:
        parent_id, _ = self._readable_parent(raw_id)
        size = page_size_of(page_size, "query.page_size")
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, doc FROM blocks WHERE parent_id = ? AND in_trash = 0 ORDER BY position, seq", (parent_id,)
            ).fetchall()
        start = 0
        if start_cursor is not None:
            cursor = normalize_id(start_cursor, "start_cursor")
            ids = [r[0] for r in rows]
            if cursor not in ids:
                raise validation_error(f"body failed validation: start_cursor should be a block id of this list, "
                                       f"instead was `{start_cursor}`.")  # fmt: skip
            start = ids.index(cursor)
        chunk = rows[start : start + size]
        more = start + size < len(rows)
        return _list([self._render(json.loads(r[1]), base_url) for r in chunk], rows[start + size][0] if more else None,
                     "block")  # fmt: skip

    def retrieve(self, raw_id: str, base_url: str) -> dict[str, Any]:
        return self._render(self._block(raw_id), base_url)

    def delete(self, raw_id: str, base_url: str) -> dict[str, Any]:
        """Archive the block (Notion's delete moves it to the trash); its children go with it."""
        block = self._block(raw_id)
        if block["in_trash"]:
            raise validation_error("Can't edit block that is archived. You must unarchive the block before editing.")
        block["in_trash"] = block["archived"] = True
        block["last_edited_time"] = iso_from_ms(now_ms())
        with self._lock:
            self._conn.execute("UPDATE blocks SET in_trash = 1, doc = ? WHERE id = ?", (json.dumps(block), block["id"]))
            self._conn.commit()
        return self._render(block, base_url)

    # -- parents --------------------------------------------------------------------------------
    def _readable_parent(self, raw_id: str) -> tuple[str, dict[str, Any]]:
        block_id = normalize_id(raw_id, "block_id")
        page = self.store.get_page(block_id)
        if page is not None:
            self._adopt_page_children(page.id)
            return page.id, {"type": "page_id", "page_id": page.id, "_in_trash": page.in_trash}
        block = self._find(block_id)
        if block is None:
            raise object_not_found("block", block_id)
        return block_id, {"type": "block_id", "block_id": block_id, "_in_trash": block["in_trash"]}

    def _writable_parent(self, raw_id: str) -> tuple[str, dict[str, Any]]:
        parent_id, parent = self._readable_parent(raw_id)
        if parent.pop("_in_trash"):
            raise validation_error("Can't edit block that is archived. You must unarchive the block before editing.")
        return parent_id, parent

    def _adopt_page_children(self, page_id: str) -> None:
        """Move the blocks a page was created with into the blocks table (once)."""
        page = self.store.get_page(page_id)
        if page is None or not page.children:
            return
        with self._lock:
            start = len(self._child_ids(page.id))
            for offset, block in enumerate(page.children):
                self._conn.execute("INSERT OR IGNORE INTO blocks (id, parent_id, position, doc) VALUES (?, ?, ?, ?)",
                                   (block["id"], page.id, start + offset, json.dumps(block)))  # fmt: skip
            self._conn.commit()
        page.children = []
        with self.store.write() as tx:
            tx.put_page(page)

    def _child_ids(self, parent_id: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT id FROM blocks WHERE parent_id = ? AND in_trash = 0 ORDER BY position, seq", (parent_id,)
        ).fetchall()
        return [r[0] for r in rows]

    def _find(self, block_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT doc FROM blocks WHERE id = ?", (block_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def _block(self, raw_id: str) -> dict[str, Any]:
        block_id = normalize_id(raw_id, "block_id")
        block = self._find(block_id)
        if block is None:
            raise object_not_found("block", block_id)
        return block

    # -- parsing and rendering --------------------------------------------------------------------
    def _parse(
        self, raw: Any, parent: dict[str, Any], path: str, depth: int,
        rows: list[tuple[dict[str, Any], str]], attach: list[Any],
    ) -> list[dict[str, Any]]:  # fmt: skip
        if not isinstance(raw, list):
            raise body_validation_error(path, "should be an array", raw)
        if len(raw) > MAX_ARRAY_ITEMS:
            raise body_validation_error(f"{path}.length", f"should be ≤ `{MAX_ARRAY_ITEMS}`", len(raw))
        moment = iso_from_ms(now_ms())
        owner = parent.get("page_id") or parent["block_id"]
        blocks = []
        for index, item in enumerate(raw):
            item_path = f"{path}[{index}]"
            if not isinstance(item, dict):
                raise body_validation_error(item_path, "should be an object", item)
            kind = item.get("type") or next((k for k in item if k not in ("object", "type")), None)
            if not isinstance(kind, str) or not isinstance(item.get(kind), dict):
                raise validation_error(f"body failed validation: {item_path} should be a block such as "
                                       '{"paragraph": {"rich_text": [...]}}.')  # fmt: skip
            content = dict(item[kind])
            nested = content.pop("children", None)
            for key in ("rich_text", "caption"):
                if key in content:
                    content[key] = parse_rich_text(content[key], f"{item_path}.{kind}.{key}")
            if kind in FILE_BLOCKS:
                self._parse_file(kind, content, f"{item_path}.{kind}", attach)
            block = {
                "object": "block", "id": new_id(), "parent": {k: v for k, v in parent.items() if not k.startswith("_")},
                "created_time": moment, "last_edited_time": moment, "created_by": bot_partial_user(),
                "last_edited_by": bot_partial_user(), "has_children": False, "archived": False, "in_trash": False,
                "type": kind, kind: content,
            }  # fmt: skip
            rows.append((block, owner))
            if nested is not None:
                if depth >= MAX_NESTING:
                    raise validation_error(f"body failed validation: {item_path}.{kind}.children nests deeper than "
                                           f"{MAX_NESTING} levels; append deeper children in another request.")  # fmt: skip
                children = self._parse(nested, {"type": "block_id", "block_id": block["id"]},
                                       f"{item_path}.{kind}.children", depth + 1, rows, attach)  # fmt: skip
                block["has_children"] = bool(children)
            blocks.append(block)
        return blocks

    def _parse_file(self, kind: str, content: dict[str, Any], path: str, attach: list[Any]) -> None:
        source = content.get("type") or ("file_upload" if "file_upload" in content else "external")
        if source == "external":
            url = (content.get("external") or {}).get("url")
            if not isinstance(url, str) or not url:
                raise body_validation_error(f"{path}.external.url", "should be a URL", url)
            content["type"] = "external"
            return
        if source != "file_upload":
            raise body_validation_error(f"{path}.type", "should be `file_upload` or `external`", source)
        record = self.uploads.attachable((content.get("file_upload") or {}).get("id"), path)
        prefix = _MEDIA_PREFIX.get(kind)
        if prefix and not (record.content_type or "").startswith(prefix):
            raise validation_error(f"File upload {record.id} has content type `{record.content_type}`, "
                                   f"which a {kind} block cannot show.")  # fmt: skip
        content["type"] = "file_upload"
        content["file_upload"] = {"id": record.id}
        attach.append(record)

    def _render(self, block: dict[str, Any], base_url: str) -> dict[str, Any]:
        out = dict(block)
        with self._lock:
            out["has_children"] = self._conn.execute(
                "SELECT 1 FROM blocks WHERE parent_id = ? AND in_trash = 0 LIMIT 1", (block["id"],)
            ).fetchone() is not None
        kind = block["type"]
        content = block.get(kind)
        if kind in FILE_BLOCKS and isinstance(content, dict) and content.get("type") == "file_upload":
            shown = {k: v for k, v in content.items() if k not in ("type", "file_upload")}
            out[kind] = {**shown, "type": "file", "file": self.uploads.file_object(content["file_upload"]["id"], base_url)}
        return out


def _list(results: list[dict[str, Any]], next_cursor: str | None, kind: str) -> dict[str, Any]:
    return {"object": "list", "results": results, "next_cursor": next_cursor, "has_more": next_cursor is not None,
            "type": kind, kind: {}}  # fmt: skip
