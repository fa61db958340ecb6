"""`vidgen channels list|check|auth`, driven as a user would through the Typer app."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from google.oauth2.credentials import Credentials
from typer.testing import CliRunner

from vidgen.cli import app
from vidgen.cli import common
from vidgen.providers.youtube_auth import TokenStore

PROVIDER_ENV = (
    "GEMINI_API_KEY", "GOOGLE_API_KEY", "KIE_API_KEY", "ELEVENLABS_API_KEY", "YOUTUBE_CLIENT_SECRETS",
    "VIDGEN_TOKEN_KEY", "VIDGEN_TOKEN_DIR", "VIDGEN_IMAGE_HOST", "VIDGEN_S3_PRESIGN_ENDPOINT",
)

runner = CliRunner()


@pytest.fixture
def env(vidgen_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VIDGEN_TOKEN_DIR", str(vidgen_env / "tokens"))
    monkeypatch.setattr(common.console, "width", 200)  # rich would otherwise wrap at 80 columns
    monkeypatch.setattr(common.err_console, "width", 200)
    return vidgen_env


@pytest.fixture
def paid_channels(env: Path, repo_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample channels, with wild_frontiers switched to every paid provider."""
    directory = env / "channels"
    shutil.copytree(repo_root / "channels", directory)
    path = directory / "wild_frontiers.yaml"
    data = yaml.safe_load(path.read_text())
    data["providers"] = {"script": "gemini", "images": "gemini", "clips": "kling", "narration": "elevenlabs",
                         "sound": "elevenlabs", "publisher": "youtube"}
    data["review"]["audio"]["enabled"] = False
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("VIDGEN_CHANNELS_DIR", str(directory))
    return directory


def lines_of(output: str, start: str) -> str:
    return next(line for line in output.splitlines() if line.strip().startswith(start))


def test_list_shows_ids_notion_values_providers_and_gates(paid_channels):
    result = runner.invoke(app, ["channels", "list"])
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("chronicle_vault", "wild_frontiers", "Chronicle Vault", "Wild Frontiers", "clips=kling",
                 "publisher=youtube", "clips=local", "audio off", "audio on", "final on"):
        assert text in out
    assert "yes" in out


def test_list_reports_a_broken_channel_file(paid_channels):
    (paid_channels / "broken.yaml").write_text("id: Not A Valid Id\nname: x\nnotion_value: x\nstyle: {preamble: p}\n")
    result = runner.invoke(app, ["channels", "list"])
    assert result.exit_code == 1
    assert "broken.yaml: invalid channel configuration" in result.output
    assert "id: String should match pattern '^[a-z0-9]" in result.output


def test_check_reports_every_missing_key_per_step(paid_channels):
    result = runner.invoke(app, ["channels", "check", "wild_frontiers"])

    assert result.exit_code == 1
    out = result.output
    assert "wild_frontiers (Wild Frontiers) — configuration OK" in out
    assert "GEMINI_API_KEY is not set" in lines_of(out, "script")
    assert "GEMINI_API_KEY is not set" in lines_of(out, "images")
    assert "KIE_API_KEY is not set" in lines_of(out, "clips")
    assert "ELEVENLABS_API_KEY is not set" in lines_of(out, "narration")
    assert "ELEVENLABS_API_KEY is not set" in lines_of(out, "sound")
    publisher = lines_of(out, "publisher")
    assert "youtube" in publisher and "YOUTUBE_CLIENT_SECRETS is not set" in publisher
    assert "VIDGEN_TOKEN_KEY is not set" in publisher
    assert "7 problem(s) found" in out
    assert "chronicle_vault" not in out  # only the channel asked about


def test_check_passes_once_everything_is_in_place(paid_channels, env, monkeypatch):
    key = Fernet.generate_key().decode()
    secrets = env / "client_secret.json"
    secrets.write_text('{"installed": {}}')
    for name, value in {"GEMINI_API_KEY": "g", "KIE_API_KEY": "k", "ELEVENLABS_API_KEY": "e",
                        "YOUTUBE_CLIENT_SECRETS": str(secrets), "VIDGEN_TOKEN_KEY": key}.items():
        monkeypatch.setenv(name, value)

    missing_token = runner.invoke(app, ["channels", "check"])
    assert missing_token.exit_code == 1
    assert "run `vidgen channels auth wild_frontiers`" in lines_of(missing_token.output, "publisher  youtube")
    assert "1 problem(s) found" in missing_token.output

    TokenStore(env / "tokens", key).save("wild_frontiers", Credentials(
        token="ya29.t", refresh_token="1//r", token_uri="https://oauth2.googleapis.com/token", client_id="c",
        client_secret="s", expiry=datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(minutes=50)))
    ready = runner.invoke(app, ["channels", "check"])
    assert ready.exit_code == 0, ready.output
    assert "stored token decrypts" in ready.output and "KIE_API_KEY set" in ready.output
    assert "2 channel(s) ready" in ready.output


def test_check_says_when_the_token_key_changed(paid_channels, env, monkeypatch):
    TokenStore(env / "tokens", Fernet.generate_key()).save("wild_frontiers", Credentials(
        token="t", refresh_token="r", token_uri="https://oauth2.googleapis.com/token", client_id="c",
        client_secret="s"))
    monkeypatch.setenv("VIDGEN_TOKEN_KEY", Fernet.generate_key().decode())
    result = runner.invoke(app, ["channels", "check", "Wild Frontiers"])  # a Notion value works too
    assert result.exit_code == 1
    assert "does not decrypt" in lines_of(result.output, "publisher")


def test_check_shows_file_and_field_of_a_broken_config(paid_channels):
    (paid_channels / "broken.yaml").write_text(
        "id: broken_one\nname: Broken\nnotion_value: Broken\nstyle: {preamble: p, palette: ['red', '#000000']}\n"
        "providers: {clips: runway}\n"
    )
    result = runner.invoke(app, ["channels", "check"])
    assert result.exit_code == 1
    out = result.output
    assert "broken.yaml" in out
    assert "style.palette: Value error, 'red' is not a #RRGGBB colour" in out
    assert "providers.clips: Input should be 'local' or 'kling' (got 'runway')" in out
    assert "chronicle_vault (Chronicle Vault) — configuration OK" in out  # the others are still checked


def test_check_rejects_an_unknown_channel(paid_channels):
    result = runner.invoke(app, ["channels", "check", "nope"])
    assert result.exit_code == 1
    assert "unknown channel 'nope'" in result.output


def test_auth_runs_the_flow_and_stores_the_token(paid_channels, env, monkeypatch):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("VIDGEN_TOKEN_KEY", key)
    secrets = env / "client_secret.json"
    secrets.write_text("{}")
    seen = {}

    def flow(channel_id, client_secrets_path, store, **kwargs):
        seen.update(channel_id=channel_id, path=client_secrets_path, kwargs=kwargs)
        creds = Credentials(token="t", refresh_token="r", token_uri="https://oauth2.googleapis.com/token",
                            client_id="c", client_secret="s")
        store.save(channel_id, creds)
        return creds

    monkeypatch.setattr("vidgen.providers.youtube_auth.run_installed_app_flow", flow)
    result = runner.invoke(app, ["channels", "auth", "wild_frontiers", "--client-secrets", str(secrets)])

    assert result.exit_code == 0, result.output
    assert seen == {"channel_id": "wild_frontiers", "path": secrets,
                    "kwargs": {"port": 0, "open_browser": False, "timeout_seconds": 600}}
    assert TokenStore(env / "tokens", key).read("wild_frontiers").refresh_token == "r"
    assert "stored an encrypted YouTube token for wild_frontiers" in result.output


def test_auth_explains_missing_prerequisites(paid_channels, env, monkeypatch):
    no_secrets = runner.invoke(app, ["channels", "auth", "wild_frontiers"])
    assert no_secrets.exit_code == 1 and "YOUTUBE_CLIENT_SECRETS" in no_secrets.output

    monkeypatch.setenv("YOUTUBE_CLIENT_SECRETS", str(env / "absent.json"))
    no_key = runner.invoke(app, ["channels", "auth", "wild_frontiers"])
    assert no_key.exit_code == 1 and "VIDGEN_TOKEN_KEY is not set" in no_key.output

    monkeypatch.setenv("VIDGEN_TOKEN_KEY", Fernet.generate_key().decode())
    no_file = runner.invoke(app, ["channels", "auth", "wild_frontiers"])
    assert no_file.exit_code == 1 and "client secrets file not found" in no_file.output
