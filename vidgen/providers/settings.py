"""Credentials and endpoints for the paid providers.

Read from the environment by default; the Prefect layer (`blocks/`) builds the same model from
Secret blocks. Base URLs are configurable so the same adapters can talk to a proxy or a stand-in.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, SecretStr


def _secret(name: str) -> SecretStr | None:
    value = os.environ.get(name)
    return SecretStr(value) if value else None


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
    image_host: str = "kie"  # "kie" (KIE's file upload API) or "s3" (presigned URL)
    s3_presign_endpoint: str | None = None

    elevenlabs_api_key: SecretStr | None = None
    elevenlabs_base_url: str = "https://api.elevenlabs.io"

    youtube_client_secrets: Path | None = None  # OAuth client JSON from Google Cloud console
    youtube_base_url: str | None = None  # None: googleapis.com
    token_key: SecretStr | None = None  # Fernet key that encrypts stored OAuth tokens
    token_dir: Path = Path(".vidgen/youtube-tokens")

    @classmethod
    def from_env(cls) -> ProviderSettings:
        env = os.environ.get
        return cls(
            gemini_api_key=_secret("GEMINI_API_KEY") or _secret("GOOGLE_API_KEY"),
            gemini_base_url=env("GEMINI_BASE_URL") or None,
            kie_api_key=_secret("KIE_API_KEY"),
            kie_base_url=env("KIE_BASE_URL", "https://api.kie.ai"),
            kie_upload_base_url=env("KIE_UPLOAD_BASE_URL", "https://kieai.redpandaai.co"),
            image_host=env("VIDGEN_IMAGE_HOST", "kie"),
            s3_presign_endpoint=env("VIDGEN_S3_PRESIGN_ENDPOINT") or None,
            elevenlabs_api_key=_secret("ELEVENLABS_API_KEY"),
            elevenlabs_base_url=env("ELEVENLABS_BASE_URL", "https://api.elevenlabs.io"),
            youtube_client_secrets=Path(env("YOUTUBE_CLIENT_SECRETS")) if env("YOUTUBE_CLIENT_SECRETS") else None,
            youtube_base_url=env("YOUTUBE_BASE_URL") or None,
            token_key=_secret("VIDGEN_TOKEN_KEY"),
            token_dir=Path(env("VIDGEN_TOKEN_DIR", ".vidgen/youtube-tokens")),
        )
