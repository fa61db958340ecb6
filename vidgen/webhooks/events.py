"""Notion's webhook event, as documented: a signal carrying ids, never the changed values.

Events may arrive more than once (same `id`, rising `attempt_number`), out of order, late or never,
so whoever receives one deduplicates on `id` and re-reads the page; the poll stays as reconciliation.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from vidgen.notion.ids import NotionId

PAGE_CREATED = "page.created"
PAGE_PROPERTIES_UPDATED = "page.properties_updated"
PAGE_DELETED = "page.deleted"
PAGE_UNDELETED = "page.undeleted"
DATA_SOURCE_SCHEMA_UPDATED = "data_source.schema_updated"

PAGE_EVENT_TYPES = frozenset({PAGE_CREATED, PAGE_PROPERTIES_UPDATED, PAGE_DELETED, PAGE_UNDELETED})
RELEVANT_EVENT_TYPES = PAGE_EVENT_TYPES | {DATA_SOURCE_SCHEMA_UPDATED}
MAX_ATTEMPTS = 8  # Notion delivers an event at most this many times


class EventEntity(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: NotionId  # becomes a Notion API path: a UUID or the event is refused (400)
    type: str  # "page", "data_source", "database", ...


class EventAuthor(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    type: str  # "person", "bot", "agent"


class EventParent(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    type: str  # "database", "page", "space", ...
    data_source_id: NotionId | None = None  # set for pages of a database (API version 2025-09-03)


class EventData(BaseModel):
    model_config = ConfigDict(extra="allow")

    parent: EventParent | None = None
    updated_properties: list[str] | None = None  # property ids, for page.properties_updated


class NotionWebhookEvent(BaseModel):
    """One delivery of a Notion webhook event; unknown extra fields are kept, never refused."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, description="the event's id: the same on every delivery of it")
    timestamp: datetime
    workspace_id: str | None = None
    subscription_id: str | None = None
    integration_id: str | None = None
    type: str
    authors: list[EventAuthor] = Field(default_factory=list)
    attempt_number: int = Field(default=1, ge=1)
    api_version: str | None = None
    entity: EventEntity
    data: EventData = Field(default_factory=EventData)

    def data_source_id(self) -> str | None:
        """The data source the event is about: the entity itself, or the page's parent."""
        if self.entity.type == "data_source":
            return self.entity.id
        return self.data.parent.data_source_id if self.data.parent else None
