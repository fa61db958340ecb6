"""`vidgen serve` warns when the embedded Prefect server runs on SQLite (and only then)."""

from __future__ import annotations

import pytest

from vidgen.cli import stack


@pytest.mark.parametrize(
    ("api_url", "database", "expected"),
    [
        (f"http://127.0.0.1:{stack.PREFECT_PORT}/api", None, True),
        (f"http://127.0.0.1:{stack.PREFECT_PORT}/api", "sqlite+aiosqlite:////tmp/p.db", True),
        (f"http://127.0.0.1:{stack.PREFECT_PORT}/api", "postgresql+asyncpg://postgres@127.0.0.1:5432/test", False),
        ("http://prefect.internal:4200/api", None, False),  # the user's own server: its database is unknown here
    ],
)
def test_embedded_on_sqlite(monkeypatch, api_url, database, expected):
    monkeypatch.setenv("PREFECT_API_URL", api_url)
    if database is None:
        monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL", raising=False)
    else:
        monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", database)
    assert stack.embedded_on_sqlite() is expected
