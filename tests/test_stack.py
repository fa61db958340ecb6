"""The embedded default (vidgen.stack): PostgreSQL from the wheel, database choice, clear failures."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import namedtuple

import pytest

from vidgen import stack
from vidgen.config import Paths

EMBEDDED = f"http://127.0.0.1:{stack.PREFECT_PORT}/api"


@pytest.mark.parametrize(
    ("api_url", "choice", "database", "expected"),
    [
        (EMBEDDED, None, None, False),  # the default: embedded PostgreSQL
        (EMBEDDED, "sqlite", None, True),
        (EMBEDDED, None, "sqlite+aiosqlite:////tmp/p.db", True),
        (EMBEDDED, None, "postgresql+asyncpg://postgres@127.0.0.1:5432/test", False),
        ("http://prefect.internal:4200/api", "sqlite", None, False),  # the user's own server: its database is unknown
    ],
)
def test_embedded_on_sqlite(monkeypatch, api_url, choice, database, expected):
    monkeypatch.setenv("PREFECT_API_URL", api_url)
    for name, value in ((stack.DATABASE_SETTING, choice), ("PREFECT_API_DATABASE_CONNECTION_URL", database)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert stack.embedded_on_sqlite() is expected


def test_an_unknown_database_setting_is_refused_in_one_sentence(monkeypatch):
    monkeypatch.setenv(stack.DATABASE_SETTING, "mysql")
    with pytest.raises(stack.StackError, match="must be 'postgres' or 'sqlite', not 'mysql'"):
        stack.database_choice()


def test_sqlite_setting_puts_prefect_and_the_ledger_in_vidgen_home(monkeypatch, vidgen_env):
    monkeypatch.setenv(stack.DATABASE_SETTING, "sqlite")
    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL", raising=False)
    monkeypatch.delenv("VIDGEN_LEDGER_URL", raising=False)
    paths = Paths.from_env()
    assert stack.prefect_database_url(paths) == f"sqlite+aiosqlite:///{paths.home / 'prefect' / 'prefect.db'}"
    assert stack.ledger_url(paths) == f"sqlite:///{paths.home / 'ledger.sqlite'}"


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    server = stack.EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    yield server
    server.stop()


def test_embedded_postgres_starts_reuses_and_serves_both_databases(pg):
    started = time.monotonic()
    pg.start()
    first_start = time.monotonic() - started
    pid = pg._info().pid
    pg.start()  # running already: reused, not started again
    assert pg._info().pid == pid
    assert first_start < 30
    pg.ensure_database("prefect")
    pg.ensure_database("prefect")  # idempotent
    import psycopg

    with psycopg.connect(host=str(pg.socket_dir), user="postgres", dbname="prefect") as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    assert pg.url("prefect", driver="asyncpg") == f"postgresql+asyncpg://postgres@/prefect?host={pg.socket_dir}"


def test_a_killed_postgres_leaves_a_stale_pidfile_and_starts_again_with_its_data(pg):
    import psycopg

    pg.start()
    pg.ensure_database("kept")
    with psycopg.connect(host=str(pg.socket_dir), user="postgres", dbname="kept", autocommit=True) as conn:
        conn.execute("create table if not exists t (x int)")
        conn.execute("insert into t values (42)")
    pid = pg._info().pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pg.running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (pg.data_dir / "postmaster.pid").exists()  # what kill -9 leaves behind
    pg.start()
    with psycopg.connect(host=str(pg.socket_dir), user="postgres", dbname="kept") as conn:
        assert conn.execute("select x from t").fetchall() == [(42,)]


def test_stop_stops_and_start_again_keeps_the_data(pg):
    pg.start()
    assert pg.stop() is True
    assert not pg.running()
    assert pg.stop() is False  # nothing to stop
    pg.start()
    assert pg.running()


def test_a_full_disk_is_one_sentence_and_touches_nothing(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(stack.shutil, "disk_usage", lambda _p: usage(10**9, 10**9 - 1000, 1000))
    data = tmp_path / "pg"
    with pytest.raises(stack.StackError, match=r"has only 0 MB free; free some space"):
        stack.EmbeddedPostgres(data).start()
    assert not data.exists()


def test_an_external_postgres_that_refuses_is_one_sentence(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    with pytest.raises(stack.StackError, match=r"PostgreSQL at 127\.0\.0\.1 refused the connection .*PREFECT_API_DATABASE_CONNECTION_URL"):
        stack.check_postgres_url(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect")


def test_a_port_taken_by_another_program_is_named(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(stack.StackError, match=f"port {port} is already in use by another program"):
            stack.start_prefect_server(tmp_path, port, "sqlite+aiosqlite:///x.db")


def test_a_server_stopped_by_its_pid_by_the_process_that_started_it_is_not_waited_for_in_vain():
    """Stopping by pid (a pidfile) a server this same process spawned: once it exits on SIGTERM it
    is a zombie until reaped, which signal 0 still reaches; stop_process reaps it instead of waiting
    out its 20 s and sending SIGKILL (seen: every benchmark's teardown took 40 s)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    pid = proc.pid
    del proc  # as `ensure_local_notion` keeps only the pidfile
    started = time.monotonic()
    stack.stop_process(pid, timeout_s=20)
    assert time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
