"""Credentials and endpoints for the paid providers.

Read from the environment by default (pydantic-settings; each field's variable is `env_name(field)`,
e.g. KIE_API_KEY or VIDGEN_TOKEN_DIR); the Prefect layer (`blocks/`) fills unset ones from Secret blocks. Base URLs are configurable so the same adapters can talk to a proxy or a stand-in.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, AliasGenerator, BaseModel, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from vidgen.config import ENVIRONMENT_CONFIG

# The environment variable of each field whose name is not simply the field name in upper case.
ENV_NAMES: dict[str, str | AliasChoices] = {
    "gemini_api_key": AliasChoices("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "image_host": "VIDGEN_IMAGE_HOST",
    "s3_presign_endpoint": "VIDGEN_S3_PRESIGN_ENDPOINT",
    "token_key": "VIDGEN_TOKEN_KEY",
    "token_dir": "VIDGEN_TOKEN_DIR",
    "download_hosts": "VIDGEN_DOWNLOAD_HOSTS",
}
DEFAULT_DOWNLOAD_HOSTS = "aiquickdraw.com,redpandaai.co,kie.ai"  # where KIE.ai's resultUrls point


def env_name(field: str) -> str | AliasChoices:
    """The environment variable(s) a ProviderSettings field is read from."""
    return ENV_NAMES.get(field, field.upper())


class ProviderSettings(BaseModel):
    gemini_api_key: SecretStr | None = None
    gemini_base_url: str | None = None  # None: Google's endpoint
    gemini_script_model: str = "gemini-2.5-flash"
    gemini_image_model: str = "gemini-2.5-flash-image"

    kie_api_key: SecretStr | None = None
    kie_base_url: str = "https://api.kie.ai"
    kie_upload_base_url: str = "https://kieai.redpandaai.co"
    kling_model: str = "kling/v2-5-turbo-image-to-video-pro"
    kling_timeout_s: float = 600.0  # the seed's 10 minutes
    kie_image_model: str = "google/nano-banana"  # Gemini 2.5 Flash Image as KIE market tasks (`images: kie`)
    kie_sound_model: str = "elevenlabs/sound-effect-v2"  # sound effects as KIE market tasks (`sound: kie`)
    image_host: str = "kie"  # "kie" (KIE's file upload API) or "s3" (presigned URL)
    s3_presign_endpoint: str | None = None

    # Result files are fetched only over https from these domains (and their subdomains), or from the
    # configured API addresses themselves (a proxy or a local stand-in): comma-separated.
    download_hosts: str = DEFAULT_DOWNLOAD_HOSTS

    elevenlabs_api_key: SecretStr | None = None
    elevenlabs_base_url: str = "https://api.elevenlabs.io"

    youtube_client_secrets: Path | None = None  # OAuth client JSON from Google Cloud console
    youtube_base_url: str | None = None  # None: googleapis.com
    token_key: SecretStr | None = None  # Fernet key that encrypts stored OAuth tokens
    token_dir: Path = Path(".vidgen/youtube-tokens")

    @classmethod
    def from_env(cls) -> ProviderSettings:
        """Every field from its environment variable (`env_name`); unset or empty ones keep the default."""
        return cls.model_validate(dict(_ProviderEnvironment()))


class _ProviderEnvironment(BaseSettings, ProviderSettings):
    """ProviderSettings read by pydantic-settings. A separate class so that building a ProviderSettings
    by hand (tests, Prefect blocks) never picks up stray environment variables."""

    model_config = SettingsConfigDict(**ENVIRONMENT_CONFIG, alias_generator=AliasGenerator(validation_alias=env_name))
