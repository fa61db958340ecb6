"""Notion webhooks: signature, event model, the receiver at `POST /webhooks/notion` and its stores.

No Prefect here: the receiver hands page ids to an injected `dispatch(page_id, event_type)`.
"""

from vidgen.webhooks.events import NotionWebhookEvent
from vidgen.webhooks.receiver import (
    WEBHOOK_PATH,
    Dispatch,
    ReceiverConfig,
    WebhookServer,
    create_webhook_app,
    start_webhook_server,
)
from vidgen.webhooks.signature import SIGNATURE_HEADER, sign, verify_signature

__all__ = [
    "SIGNATURE_HEADER",
    "WEBHOOK_PATH",
    "Dispatch",
    "NotionWebhookEvent",
    "ReceiverConfig",
    "WebhookServer",
    "create_webhook_app",
    "sign",
    "start_webhook_server",
    "verify_signature",
]
