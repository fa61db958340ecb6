"""What each endpoint does, independent of HTTP: request bodies in, Notion response objects out.

Every write builds the new records completely (validating as it goes) before touching the store, then
saves them inside one store transaction, so a rejected request leaves no trace.
"""

from __future__ import annotations

import base64
from dataclasses import replace
import binascii
import json
from typing import Any

from vidgen.notion.server.errors import NotionAPIError, body_validation_error, object_not_found, validation_error
from vidgen.notion.server.ids import (
    BOT_USER_ID,
    WORKSPACE_NAME,
    bot_partial_user,
    iso_from_ms,
    new_id,
    normalize_id,
    notion_url,
    now_ms,
    parse_id_in_body,
)
from vidgen.notion.server.properties import (
    PropertySchema,
    Schema,
    build_schema,
    parse_rich_text,
    parse_value,
    plain_text,
    render_value,
    update_schema,
)
from vidgen.notion.server.query import compile_filter, page_size_of, plan_sorts, run_query, stored_value
from vidgen.notion.server.store import DatabaseRecord, DataSourceRecord, NotionStore, PageRecord
from vidgen.notion.server.webhooks import WebhookSender

STANDALONE_SCHEMA = Schema([PropertySchema(id="title", name="title", type="title")])  # pages under pages


def bot_user() -> dict[str, Any]:
    return {
        "object": "user",
        "id": BOT_USER_ID,
        "name": "vidgen local integration",
        "avatar_url": None,
        "type": "bot",
        "bot": {"owner": {"type": "workspace", "workspace": True}, "workspace_name": WORKSPACE_NAME},
    }


def _object(body: dict[str, Any], key: str, *, required: bool = False) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise body_validation_error(f"body.{key}", "should be an object", value)
    return value


def _bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise body_validation_error(f"body.{key}", "should be a boolean", value)
    return value


def _trash_flag(body: dict[str, Any]) -> bool | None:
    """`archived` is the older name of `in_trash`; both mean the same and must agree if both given."""
    archived, in_trash = _bool(body, "archived"), _bool(body, "in_trash")
    if archived is not None and in_trash is not None and archived != in_trash:
        raise validation_error("body failed validation: body.archived and body.in_trash disagree.")
    return in_trash if in_trash is not None else archived


def _container_parent(raw: Any, path: str) -> dict[str, Any]:
    """A page or workspace parent; the local server has no page tree, so any page id is accepted."""
    if not isinstance(raw, dict):
        raise body_validation_error(path, "should be an object", raw)
    if "page_id" in raw:
        page_id = raw["page_id"]
        if not isinstance(page_id, str) or not page_id.strip():
            raise body_validation_error(f"{path}.page_id", "should be a string", page_id)
        try:
            page_id = parse_id_in_body(page_id, f"{path}.page_id")
        except NotionAPIError:
            page_id = page_id.strip()
        return {"type": "page_id", "page_id": page_id}
    if raw.get("type") == "workspace" or raw.get("workspace") is True:
        return {"type": "workspace", "workspace": True}
    raise validation_error(
        f'body failed validation: {path} should be {{"type": "page_id", "page_id": ...}} or '
        f'{{"type": "workspace", "workspace": true}}, instead was `{json.dumps(raw)}`.'
    )


class NotionService:
    def __init__(self, store: NotionStore, webhooks: WebhookSender | None = None) -> None:
        self.store = store
        self.webhooks = webhooks  # told about page changes once they are saved

    # ------------------------------------------------------------------------------- databases
    def create_database(self, body: dict[str, Any]) -> dict[str, Any]:
        if "properties" in body:
            raise validation_error(
                "body failed validation: body.properties is not accepted with Notion-Version 2025-09-03; "
                "pass the schema as body.initial_data_source.properties."
            )
        parent = _container_parent(body.get("parent"), "body.parent")
        title = parse_rich_text(body.get("title") or [], "body.title")
        description = parse_rich_text(body.get("description") or [], "body.description")
        initial = _object(body, "initial_data_source") or {}
        schema = build_schema(initial.get("properties") or {}, "body.initial_data_source.properties")
        ds_title = (
            parse_rich_text(initial["title"], "body.initial_data_source.title") if initial.get("title") else title
        )
        moment = now_ms()
        database = DatabaseRecord(
            id=new_id(), title=title, parent=parent, created_ms=moment, edited_ms=moment, description=description,
            is_inline=bool(_bool(body, "is_inline")), icon=_object(body, "icon"), cover=_object(body, "cover"),
        )  # fmt: skip
        data_source = DataSourceRecord(
            id=new_id(), database_id=database.id, title=ds_title, schema=schema, created_ms=moment, edited_ms=moment
        )
        with self.store.write() as tx:
            tx.put_database(database)
            tx.put_data_source(data_source)
        return self._database_response(database)

    def retrieve_database(self, raw_id: str) -> dict[str, Any]:
        return self._database_response(self._database(raw_id))

    def update_database(self, raw_id: str, body: dict[str, Any]) -> dict[str, Any]:
        database = self._database(raw_id)
        if "title" in body:
            database.title = parse_rich_text(body["title"] or [], "body.title")
        if "description" in body:
            database.description = parse_rich_text(body["description"] or [], "body.description")
        if "parent" in body:
            database.parent = _container_parent(body["parent"], "body.parent")
        for key in ("icon", "cover"):
            if key in body:
                setattr(database, key, _object(body, key))
        if (is_inline := _bool(body, "is_inline")) is not None:
            database.is_inline = is_inline
        if (trash := _trash_flag(body)) is not None:
            database.in_trash = trash
        database.edited_ms = now_ms()
        with self.store.write() as tx:
            tx.put_database(database)
        return self._database_response(database)

    def _database(self, raw_id: str) -> DatabaseRecord:
        database_id = normalize_id(raw_id, "database_id")
        database = self.store.get_database(database_id)
        if database is None:
            raise object_not_found("database", database_id)
        return database

    def _database_response(self, database: DatabaseRecord) -> dict[str, Any]:
        sources = self.store.data_sources_of(database.id)
        return {
            "object": "database",
            "id": database.id,
            "title": database.title,
            "description": database.description,
            "parent": database.parent,
            "is_inline": database.is_inline,
            "in_trash": database.in_trash,
            "archived": database.in_trash,
            "is_locked": False,
            "created_time": iso_from_ms(database.created_ms),
            "last_edited_time": iso_from_ms(database.edited_ms),
            "created_by": bot_partial_user(),
            "last_edited_by": bot_partial_user(),
            "data_sources": [{"id": s.id, "name": plain_text(s.title)} for s in sources if not s.in_trash],
            "icon": database.icon,
            "cover": database.cover,
            "url": notion_url(database.id, plain_text(database.title)),
            "public_url": None,
        }

    # ---------------------------------------------------------------------------- data sources
    def create_data_source(self, body: dict[str, Any]) -> dict[str, Any]:
        parent = _object(body, "parent", required=True) or {}
        database = self._database(parse_id_in_body(parent.get("database_id"), "body.parent.database_id"))
        schema = build_schema(body.get("properties") or {}, "body.properties")
        title = parse_rich_text(body.get("title") or [], "body.title")
        moment = now_ms()
        record = DataSourceRecord(
            id=new_id(), database_id=database.id, title=title, schema=schema, created_ms=moment, edited_ms=moment,
            icon=_object(body, "icon"),
        )  # fmt: skip
        with self.store.write() as tx:
            tx.put_data_source(record)
        return self._data_source_response(record)

    def retrieve_data_source(self, raw_id: str) -> dict[str, Any]:
        return self._data_source_response(self._data_source(raw_id))

    def update_data_source(self, raw_id: str, body: dict[str, Any]) -> dict[str, Any]:
        record = self._data_source(raw_id)
        if "properties" in body and body["properties"] is not None:
            record.schema = update_schema(record.schema, body["properties"], "body.properties")
        if "title" in body:
            record.title = parse_rich_text(body["title"] or [], "body.title")
        if "description" in body:
            record.description = parse_rich_text(body["description"] or [], "body.description")
        if "icon" in body:
            record.icon = _object(body, "icon")
        if (trash := _trash_flag(body)) is not None:
            record.in_trash = trash
        record.edited_ms = now_ms()
        with self.store.write() as tx:
            tx.put_data_source(record)
        return self._data_source_response(record)

    def _data_source(self, raw_id: str, label: str = "data_source_id") -> DataSourceRecord:
        data_source_id = normalize_id(raw_id, label)
        record = self.store.get_data_source(data_source_id)
        if record is None:
            raise object_not_found("data source", data_source_id)
        return record

    def _data_source_response(self, record: DataSourceRecord) -> dict[str, Any]:
        database = self.store.get_database(record.database_id)
        return {
            "object": "data_source",
            "id": record.id,
            "created_time": iso_from_ms(record.created_ms),
            "last_edited_time": iso_from_ms(record.edited_ms),
            "created_by": bot_partial_user(),
            "last_edited_by": bot_partial_user(),
            "title": record.title,
            "description": record.description,
            "icon": record.icon,
            "properties": record.schema.to_response(),
            "parent": {"type": "database_id", "database_id": record.database_id},
            "database_parent": database.parent if database else None,
            "is_inline": database.is_inline if database else False,
            "archived": record.in_trash,
            "in_trash": record.in_trash,
            "url": notion_url(record.id, plain_text(record.title)),
            "public_url": None,
        }

    def query_data_source(self, raw_id: str, body: dict[str, Any], filter_properties: list[str]) -> dict[str, Any]:
        record = self._data_source(raw_id)
        result_type = body.get("result_type")
        if result_type not in (None, "page", "data_source"):
            raise body_validation_error("body.result_type", "should be `page` or `data_source`", result_type)
        predicate = compile_filter(body["filter"], record.schema) if body.get("filter") is not None else None
        plan = plan_sorts(body.get("sorts"), record.schema)
        page_size = page_size_of(body.get("page_size"))
        trashed = bool(_trash_flag(body))
        pages = [] if result_type == "data_source" else self.store.pages_of(record.id, in_trash=trashed)
        chosen = run_query(pages, predicate, plan, body.get("start_cursor"), page_size)
        wanted = self._wanted_properties(record.schema, filter_properties)
        return {
            "object": "list",
            "results": [self._page_response(p, record, wanted) for p in chosen.results],
            "next_cursor": chosen.next_cursor,
            "has_more": chosen.next_cursor is not None,
            "type": "page_or_data_source",
            "page_or_data_source": {},
        }

    @staticmethod
    def _wanted_properties(schema: Schema, filter_properties: list[str]) -> set[str] | None:
        if not filter_properties:
            return None
        wanted: set[str] = set()
        for key in filter_properties:
            prop = schema.find(key)
            if prop is None:
                raise validation_error(f"Could not find property with name or id: {key}")
            wanted.add(prop.id)
        return wanted

    # ----------------------------------------------------------------------------------- pages
    def create_page(self, body: dict[str, Any]) -> dict[str, Any]:
        parent = _object(body, "parent", required=True) or {}
        data_source: DataSourceRecord | None = None
        if "data_source_id" in parent:
            data_source = self._data_source(parse_id_in_body(parent["data_source_id"], "body.parent.data_source_id"))
        elif "database_id" in parent:
            database = self._database(parse_id_in_body(parent["database_id"], "body.parent.database_id"))
            sources = [s for s in self.store.data_sources_of(database.id) if not s.in_trash]
            if not sources:
                raise validation_error(f"Database {database.id} has no data source to add the page to.")
            data_source = sources[0]
        page_parent = (
            {"type": "data_source_id", "data_source_id": data_source.id, "database_id": data_source.database_id}
            if data_source
            else _container_parent(parent, "body.parent")
        )
        schema = data_source.schema.copy() if data_source else STANDALONE_SCHEMA.copy()
        values = self._parse_values(schema, body.get("properties") or {}, {})
        moment = now_ms()
        page = PageRecord(
            id=new_id(),
            data_source_id=data_source.id if data_source else None,
            database_id=data_source.database_id if data_source else None,
            parent=page_parent,
            values=values,
            created_ms=moment,
            edited_ms=moment,
            icon=_object(body, "icon"),
            cover=_object(body, "cover"),
        )
        with self.store.write() as tx:
            self._save_schema_growth(tx, data_source, schema)
            tx.put_page(page)
        if self.webhooks:
            self.webhooks.page_created(page)
        return self._page_response(page, data_source, None)

    def retrieve_page(self, raw_id: str, filter_properties: list[str]) -> dict[str, Any]:
        page = self._page(raw_id)
        data_source = self.store.get_data_source(page.data_source_id) if page.data_source_id else None
        schema = data_source.schema if data_source else STANDALONE_SCHEMA
        return self._page_response(page, data_source, self._wanted_properties(schema, filter_properties))

    def update_page(self, raw_id: str, body: dict[str, Any]) -> dict[str, Any]:
        page = self._page(raw_id)
        before = replace(page)  # shallow copy: the edits below assign new values, never mutate them
        data_source = self.store.get_data_source(page.data_source_id) if page.data_source_id else None
        trash = _trash_flag(body)
        edits_content = any(body.get(k) is not None for k in ("properties", "icon", "cover"))
        if page.in_trash and trash is not False and edits_content:
            raise validation_error("Can't edit block that is archived. You must unarchive the block before editing.")
        schema = data_source.schema.copy() if data_source else STANDALONE_SCHEMA.copy()
        if body.get("properties") is not None:
            page.values = self._parse_values(schema, body["properties"], page.values)
        for key in ("icon", "cover"):
            if key in body:
                setattr(page, key, _object(body, key))
        if trash is not None:
            page.in_trash = trash
        page.edited_ms = max(now_ms(), page.edited_ms + 1)  # every edit moves last_edited_time forward
        with self.store.write() as tx:
            self._save_schema_growth(tx, data_source, schema)
            tx.put_page(page)
        if self.webhooks:
            self.webhooks.page_updated(before, page)
        return self._page_response(page, data_source, None)

    def _page(self, raw_id: str) -> PageRecord:
        page_id = normalize_id(raw_id, "page_id")
        page = self.store.get_page(page_id)
        if page is None:
            raise object_not_found("page", page_id)
        return page

    @staticmethod
    def _parse_values(schema: Schema, raw: Any, current: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not isinstance(raw, dict):
            raise body_validation_error("body.properties", "should be an object", raw)
        values = dict(current)
        for key, value in raw.items():
            prop = schema.find(key)
            if prop is None:
                raise validation_error(f"{key} is not a property that exists.")
            values[prop.id] = {"t": prop.type, "v": parse_value(prop, value, f"body.properties.{key}")}
        return values

    def _save_schema_growth(self, tx: NotionStore, data_source: DataSourceRecord | None, schema: Schema) -> None:
        """Persist select options a page write created (Notion adds unknown select options on write)."""
        if data_source is None or schema.to_store() == data_source.schema.to_store():
            return
        data_source.schema = schema
        data_source.edited_ms = now_ms()
        tx.put_data_source(data_source)

    def _page_response(
        self, page: PageRecord, data_source: DataSourceRecord | None, wanted: set[str] | None
    ) -> dict[str, Any]:
        schema = data_source.schema if data_source else STANDALONE_SCHEMA
        created, edited = iso_from_ms(page.created_ms), iso_from_ms(page.edited_ms)
        properties = {
            prop.name: render_value(prop, stored_value(page, prop), created, edited)
            for prop in schema.properties
            if wanted is None or prop.id in wanted
        }
        title = plain_text(stored_value(page, schema.title_property) or [])
        return {
            "object": "page",
            "id": page.id,
            "created_time": created,
            "last_edited_time": edited,
            "created_by": bot_partial_user(),
            "last_edited_by": bot_partial_user(),
            "cover": page.cover,
            "icon": page.icon,
            "parent": page.parent,
            "archived": page.in_trash,
            "in_trash": page.in_trash,
            "is_locked": False,
            "properties": properties,
            "url": notion_url(page.id, title),
            "public_url": None,
        }

    # ---------------------------------------------------------------------------------- search
    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        """Title search over data sources and pages, newest edit first (or as `sort` asks)."""
        query = body.get("query") or ""
        if not isinstance(query, str):
            raise body_validation_error("body.query", "should be a string", query)
        wanted = None
        if body.get("filter") is not None:
            search_filter = _object(body, "filter") or {}
            wanted = search_filter.get("value")
            if search_filter.get("property") != "object" or wanted not in ("page", "data_source"):
                raise validation_error(
                    'body failed validation: body.filter should be {"property": "object", '
                    '"value": "page" | "data_source"}.'
                )
        descending = True
        if body.get("sort") is not None:
            sort = _object(body, "sort") or {}
            if sort.get("timestamp") != "last_edited_time" or sort.get("direction") not in ("ascending", "descending"):
                raise validation_error(
                    'body failed validation: body.sort should be {"timestamp": "last_edited_time", '
                    '"direction": "ascending" | "descending"}.'
                )
            descending = sort["direction"] == "descending"
        needle = query.casefold()
        found: list[tuple[int, dict[str, Any]]] = []
        sources = {s.id: s for s in self.store.list_data_sources()}
        if wanted in (None, "data_source"):
            for source in sources.values():
                if not source.in_trash and needle in plain_text(source.title).casefold():
                    found.append((source.edited_ms, self._data_source_response(source)))
        if wanted in (None, "page"):
            for page in self.store.all_pages(in_trash=False):
                source = sources.get(page.data_source_id or "")
                schema = source.schema if source else STANDALONE_SCHEMA
                if needle in plain_text(stored_value(page, schema.title_property) or []).casefold():
                    found.append((page.edited_ms, self._page_response(page, source, None)))
        found.sort(key=lambda item: item[0], reverse=descending)
        size = page_size_of(body.get("page_size"))
        offset = _decode_offset(body.get("start_cursor"))
        more = offset + size < len(found)
        return {
            "object": "list",
            "results": [item for _, item in found[offset : offset + size]],
            "next_cursor": _encode_offset(offset + size) if more else None,
            "has_more": more,
            "type": "page_or_data_source",
            "page_or_data_source": {},
        }


def _encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def _decode_offset(cursor: Any) -> int:
    if cursor is None:
        return 0
    try:
        padded = str(cursor) + "=" * (-len(str(cursor)) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded.encode()))["offset"]
        if isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise validation_error(
        "body failed validation: start_cursor should be a cursor returned by a previous request, "
        f"instead was `{cursor}`."
    )
