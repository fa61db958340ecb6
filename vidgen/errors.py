"""One classification of failure for every provider, and where each class lands on the board.

Every adapter raises one of these four; the orchestration layer decides retries from the class
alone (`is_retriable`) and the final Notion status from `ERROR_STATUS`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from enum import StrEnum

from vidgen.statuses import NotionStatus


class ErrorClass(StrEnum):
    RETRIABLE = "retriable"  # 429, 5xx, timeouts: try again later
    INVALID_INPUT = "invalid_input"  # 4xx validation, content policy on our prompt
    API_FAILURE = "api_failure"  # auth, quota exhausted, unexpected response
    NEEDS_REVIEW = "needs_review"  # safety blocks and anything a human must look at


ERROR_STATUS: dict[ErrorClass, NotionStatus] = {
    ErrorClass.RETRIABLE: NotionStatus.ERROR_RETRIABLE,
    ErrorClass.INVALID_INPUT: NotionStatus.ERROR_INVALID_INPUT,
    ErrorClass.API_FAILURE: NotionStatus.ERROR_API_FAILURE,
    ErrorClass.NEEDS_REVIEW: NotionStatus.ERROR_MANUAL_REVIEW,
}


class VidgenError(Exception):
    """Base of every error this package raises on purpose."""


class ProviderError(VidgenError):
    """A provider's failure, classified; `retry_after` is the wait the provider asked for (seconds).

    Setting `retry_after` also records `retry_at`, the instant it ends: the orchestrator may read the
    error minutes later (a persisted task state, a deferred step), when a relative wait would be stale.
    """

    kind: ErrorClass = ErrorClass.API_FAILURE
    retry_at: datetime | None = None
    _retry_after: float | None = None

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        retry_after: float | None = None,
    ):
        self.provider = provider
        self.status_code = status_code
        self.retry_after = retry_after
        prefix = f"{provider}: " if provider else ""
        super().__init__(f"{prefix}{message}")

    @property
    def retry_after(self) -> float | None:
        return self._retry_after

    @retry_after.setter
    def retry_after(self, seconds: float | None) -> None:
        self._retry_after = seconds
        self.retry_at = None if seconds is None else datetime.now(timezone.utc) + timedelta(seconds=seconds)

    @property
    def notion_status(self) -> NotionStatus:
        return ERROR_STATUS[self.kind]


class RetriableError(ProviderError):
    kind = ErrorClass.RETRIABLE


class InvalidInputError(ProviderError):
    kind = ErrorClass.INVALID_INPUT


class ApiFailureError(ProviderError):
    kind = ErrorClass.API_FAILURE


class NeedsReviewError(ProviderError):
    kind = ErrorClass.NEEDS_REVIEW


def is_retriable(exc: BaseException) -> bool:
    """Whether a failure is worth another try. Unknown exceptions are not: they are bugs."""
    if isinstance(exc, ProviderError):
        return exc.kind is ErrorClass.RETRIABLE
    return isinstance(exc, (TimeoutError, ConnectionError))


def classify_http(
    status_code: int, message: str, *, provider: str, retry_after: float | None = None
) -> ProviderError:
    """The documented meaning of an HTTP status, shared by every HTTP-speaking adapter."""
    cls: type[ProviderError]
    if status_code == 429 or status_code == 408 or status_code >= 500:
        cls = RetriableError
    elif status_code in (401, 402, 403):
        cls = ApiFailureError  # auth, payment/quota, permission: a person must act
    elif status_code in (400, 404, 409, 413, 415, 422):
        cls = InvalidInputError
    else:
        cls = ApiFailureError
    return cls(f"HTTP {status_code}: {message}", provider=provider, status_code=status_code, retry_after=retry_after)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds form; HTTP-date is converted)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
