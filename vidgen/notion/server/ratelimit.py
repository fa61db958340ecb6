"""Notion's request limit: an average of N requests per second with small bursts, answered with 429."""

from __future__ import annotations

import math
import threading
import time


class TokenBucket:
    """`rate` tokens per second, holding at most `burst`; each request takes one."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0.0 when the request may proceed, else the seconds until a token will be available."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate


def retry_after_header(wait_seconds: float) -> str:
    """Whole seconds, never 0: notion-client parses it as an integer count of seconds."""
    return str(max(1, math.ceil(wait_seconds)))
