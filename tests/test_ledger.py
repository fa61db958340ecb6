"""The cost ledger and YouTube quota on SQLite and on PostgreSQL (127.0.0.1:5432, database test)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import create_engine, text

from vidgen.ledger import CostLedger, QuotaExceeded, QuotaLedger


def _postgres_engine():
    try:
        import psycopg  # noqa: F401

        engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test", connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return engine
    except Exception:
        return None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        yield create_engine(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
        return
    engine = _postgres_engine()
    if engine is None:
        pytest.skip("PostgreSQL is not answering at 127.0.0.1:5432")
    yield engine
    engine.dispose()


def test_costs_add_up_and_nothing_is_counted_twice(engine):
    ledger = CostLedger(engine)
    page = f"page-{uuid.uuid4()}"
    for i in range(3):
        assert ledger.record(page_id=page, channel_id="wild", step="images", item=f"image/{i}", provider="gemini", units=1, unit="image", usd=0.039)
    assert ledger.record(page_id=page, channel_id="wild", step="clips", item="clip/0", provider="kling", units=1, unit="clip", usd=0.13)
    # a retried task records the same call again: ignored
    assert not ledger.record(page_id=page, channel_id="wild", step="images", item="image/0", provider="gemini", units=1, unit="image", usd=0.039)
    assert ledger.total_for(page) == pytest.approx(3 * 0.039 + 0.13)
    assert [l.item for l in ledger.lines_for(page)] == ["image/0", "image/1", "image/2", "clip/0"]


def test_quota_defers_the_seventh_upload_of_a_day(engine):
    quota = QuotaLedger(engine)
    channel, day = f"ch-{uuid.uuid4().hex[:8]}", date(2026, 11, 23)
    for _ in range(6):
        quota.reserve(channel, 1600, 10_000, day=day)
    with pytest.raises(QuotaExceeded) as info:
        quota.reserve(channel, 1600, 10_000, day=day)
    assert (info.value.used, info.value.needed) == (9600, 1600)
    assert quota.used(channel, day) == 9600  # the refused upload counted nothing
    quota.reserve(channel, 1600, 10_000, day=date(2026, 11, 24))  # a new day
