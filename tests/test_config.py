"""Settings from the environment and `.vidgen/notion.env`: the environment wins, the file is private."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from vidgen.config import Paths, notion_settings, read_env_file, write_env_file
from vidgen.providers.settings import ProviderSettings

PROVIDER_VARS = (
    "GEMINI_API_KEY", "GOOGLE_API_KEY", "KIE_API_KEY", "KIE_BASE_URL", "VIDGEN_IMAGE_HOST",
    "VIDGEN_S3_PRESIGN_ENDPOINT", "ELEVENLABS_API_KEY", "YOUTUBE_CLIENT_SECRETS", "VIDGEN_TOKEN_KEY",
    "VIDGEN_TOKEN_DIR", "GEMINI_BASE_URL",
)


def test_paths_come_from_the_environment_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIDGEN_HOME", "state")
    monkeypatch.setenv("VIDGEN_WORKSPACES", "/data/workspaces")
    monkeypatch.setenv("VIDGEN_CHANNELS_DIR", "")  # empty counts as unset
    paths = Paths.from_env()
    assert paths.home == tmp_path / "state"
    assert paths.workspaces == Path("/data/workspaces")
    assert paths.channels == tmp_path / "channels"
    assert paths.notion_env_file == tmp_path / "state" / "notion.env"


def test_saved_file_is_private_and_keeps_other_keys(vidgen_env):
    path = Paths.from_env().notion_env_file
    write_env_file(path, {"NOTION_TOKEN": "secret_abc", "NOTION_DATA_SOURCE_ID": "ds-1"})
    write_env_file(path, {"NOTION_DATA_SOURCE_ID": "ds-2", "NOTION_BASE_URL": "http://127.0.0.1:9100"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_env_file(path) == {
        "NOTION_TOKEN": "secret_abc", "NOTION_DATA_SOURCE_ID": "ds-2", "NOTION_BASE_URL": "http://127.0.0.1:9100",
    }


def test_a_loosened_file_is_made_private_again(vidgen_env):
    path = Paths.from_env().notion_env_file
    write_env_file(path, {"NOTION_TOKEN": "secret_abc"})
    path.chmod(0o644)
    write_env_file(path, {"NOTION_TOKEN": "secret_def"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_no_token_anywhere_means_no_notion_settings(vidgen_env):
    assert notion_settings() is None
    assert read_env_file(Paths.from_env().notion_env_file) == {}


def test_environment_overrides_the_saved_file(vidgen_env, monkeypatch):
    write_env_file(Paths.from_env().notion_env_file, {
        "NOTION_TOKEN": "secret_saved", "NOTION_BASE_URL": "http://127.0.0.1:9100", "NOTION_DATA_SOURCE_ID": "ds-saved",
    })
    saved = notion_settings()
    assert (saved.token, saved.base_url, saved.data_source_id) == ("secret_saved", "http://127.0.0.1:9100", "ds-saved")

    monkeypatch.setenv("NOTION_TOKEN", "secret_env")
    monkeypatch.setenv("NOTION_BASE_URL", "")  # empty: the saved value still applies
    overridden = notion_settings()
    assert (overridden.token, overridden.base_url, overridden.data_source_id) == (
        "secret_env", "http://127.0.0.1:9100", "ds-saved",
    )


def test_empty_saved_value_is_none(vidgen_env):
    write_env_file(Paths.from_env().notion_env_file, {"NOTION_TOKEN": "secret_saved", "NOTION_BASE_URL": ""})
    assert notion_settings().base_url is None


@pytest.fixture
def clean_provider_env(monkeypatch):
    for name in PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_provider_settings_read_their_documented_variables(clean_provider_env):
    env = clean_provider_env
    env.setenv("GOOGLE_API_KEY", "google-key")
    env.setenv("KIE_API_KEY", "kie-key")
    env.setenv("VIDGEN_IMAGE_HOST", "s3")
    env.setenv("VIDGEN_S3_PRESIGN_ENDPOINT", "http://127.0.0.1:9/presign")
    env.setenv("YOUTUBE_CLIENT_SECRETS", "/secrets/client.json")
    env.setenv("VIDGEN_TOKEN_DIR", "/data/tokens")
    env.setenv("KIE_BASE_URL", "")  # empty: the default endpoint
    settings = ProviderSettings.from_env()
    assert type(settings) is ProviderSettings
    assert settings.gemini_api_key == SecretStr("google-key")
    assert settings.kie_api_key == SecretStr("kie-key")
    assert (settings.image_host, settings.s3_presign_endpoint) == ("s3", "http://127.0.0.1:9/presign")
    assert settings.youtube_client_secrets == Path("/secrets/client.json")
    assert settings.token_dir == Path("/data/tokens")
    assert settings.kie_base_url == "https://api.kie.ai"
    assert settings.elevenlabs_api_key is None and settings.token_key is None


def test_gemini_key_wins_over_google_key(clean_provider_env):
    clean_provider_env.setenv("GOOGLE_API_KEY", "google-key")
    clean_provider_env.setenv("GEMINI_API_KEY", "gemini-key")
    assert ProviderSettings.from_env().gemini_api_key == SecretStr("gemini-key")


def test_settings_built_by_hand_ignore_the_environment(clean_provider_env):
    clean_provider_env.setenv("KIE_API_KEY", "kie-key")
    assert ProviderSettings().kie_api_key is None
