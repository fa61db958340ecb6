"""Request pacing for Notion: one thread-safe token bucket per (Notion, token), and the retry policy.

Notion allows an average of 3 requests per second per token, and every flow run, poller and CLI
command in one process spends the same quota. One bucket per (base_url, token) keeps the sum under
the limit instead of each caller keeping only its own share under it. A 429's Retry-After holds the
whole bucket, so the other callers stop too instead of each discovering the limit on its own.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

NOTION_REQUESTS_PER_SECOND = 3.0
DEFAULT_NOTION_URL = "https://api.notion.com"


class Limiter(Protocol):
    """What the gateway needs from a pacer: wait before each request, and stop everyone after a 429.

    TokenBucket is the one in this process; a caller may wrap it (e.g. to also take a slot of a
    limit shared between processes).
    """

    def acquire(self) -> float: ...

    def hold_off(self, seconds: float) -> None: ...


class TokenBucket:
    """At most `rate` acquisitions per second on average, with bursts of up to `capacity`."""

    def __init__(
        self,
        rate: float = NOTION_REQUESTS_PER_SECOND,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate <= 0:
            raise ValueError("rate must be positive (use TokenBucket.unlimited() for no limit)")
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._last = clock()

    @classmethod
    def unlimited(cls) -> TokenBucket:
        """A bucket that never waits: for servers without a limit (benchmarks, test fixtures)."""
        return cls(rate=math.inf)

    @property
    def is_unlimited(self) -> bool:
        return math.isinf(self.rate)

    def _reserve(self) -> float:
        """Take one token (possibly going into debt) and return how long the caller must wait for it."""
        with self._lock:
            now = self._clock()
            if now > self._last:
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
            self._tokens -= 1
            ready_at = self._last + max(0.0, -self._tokens) / self.rate
            return max(0.0, ready_at - now)

    def acquire(self) -> float:
        """Block until a request may be sent; returns the seconds waited."""
        if self.is_unlimited:
            return 0.0
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def try_acquire(self) -> bool:
        """Take a token if one is there now; False (and nothing taken) when the caller would have to wait.

        For callers that refuse rather than queue (the webhook receiver's verification requests).
        """
        if self.is_unlimited:
            return True
        with self._lock:
            now = self._clock()
            if now > self._last:
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True

    def hold_off(self, seconds: float) -> None:
        """Nobody sharing this bucket sends for `seconds` (the server said so with Retry-After)."""
        if self.is_unlimited or seconds <= 0:
            return
        with self._lock:
            now = self._clock()
            self._last = max(self._last, now + seconds)
            self._tokens = min(self._tokens, 0.0)


_shared: dict[tuple[str, str], TokenBucket] = {}
_shared_lock = threading.Lock()


def shared_limiter(base_url: str | None, token: str, rate: float = NOTION_REQUESTS_PER_SECOND) -> TokenBucket:
    """The process-wide bucket for this Notion and token (the token is keyed by hash, never kept)."""
    url = (base_url or DEFAULT_NOTION_URL).rstrip("/")
    key = (url, hashlib.sha256(token.encode()).hexdigest())
    with _shared_lock:
        bucket = _shared.get(key)
        if bucket is None:
            bucket = _shared[key] = TokenBucket(rate)
        return bucket


class RetryPolicy(BaseModel):
    """How hard the gateway tries before reporting Notion unavailable or rate limited.

    Bounded in attempts and in total time so a dead server fails a command in about a minute, not
    never; tests shrink the waits to milliseconds.
    """

    model_config = ConfigDict(frozen=True)

    attempts: int = Field(default=5, ge=1)
    max_total_s: float = Field(default=60.0, gt=0)
    initial_wait_s: float = Field(default=0.5, ge=0)
    max_wait_s: float = Field(default=20.0, ge=0)
    jitter_s: float = Field(default=0.5, ge=0)
    max_retry_after_s: float = Field(default=30.0, ge=0, description="longer Retry-After: give up at once")
