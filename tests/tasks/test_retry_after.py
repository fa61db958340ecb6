"""Retry-After within the one retry policy, and deferral of waits a run should not sit out."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from prefect import task
from prefect.states import Failed
from prefect.utilities.math import clamped_poisson_interval

import tasks.retry as retry
from vidgen.errors import ApiFailureError, InvalidInputError, RetriableError, classify_http
from vidgen.providers.youtube import UploadDeferred

NOW = datetime(2026, 12, 1, 20, 0, tzinfo=timezone.utc)  # 12:00 PST


@pytest.fixture
def clock(monkeypatch):
    """Freeze the policy's clock at NOW and record the waits instead of sleeping."""
    slept: list[float] = []
    monkeypatch.setattr(retry, "_now", lambda: NOW)
    monkeypatch.setattr(retry, "_sleep", slept.append)
    monkeypatch.delenv("VIDGEN_MAX_RETRY_WAIT_S", raising=False)
    return slept


def _paid_task(monkeypatch, delays: str | None = None):
    if delays is None:
        monkeypatch.delenv("VIDGEN_RETRY_DELAYS", raising=False)
    else:
        monkeypatch.setenv("VIDGEN_RETRY_DELAYS", delays)

    @task(name="paid-step", **retry.paid_step_options())
    def paid_step() -> None:
        return None

    return paid_step


def _asked(error, seconds: float):
    """`error` as if raised at NOW by a provider answering Retry-After: seconds."""
    error.retry_after = seconds
    error.retry_at = NOW + timedelta(seconds=seconds)
    return error


def test_setting_retry_after_records_when_it_ends():
    before = datetime.now(timezone.utc)
    error = classify_http(429, "slow down", provider="kling", retry_after=120)
    assert error.retry_after == 120
    assert before + timedelta(seconds=120) <= error.retry_at <= datetime.now(timezone.utc) + timedelta(seconds=120)
    assert classify_http(503, "down", provider="kling").retry_at is None


@pytest.mark.parametrize("attempt, asked", [(1, 120), (1, 61), (2, 400), (4, 5000 - 1400), (6, 3700)])
def test_the_next_try_is_never_sooner_than_the_provider_asked(monkeypatch, clock, attempt, asked):
    """Whatever delay Prefect draws for this attempt, waited-out remainder + delay >= Retry-After."""
    monkeypatch.setenv("VIDGEN_MAX_RETRY_WAIT_S", "7200")
    paid_step = _paid_task(monkeypatch)
    error = _asked(RetriableError("HTTP 429", provider="kling", status_code=429), asked)

    assert retry.retry_if_retriable(paid_step, SimpleNamespace(run_count=attempt), Failed(data=error)) is True

    waited = sum(clock)
    delay = paid_step.retry_delay_seconds[min(attempt - 1, len(paid_step.retry_delay_seconds) - 1)]
    rng = random.Random(attempt)
    monkeypatch.setattr(random, "uniform", rng.uniform)
    draws = [clamped_poisson_interval(delay, clamping_factor=paid_step.retry_jitter_factor) for _ in range(2000)]
    assert waited + min(draws) >= asked - 1e-6
    # and no more than needed: the shortest possible draw plus the wait lands exactly on the ask
    assert waited + retry.shortest_delay_s(paid_step.retry_delay_seconds, paid_step.retry_jitter_factor, attempt - 1) == pytest.approx(asked)


def test_a_short_retry_after_adds_nothing_to_the_policy(monkeypatch, clock):
    paid_step = _paid_task(monkeypatch)
    error = _asked(RetriableError("HTTP 429", provider="elevenlabs", status_code=429), 10)
    assert retry.retry_if_retriable(paid_step, SimpleNamespace(run_count=1), Failed(data=error)) is True
    assert clock == []


def test_with_zero_delays_the_whole_retry_after_is_waited(monkeypatch, clock):
    paid_step = _paid_task(monkeypatch, "0,0")
    error = _asked(RetriableError("HTTP 503", provider="gemini", status_code=503), 3)
    assert retry.retry_if_retriable(paid_step, SimpleNamespace(run_count=1), Failed(data=error)) is True
    assert clock == [pytest.approx(3)]


@pytest.mark.parametrize("error", [InvalidInputError("bad prompt"), ApiFailureError("401"), KeyError("bug")])
def test_failures_that_are_not_retriable_are_neither_retried_nor_waited(monkeypatch, clock, error):
    paid_step = _paid_task(monkeypatch)
    assert retry.retry_if_retriable(paid_step, SimpleNamespace(run_count=1), Failed(data=error)) is False
    assert clock == []


def test_a_wait_of_hours_is_declined_and_deferred(monkeypatch, clock):
    paid_step = _paid_task(monkeypatch)
    error = _asked(RetriableError("HTTP 429", provider="kling", status_code=429), 3 * 3600)
    assert retry.retry_if_retriable(paid_step, SimpleNamespace(run_count=1), Failed(data=error)) is False
    assert clock == []
    deferral = retry.deferral_of(error, now=NOW)
    assert deferral is not None and deferral.until == NOW + timedelta(hours=3)
    assert deferral.message.startswith("Kling asked to wait until 2026-12-01 23:00 UTC (15:00 PST)")


def test_the_max_wait_is_configurable(monkeypatch, clock):
    monkeypatch.setenv("VIDGEN_MAX_RETRY_WAIT_S", "30")
    error = _asked(RetriableError("HTTP 429", provider="kling", status_code=429), 31)
    assert retry.deferral_of(error, now=NOW) is not None
    assert retry.deferral_of(_asked(RetriableError("HTTP 429", provider="kling"), 30), now=NOW) is None


def test_a_spent_youtube_quota_defers_the_upload_until_midnight_pacific(monkeypatch, clock):
    paid_step = _paid_task(monkeypatch)
    reset = retry.youtube_quota_resets_at(NOW)
    assert reset == datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)  # midnight PST
    error = UploadDeferred("quota", channel_id="history", used=9000, needed=1650, limit=10000,
                           retry_after=(reset - datetime.now(timezone.utc)).total_seconds())
    assert abs((error.retry_at - reset).total_seconds()) < 5  # UploadDeferred records the instant too
    error.retry_at = reset
    assert retry.retry_if_retriable(paid_step, SimpleNamespace(run_count=1), Failed(data=error)) is False

    deferral = retry.deferral_of(error, now=NOW)
    assert deferral is not None
    assert deferral.until == reset
    assert deferral.message == "YouTube quota for history is spent; upload deferred until 2026-12-02 08:00 UTC (00:00 PST)"


def test_the_reset_follows_daylight_saving_time():
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc)  # 05:00 PDT
    assert retry.youtube_quota_resets_at(summer) == datetime(2026, 7, 2, 7, 0, tzinfo=timezone.utc)
    assert retry.describe_until(datetime(2026, 7, 2, 7, 0, tzinfo=timezone.utc)) == "2026-07-02 07:00 UTC (00:00 PDT)"


def test_a_gemini_daily_quota_is_deferred_though_it_is_an_api_failure(clock):
    error = _asked(ApiFailureError("HTTP 429: daily quota exhausted", provider="gemini", status_code=429), 6 * 3600)
    deferral = retry.deferral_of(error, now=NOW)
    assert deferral is not None and deferral.until == NOW + timedelta(hours=6)
    assert retry.deferral_of(_asked(ApiFailureError("HTTP 403", provider="gemini", status_code=403), 6 * 3600),
                             now=NOW) is None
    assert retry.deferral_of(KeyError("bug"), now=NOW) is None
