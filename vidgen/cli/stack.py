"""The embedded default: Prefect's server on SQLite and the local Notion server, started on demand.

Both are real servers in their own processes (so they outlive one command and a second `vidgen demo`
finds them running), on loopback, with state and logs under `.vidgen/`. A Prefect API that is already
configured (PREFECT_API_URL) is used as it is: then nothing is started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from vidgen.config import DEFAULT_LOCAL_NOTION_PORT, LOCAL_NOTION_TOKEN, Paths

PREFECT_PORT = int(os.environ.get("VIDGEN_PREFECT_PORT", "4200"))


class StackError(RuntimeError):
    pass


def _healthy(url: str, headers: dict[str, str] | None = None) -> bool:
    try:
        return httpx.get(url, headers=headers, timeout=2.0).status_code < 500
    except httpx.HTTPError:
        return False


def _spawn(cmd: list[str], log: Path, env: dict[str, str], pidfile: Path | None = None) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    if pidfile is not None:
        pidfile.write_text(str(proc.pid))
    return proc


def pidfiles(paths: Paths) -> dict[str, Path]:
    return {name: paths.home / "logs" / f"{name}.pid" for name in ("prefect-server", "notion-server")}


def stop_servers(paths: Paths) -> list[str]:
    """Stop what `ensure_prefect` / `ensure_local_notion` started (their whole process groups)."""
    import signal

    stopped: list[str] = []
    for name, pidfile in pidfiles(paths).items():
        if not pidfile.is_file():
            continue
        pid = int(pidfile.read_text().strip() or 0)
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped.append(f"{name} (pid {pid})")
        except (ProcessLookupError, PermissionError):
            pass
        pidfile.unlink(missing_ok=True)
    return stopped


def _wait(check, what: str, proc: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-12:]) if log.exists() else ""
            raise StackError(f"{what} exited with code {proc.returncode}; its log ({log}) ends:\n{tail}")
        time.sleep(0.5)
    raise StackError(f"{what} did not become ready within {timeout_s:.0f} s; see {log}")


def prefect_env(paths: Paths) -> dict[str, str]:
    """PREFECT_* settings of the embedded default, unless the user configured a Prefect API already."""
    if os.environ.get("PREFECT_API_URL"):
        return {}
    home = paths.home / "prefect"
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{PREFECT_PORT}/api",
        "PREFECT_UI_URL": f"http://127.0.0.1:{PREFECT_PORT}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
    }


def embedded_on_sqlite() -> bool:
    """Whether this process talks to the embedded Prefect server on its default SQLite database."""
    embedded = os.environ.get("PREFECT_API_URL") == f"http://127.0.0.1:{PREFECT_PORT}/api"
    return embedded and os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL", "sqlite").startswith("sqlite")


def ensure_prefect(paths: Paths, *, timeout_s: float = 90) -> str:
    """The Prefect API URL, starting `prefect server start` (SQLite in .vidgen/prefect) if needed."""
    env_add = prefect_env(paths)
    if not env_add:
        return os.environ["PREFECT_API_URL"]
    os.environ.update(env_add)
    api = env_add["PREFECT_API_URL"]
    if _healthy(f"{api}/health"):
        return api
    log = paths.home / "logs" / "prefect-server.log"
    db = paths.home / "prefect" / "prefect.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PREFECT_API_DATABASE_CONNECTION_URL": os.environ.get(
            "PREFECT_API_DATABASE_CONNECTION_URL", f"sqlite+aiosqlite:///{db}"
        ),
        # A task refused a tag slot retries after at most 1 s instead of up to 10 s
        # (scripts/bench_orchestration.py: kling slot use 73% -> 82%).
        "PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS": os.environ.get(
            "PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS", "1"
        ),
    }
    prefect = Path(sys.executable).with_name("prefect")
    proc = _spawn(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(PREFECT_PORT)],
        log,
        env,
        pidfiles(paths)["prefect-server"],
    )
    _wait(lambda: _healthy(f"{api}/health"), "Prefect server", proc, log, timeout_s)
    return api


def ensure_local_notion(paths: Paths, *, port: int = DEFAULT_LOCAL_NOTION_PORT, timeout_s: float = 30) -> str:
    """The local Notion server's base URL, starting `vidgen notion serve` if nothing answers there."""
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {LOCAL_NOTION_TOKEN}", "Notion-Version": "2025-09-03"}
    if _healthy(f"{base}/v1/users/me", headers):
        return base
    log = paths.home / "logs" / "notion-server.log"
    vidgen = Path(sys.executable).with_name("vidgen")
    proc = _spawn(
        [str(vidgen), "notion", "serve", "--port", str(port)], log, dict(os.environ), pidfiles(paths)["notion-server"]
    )
    _wait(lambda: _healthy(f"{base}/v1/users/me", headers), "local Notion server", proc, log, timeout_s)
    return base


def start_worker(
    paths: Paths, *, extra_env: dict[str, str] | None = None, poll_interval: int | None = None
) -> subprocess.Popen:
    """`vidgen serve` in the background: it executes the deployments' runs (and their resumes)."""
    log = paths.home / "logs" / "serve.log"
    vidgen = Path(sys.executable).with_name("vidgen")
    env = {**os.environ, **(extra_env or {})}
    interval = ["--poll-interval", str(poll_interval)] if poll_interval else []
    return _spawn([str(vidgen), "serve", *interval], log, env)


def export_paths(paths: Paths) -> None:
    """Absolute VIDGEN_* paths for child processes (flow runs may start in another directory)."""
    os.environ["VIDGEN_HOME"] = str(paths.home)
    os.environ["VIDGEN_CHANNELS_DIR"] = str(paths.channels)
    os.environ["VIDGEN_WORKSPACES"] = str(paths.workspaces)
