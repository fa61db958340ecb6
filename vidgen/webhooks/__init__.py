"""Notion webhooks: signature, event model, the receiver at `POST /webhooks/notion` and its stores.

No Prefect here: the receiver hands page ids to an injected `dispatch` callable.
"""

from vidgen.webhooks.events import NotionWebhookEvent
from vidgen.webhooks.signature import SIGNATURE_HEADER, sign, verify_signature

__all__ = ["SIGNATURE_HEADER", "NotionWebhookEvent", "sign", "verify_signature"]
