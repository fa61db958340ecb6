"""Where things live and how to reach Notion: environment first, then what `vidgen notion init` saved.

Every path is relative to the working directory unless set, so the README's commands (run from the
project root) find `channels/`, write `workspaces/` and keep state in `.vidgen/`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlparse

from dotenv import dotenv_values, set_key
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LEGACY_LOCAL_NOTION_TOKEN = "secret_local_vidgen"  # every install's local token before each had its own
LOCAL_NOTION_TOKEN_KEY = "VIDGEN_LOCAL_NOTION_TOKEN"  # this installation's local token, in notion.env
DEFAULT_LOCAL_NOTION_PORT = int(os.environ.get("VIDGEN_NOTION_PORT", "8765"))  # the local server's port
LOCAL_NOTION_BASE_URL = f"http://127.0.0.1:{DEFAULT_LOCAL_NOTION_PORT}"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def mask_secret(secret: str | None) -> str:
    """A token as it may be printed or logged: its kind and last four characters (`secret_…abcd`).

    Enough for a person to tell two tokens apart, never enough to use one.
    """
    if not secret:
        return "(none)"
    kind, sep, _ = secret.partition("_")
    prefix = kind + sep if sep and len(kind) <= 8 else ""
    tail = secret[-4:] if len(secret) >= 12 else ""
    return f"{prefix}…{tail}"


# Shared by the settings read from the environment: exact (upper-case) names, and an empty variable
# counts as unset, so `VIDGEN_HOME=` or an empty line in notion.env falls back to the default.
ENVIRONMENT_CONFIG = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, extra="ignore")


class _PathsEnvironment(BaseSettings):
    model_config = ENVIRONMENT_CONFIG

    home: Path = Field(Path(".vidgen"), validation_alias="VIDGEN_HOME")
    channels: Path = Field(Path("channels"), validation_alias="VIDGEN_CHANNELS_DIR")
    workspaces: Path = Field(Path("workspaces"), validation_alias="VIDGEN_WORKSPACES")


class Paths(BaseModel):
    home: Path  # state: local Notion store, Prefect home, ledger, saved settings
    channels: Path
    workspaces: Path

    @classmethod
    def from_env(cls) -> Paths:
        """VIDGEN_HOME, VIDGEN_CHANNELS_DIR and VIDGEN_WORKSPACES, made absolute against the working directory."""
        env = _PathsEnvironment()
        return cls(home=env.home.resolve(), channels=env.channels.resolve(), workspaces=env.workspaces.resolve())

    @property
    def notion_env_file(self) -> Path:
        return self.home / "notion.env"

    @property
    def notion_store(self) -> Path:
        return self.home / "notion-local.sqlite"

    @property
    def ledger_url(self) -> str:
        return os.environ.get("VIDGEN_LEDGER_URL") or f"sqlite:///{self.home / 'ledger.sqlite'}"


class ClaimSettings(BaseSettings):
    """How a video's process holds its claim on Prefect's server (`tasks/claim.py`).

    `ttl_s` is how long the claim outlives a process that stops renewing it: longer than the Prefect
    outages a live process must ride out (the chaos suite's is 150 s). A killed worker's videos do not
    wait that long: a process waiting for the claim takes it over once the holder has been silent
    (no renewal) for `silent_after_s` of its own watching."""

    model_config = SettingsConfigDict(**ENVIRONMENT_CONFIG, populate_by_name=True)  # tests set fields by name

    ttl_s: float = Field(200.0, ge=60, validation_alias="VIDGEN_VIDEO_CLAIM_TTL_S")
    renew_every_s: float = Field(10.0, gt=0, validation_alias="VIDGEN_VIDEO_CLAIM_RENEW_S")
    # A holder that has not renewed for this long, watched by a waiting process, is dead (a killed worker).
    silent_after_s: float = Field(40.0, gt=0, validation_alias="VIDGEN_VIDEO_CLAIM_SILENT_S")
    repossess_margin_s: float = 30.0  # Prefect's repossessor frees an expired lease's slot every 15 s
    wait_step_s: float = 2.0
    wait_s: float | None = None  # how long a second process waits; None: until a dead holder's lease is gone

    @property
    def give_up_after_s(self) -> float:
        return self.wait_s if self.wait_s is not None else self.ttl_s + self.repossess_margin_s


class NotionSettings(BaseModel):
    token: str
    base_url: str | None = None  # None means api.notion.com
    data_source_id: str | None = None
    webhook_token: str | None = None  # the webhook signing key, when configuration names it

    @property
    def is_local(self) -> bool:
        return is_loopback_url(self.base_url)


def is_loopback_url(url: str | None) -> bool:
    """An address on this machine: where the local Notion server listens (it refuses anything else)."""
    return bool(url) and urlparse(url).hostname in LOOPBACK_HOSTS


class NotionEnvironment(BaseSettings):
    """NOTION_* from the environment; with `_env_file=` also from a saved notion.env (the environment wins)."""

    model_config = ENVIRONMENT_CONFIG

    token: str | None = Field(None, validation_alias="NOTION_TOKEN")
    base_url: str | None = Field(None, validation_alias="NOTION_BASE_URL")
    data_source_id: str | None = Field(None, validation_alias="NOTION_DATA_SOURCE_ID")
    webhook_token: str | None = Field(None, validation_alias="NOTION_WEBHOOK_TOKEN")
    local_token: str | None = Field(None, validation_alias=LOCAL_NOTION_TOKEN_KEY)


def read_env_file(path: Path) -> dict[str, str]:
    """The KEY=value pairs of a dotenv file (empty when it does not exist)."""
    if not path.is_file():
        return {}
    return {key: value or "" for key, value in dotenv_values(path).items()}


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """Set `values` in the dotenv file, keeping its other keys; the file stays private (0600): it holds a token.

    It is created 0600 before anything is written to it, so a token is never readable by others."""
    from vidgen.files import private_dir

    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    path.chmod(0o600)
    for key, value in values.items():
        set_key(path, key, value)
    path.chmod(0o600)


def notion_settings(paths: Paths | None = None) -> NotionSettings | None:
    """Environment variables override the saved `.vidgen/notion.env`; None when no token is known."""
    paths = paths or Paths.from_env()
    env = NotionEnvironment(_env_file=paths.notion_env_file)
    if not env.token:
        return None
    return NotionSettings(
        token=env.token, base_url=env.base_url, data_source_id=env.data_source_id, webhook_token=env.webhook_token
    )


def local_notion_token(paths: Paths) -> str:
    """This installation's local Notion server token: VIDGEN_LOCAL_NOTION_TOKEN from the environment or
    notion.env, made (random) and saved there on first use.

    A fixed token would be known to every web page and program on the machine; a random one per
    installation is known only to whoever can read `.vidgen/notion.env` (0600).
    """
    env = NotionEnvironment(_env_file=paths.notion_env_file)
    if env.local_token:
        return env.local_token
    token = "secret_" + secrets.token_urlsafe(32)
    write_env_file(paths.notion_env_file, {LOCAL_NOTION_TOKEN_KEY: token})
    return token


def legacy_local_token_in_use(paths: Paths) -> bool:
    """Whether this installation still talks to its local server with the old fixed token (a `.vidgen/`
    made by an earlier version whose `vidgen notion init` has not run since): the local server then
    accepts it too, from loopback only, so such installs keep working until init rotates it."""
    return NotionEnvironment(_env_file=paths.notion_env_file).token == LEGACY_LOCAL_NOTION_TOKEN


def notion_target(paths: Paths, *, token: str | None = None, base_url: str | None = None) -> NotionSettings:
    """Which Notion `vidgen notion init` sets up (and so which local server a command must start).

    The first of these that names a token or an address is taken as a whole, so a token from one place
    is never sent to an address from another: the options, the NOTION_TOKEN / NOTION_BASE_URL
    environment variables, the saved notion.env, and last the local server on its default port. An
    address on this machine without a token, or with the old fixed local token (which init thereby
    rotates), is a local server, whose token is `local_notion_token(paths)`. Raises ValueError for
    any other address without a token.
    """
    env = NotionEnvironment()
    saved = read_env_file(paths.notion_env_file)
    sources = ((token, base_url), (env.token, env.base_url), (saved.get("NOTION_TOKEN"), saved.get("NOTION_BASE_URL")))
    chosen_token, chosen_url = next(((t, u) for t, u in sources if t or u), (None, LOCAL_NOTION_BASE_URL))
    chosen_url = chosen_url or None
    if not chosen_token or chosen_token == LEGACY_LOCAL_NOTION_TOKEN:
        if not is_loopback_url(chosen_url):
            raise ValueError(
                f"{chosen_url} is not a local Notion server, so it needs a token: give --token or set NOTION_TOKEN"
            )
        chosen_token = local_notion_token(paths)
    return NotionSettings(token=chosen_token, base_url=chosen_url)
