"""What can go wrong when talking to Notion, each with the sentence that tells a person what to do.

The gateway turns every notion-client / httpx failure into one of these, so callers (the CLI, the
poller, flows) never need to know notion-client's error codes and never show a traceback for a
situation a person can fix.
"""

from __future__ import annotations

from vidgen.errors import VidgenError


class NotionError(VidgenError):
    """Base of the Notion failures; `base_url` is where the request went."""

    def __init__(self, message: str, *, base_url: str = ""):
        self.base_url = base_url
        super().__init__(message)


class NotionUnavailable(NotionError):
    """Notion could not be reached, timed out, or kept answering 5xx after every retry."""


class NotionRateLimited(NotionError):
    """Notion still answered 429 after every retry (another process is spending the quota)."""

    def __init__(self, message: str, *, base_url: str = "", retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message, base_url=base_url)


class NotionNotFound(NotionError):
    """A page, database or data source that does not exist (or is not shared with the integration)."""


class NotionUnauthorized(NotionError):
    """The token was refused (401) or lacks access (403)."""


class NotionInvalidEntry(NotionError):
    """Notion refused what we sent (validation_error / invalid_request): the payload, not the link, is wrong."""
