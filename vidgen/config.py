"""Where things live and how to reach Notion: environment first, then what `vidgen notion init` saved.

Every path is relative to the working directory unless set, so the README's commands (run from the
project root) find `channels/`, write `workspaces/` and keep state in `.vidgen/`.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

NOTION_ENV_KEYS = ("NOTION_TOKEN", "NOTION_BASE_URL", "NOTION_DATA_SOURCE_ID")
LOCAL_NOTION_TOKEN = "secret_local_vidgen"  # the local server's token; a real workspace has its own
DEFAULT_LOCAL_NOTION_PORT = int(os.environ.get("VIDGEN_NOTION_PORT", "8765"))  # the local server's port


class Paths(BaseModel):
    home: Path  # state: local Notion store, Prefect home, ledger, saved settings
    channels: Path
    workspaces: Path

    @classmethod
    def from_env(cls) -> Paths:
        home = Path(os.environ.get("VIDGEN_HOME", ".vidgen")).resolve()
        return cls(
            home=home,
            channels=Path(os.environ.get("VIDGEN_CHANNELS_DIR", "channels")).resolve(),
            workspaces=Path(os.environ.get("VIDGEN_WORKSPACES", "workspaces")).resolve(),
        )

    @property
    def notion_env_file(self) -> Path:
        return self.home / "notion.env"

    @property
    def notion_store(self) -> Path:
        return self.home / "notion-local.sqlite"

    @property
    def ledger_url(self) -> str:
        return os.environ.get("VIDGEN_LEDGER_URL") or f"sqlite:///{self.home / 'ledger.sqlite'}"


class NotionSettings(BaseModel):
    token: str
    base_url: str | None = None  # None means api.notion.com
    data_source_id: str | None = None

    @property
    def is_local(self) -> bool:
        return bool(self.base_url) and any(h in self.base_url for h in ("127.0.0.1", "localhost", "[::1]"))


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def write_env_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = {**read_env_file(path), **values}
    path.write_text("".join(f"{k}={v}\n" for k, v in merged.items()), encoding="utf-8")
    path.chmod(0o600)


def notion_settings(paths: Paths | None = None) -> NotionSettings | None:
    """Environment variables override the saved `.vidgen/notion.env`; None when no token is known."""
    paths = paths or Paths.from_env()
    saved = read_env_file(paths.notion_env_file)
    merged = {k: os.environ.get(k) or saved.get(k) for k in NOTION_ENV_KEYS}
    if not merged["NOTION_TOKEN"]:
        return None
    return NotionSettings(
        token=merged["NOTION_TOKEN"],
        base_url=merged["NOTION_BASE_URL"] or None,
        data_source_id=merged["NOTION_DATA_SOURCE_ID"] or None,
    )
