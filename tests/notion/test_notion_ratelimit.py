"""The shared token bucket: bursts up to capacity, then the rate; Retry-After holds everyone."""

from __future__ import annotations

import threading
import time

import pytest

from vidgen.notion.ratelimit import TokenBucket, shared_limiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_burst_then_three_per_second() -> None:
    t = FakeTime()
    bucket = TokenBucket(3, clock=t.clock, sleep=t.sleep)
    waits = [bucket.acquire() for _ in range(9)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3:] == pytest.approx([1 / 3] * 6)
    assert t.now - 100.0 == pytest.approx(2.0)  # 9 requests: 3 at once, then 6 at 3/s


def test_idle_time_refills_up_to_capacity_only() -> None:
    t = FakeTime()
    bucket = TokenBucket(3, clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        bucket.acquire()
    t.now += 60  # a long idle period must not bank 180 requests
    waits = [bucket.acquire() for _ in range(4)]
    assert waits == pytest.approx([0, 0, 0, 1 / 3])


def test_hold_off_makes_everyone_wait() -> None:
    t = FakeTime()
    bucket = TokenBucket(3, clock=t.clock, sleep=t.sleep)
    bucket.hold_off(2.0)
    assert bucket.acquire() == pytest.approx(2.0 + 1 / 3)
    assert bucket.acquire() == pytest.approx(1 / 3)


def test_unlimited_never_waits() -> None:
    bucket = TokenBucket.unlimited()
    bucket.hold_off(10)
    assert all(bucket.acquire() == 0 for _ in range(1000))


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_shared_per_url_and_token() -> None:
    a = shared_limiter("http://127.0.0.1:1/", "tok-a")
    assert shared_limiter("http://127.0.0.1:1", "tok-a") is a
    assert shared_limiter("http://127.0.0.1:1", "tok-b") is not a
    assert shared_limiter("http://127.0.0.1:2", "tok-a") is not a
    assert shared_limiter(None, "tok-a") is shared_limiter("https://api.notion.com", "tok-a")


def test_concurrent_callers_get_distinct_slots() -> None:
    """24 threads at the same instant: 4 go at once, the others are spaced 1/40 s apart, none twice."""
    t = FakeTime()
    waits: list[float] = []
    lock = threading.Lock()

    def no_sleep(seconds: float) -> None:  # time stands still: every wait is what the bucket reserved
        with lock:
            waits.append(seconds)

    bucket = TokenBucket(40, capacity=4, clock=t.clock, sleep=no_sleep)
    barrier = threading.Barrier(24)

    def worker() -> None:
        barrier.wait()
        bucket.acquire()

    threads = [threading.Thread(target=worker) for _ in range(24)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(waits) == pytest.approx([k / 40 for k in range(1, 21)])  # 4 did not wait at all


def test_threads_sharing_a_bucket_take_at_least_the_paced_time() -> None:
    bucket = TokenBucket(40, capacity=4)

    def worker() -> None:
        for _ in range(6):
            bucket.acquire()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    start = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # 24 requests with a burst of 4 at 40/s need at least 20/40 = 0.5 s (a loaded machine only adds to it).
    assert time.monotonic() - start >= 0.5 - 0.02
