"""A real Prefect server (SQLite, and PostgreSQL where it runs), a real local Notion server, and a
real `vidgen serve` worker: the integration tests drive flows exactly as a user's machine runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def wait_until(check, timeout_s: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    """The stack's wait, failing the test (not raising StackError) with the log's tail."""
    from vidgen.stack import StackError, wait_until as stack_wait

    try:
        return stack_wait(check, what, timeout_s=timeout_s, proc=proc, log=log)
    except StackError as exc:
        raise AssertionError(str(exc)) from None


def _release_client_services() -> None:
    """Flush and stop this process's Prefect client services (events, API logs, slot leases).

    Each is a singleton that binds to the API URL current when it first starts, so without this the
    next session server would get this one's events and lease renewals."""
    from prefect._internal.concurrency.services import _QueueServiceBase

    _QueueServiceBase.drain_all(timeout=30, at_exit=False)


@dataclass
class PrefectServer:
    api_url: str
    home: Path
    database: str
    env: dict[str, str] = field(default_factory=dict)
    ledger_url: str = ""


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> PrefectServer:
    """Prefect's server on the database the product would use here: the embedded PostgreSQL by
    default, SQLite with VIDGEN_PREFECT_DATABASE=sqlite (run the suite both ways), started by the
    product's own `vidgen.stack`."""
    from vidgen import stack

    home = tmp_path_factory.mktemp("prefect")
    choice = stack.database_choice()
    pg = None
    if choice == "postgres":
        pg = stack.EmbeddedPostgres(home / "postgres").start()
        pg.ensure_database(stack.PREFECT_DATABASE)
        pg.ensure_database(stack.LEDGER_DATABASE)
        db_url, ledger_url = pg.url(stack.PREFECT_DATABASE, driver="asyncpg"), pg.url(stack.LEDGER_DATABASE)
    else:
        db_url, ledger_url = f"sqlite+aiosqlite:///{home / 'prefect.db'}", f"sqlite:///{home / 'ledger.sqlite'}"
    server = stack.start_prefect_server(home, stack.free_port(), db_url, ui=False)
    try:
        yield PrefectServer(api_url=server.api_url, home=home, database=choice, env=server.env, ledger_url=ledger_url)
    finally:
        _release_client_services()
        server.stop()
        if pg is not None:
            pg.stop()


def small_channels(directory: Path, *, scenes: int = 3, words: int = 10, gates: bool = True) -> Path:
    """The sample channels, shortened so a test video takes seconds, not minutes."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in (REPO / "channels").glob("*.yaml"):
        data = yaml.safe_load(source.read_text())
        data["script"].update({"scenes": scenes, "min_scenes": 1, "words_per_scene": words})
        for gate in data["review"].values():
            gate["enabled"] = gates
        (directory / source.name).write_text(yaml.safe_dump(data, sort_keys=False))
    return directory


@dataclass
class Stack:
    """Everything a produce-video run needs, wired like a user's machine."""

    prefect: PrefectServer
    env: dict[str, str]
    root: Path
    worker: subprocess.Popen | None = None
    worker_log: Path | None = None

    def start_worker(self) -> None:
        self.worker_log = self.root / "serve.log"
        with open(self.worker_log, "wb") as out:
            self.worker = subprocess.Popen(
                [str(BIN / "vidgen"), "serve", "--poll-interval", "3600"],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env}, start_new_session=True,
                cwd=self.root,
            )
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        def registered() -> bool:
            try:
                with get_client(sync_client=True) as client:
                    client.read_deployment_by_name("produce-video/produce-video")
                return True
            except ObjectNotFound:
                return False

        wait_until(registered, 120, "vidgen serve to register its deployments", self.worker, self.worker_log)

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.worker.kill()


@pytest.fixture
def stack(prefect_server: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Prefect (session), a fresh local Notion server + database, small channels, and a worker."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    from vidgen.notion.gateway import NotionGateway
    from vidgen.notion.server import LocalNotionServer
    from vidgen.pipeline import configured_channels

    channels_dir = small_channels(tmp_path / "channels")
    notion = LocalNotionServer(tmp_path / "notion.sqlite")
    notion.start()
    channels = configured_channels(channels_dir)
    with NotionGateway(notion.token, base_url=notion.base_url) as gateway:
        _db, data_source_id = gateway.create_database(parent_page_id=None, title="Video Pipeline", channels=channels)
    env = {
        **prefect_server.env,
        "VIDGEN_HOME": str(tmp_path / "home"),
        "VIDGEN_WORKSPACES": str(tmp_path / "workspaces"),
        "VIDGEN_CHANNELS_DIR": str(channels_dir),
        "VIDGEN_RETRY_DELAYS": "0,0",
        "VIDGEN_LEDGER_URL": prefect_server.ledger_url,
        "NOTION_TOKEN": notion.token,
        "NOTION_BASE_URL": notion.base_url,
        "NOTION_DATA_SOURCE_ID": data_source_id,
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from blocks.config import ledger_engine, provider_settings
    from tasks.notion import notion_gateway
    from tasks.production import _ledger

    for cached in (notion_gateway, provider_settings, ledger_engine, _ledger):
        cached.cache_clear()
    s = Stack(prefect=prefect_server, env=env, root=tmp_path)
    with temporary_settings(
        updates={
            PREFECT_API_URL: prefect_server.api_url,
            PREFECT_HOME: prefect_server.home,
            PREFECT_LOCAL_STORAGE_PATH: prefect_server.home / "storage",
        }
    ):
        try:
            yield s
        finally:
            s.stop_worker()
            notion.stop()
            for cached in (notion_gateway, provider_settings, ledger_engine, _ledger):
                cached.cache_clear()
    shutil.rmtree(tmp_path / "workspaces", ignore_errors=True)


@pytest.fixture
def prefect_api(prefect_server, monkeypatch):
    """This process pointed at the session's Prefect server (settings and the workers' environment)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    for key, value in prefect_server.env.items():
        monkeypatch.setenv(key, value)
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url, PREFECT_HOME: prefect_server.home}):
        yield prefect_server
