"""The one cost ledger (and YouTube's daily quota), as SQL tables on any SQLAlchemy engine.

SQLite by default (`.vidgen/ledger.sqlite`), PostgreSQL for scale; the Prefect layer hands in the
engine of a `prefect-sqlalchemy` `SqlAlchemyConnector` block. Each paid call is recorded under an
idempotency key, so a retried task or a resumed run can never count the same call twice.
"""

from __future__ import annotations


from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

metadata = MetaData()

cost_entries = Table(
    "vidgen_cost_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("page_id", String(64), nullable=False, index=True),
    Column("channel_id", String(64), nullable=False, index=True),
    Column("step", String(32), nullable=False),
    Column("item", String(64), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("units", Float, nullable=False),
    Column("unit", String(32), nullable=False),
    Column("usd", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

youtube_quota = Table(
    "vidgen_youtube_quota",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel_id", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("units", Integer, nullable=False),
    UniqueConstraint("channel_id", "day", name="uq_vidgen_youtube_quota_channel_day"),
)


def _insert(engine: Engine, table: Table):
    dialect = sqlite if engine.dialect.name == "sqlite" else postgresql
    return dialect.insert(table)


def ledger_engine_for(url: str) -> Engine:
    """An engine for the ledger's URL; a SQLite file's folder is made on first use."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url)


@dataclass(frozen=True)
class CostLine:
    step: str
    item: str
    provider: str
    units: float
    unit: str
    usd: float


class CostLedger:
    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine, tables=[cost_entries])

    @classmethod
    def from_url(cls, url: str) -> CostLedger:
        return cls(ledger_engine_for(url))

    def record(
        self,
        *,
        page_id: str,
        channel_id: str,
        step: str,
        item: str,
        provider: str,
        units: float,
        unit: str,
        usd: float,
        idempotency_key: str | None = None,
    ) -> bool:
        """Add one paid call; False when this key was already recorded (nothing is added twice)."""
        key = idempotency_key or f"{page_id}:{step}:{item}"
        stmt = (
            _insert(self.engine, cost_entries)
            .values(
                idempotency_key=key,
                page_id=page_id,
                channel_id=channel_id,
                step=step,
                item=item,
                provider=provider,
                units=units,
                unit=unit,
                usd=round(usd, 6),
                created_at=datetime.now(timezone.utc),
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(cost_entries.c.id)  # rowcount is not reliable across drivers (psycopg 3 says -1)
        )
        with self.engine.begin() as conn:
            return conn.execute(stmt).first() is not None

    def total_for(self, page_id: str) -> float:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.coalesce(func.sum(cost_entries.c.usd), 0.0)).where(cost_entries.c.page_id == page_id)
            ).scalar_one()
        return round(float(value), 4)

    def lines_for(self, page_id: str) -> list[CostLine]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    cost_entries.c.step,
                    cost_entries.c.item,
                    cost_entries.c.provider,
                    cost_entries.c.units,
                    cost_entries.c.unit,
                    cost_entries.c.usd,
                )
                .where(cost_entries.c.page_id == page_id)
                .order_by(cost_entries.c.id)
            ).all()
        return [CostLine(*row) for row in rows]


class QuotaExceeded(Exception):
    """Today's YouTube quota for a channel is spent; carries when it resets (UTC midnight, Pacific in reality)."""

    def __init__(self, channel_id: str, used: int, needed: int, limit: int):
        self.channel_id, self.used, self.needed, self.limit = channel_id, used, needed, limit
        super().__init__(f"YouTube quota for {channel_id}: {used}/{limit} units used today, {needed} more needed")


class QuotaLedger:
    """Per-channel YouTube Data API units spent per day (10,000 a day by default; an upload is 1,600)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine, tables=[youtube_quota])

    def used(self, channel_id: str, day: date | None = None) -> int:
        day = day or datetime.now(timezone.utc).date()
        with self.engine.connect() as conn:
            value = conn.execute(
                select(youtube_quota.c.units).where(youtube_quota.c.channel_id == channel_id, youtube_quota.c.day == day)
            ).scalar_one_or_none()
        return int(value or 0)

    def reserve(self, channel_id: str, units: int, limit: int, day: date | None = None) -> None:
        """Count `units` against today's quota, or raise QuotaExceeded (and count nothing)."""
        day = day or datetime.now(timezone.utc).date()
        with self.engine.begin() as conn:
            current = conn.execute(
                select(youtube_quota.c.units).where(youtube_quota.c.channel_id == channel_id, youtube_quota.c.day == day)
            ).scalar_one_or_none()
            used = int(current or 0)
            if used + units > limit:
                raise QuotaExceeded(channel_id, used, units, limit)
            stmt = _insert(self.engine, youtube_quota).values(channel_id=channel_id, day=day, units=units)
            stmt = stmt.on_conflict_do_update(
                index_elements=["channel_id", "day"], set_={"units": youtube_quota.c.units + units}
            )
            conn.execute(stmt)
