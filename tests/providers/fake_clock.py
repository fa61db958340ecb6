"""A monotonic clock for adapters that poll: it moves only when the code under test sleeps, so no
test really waits and a timeout is reached in microseconds."""

from __future__ import annotations


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
