"""Per-channel YouTube OAuth: tokens encrypted at rest, refreshed before they lapse.

Each channel authorises once (`vidgen channels auth <id>`, Google's installed-app flow); its
`Credentials` JSON is stored Fernet-encrypted in `<token_dir>/<channel_id>.token` (mode 0600),
so a copied disk or backup does not leak an upload-capable refresh token. The key comes from
VIDGEN_TOKEN_KEY or, under Prefect, a Secret block the Prefect layer reads and passes in.
Access tokens live 60 minutes; they are refreshed when less than 10 remain, as the seed asks.
Nothing here logs a token.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from google.auth.exceptions import RefreshError, TransportError
from google.auth.transport import Request as AuthRequest
from google.oauth2.credentials import Credentials
from pydantic import SecretStr

from vidgen.errors import ApiFailureError, RetriableError
from vidgen.files import atomic_write_bytes
from vidgen.providers.settings import ProviderSettings

PROVIDER = "youtube"
# youtube.upload for videos.insert; youtube for thumbnails.set (and reading the channel).
SCOPES = (
    "https://www.googleapis.com/auth/youtube.upload",
    "https://www.googleapis.com/auth/youtube",
)
REFRESH_MARGIN = timedelta(minutes=10)
_CHANNEL_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,62}$")
GENERATE_KEY_HINT = (
    'generate one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


def reauth_hint(channel_id: str) -> str:
    return f"re-run `vidgen channels auth {channel_id}`"


class TokenStore:
    """Encrypted OAuth credentials, one file per channel."""

    def __init__(self, directory: Path, key: str | bytes | SecretStr):
        raw = key.get_secret_value() if isinstance(key, SecretStr) else key
        try:
            self._fernet = Fernet(raw.encode() if isinstance(raw, str) else raw)
        except (ValueError, TypeError) as e:
            raise ApiFailureError(
                f"VIDGEN_TOKEN_KEY is not a valid Fernet key (32 url-safe base64 bytes); {GENERATE_KEY_HINT}",
                provider=PROVIDER,
            ) from e
        self.directory = Path(directory)

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> TokenStore:
        if settings.token_key is None:
            raise ApiFailureError(
                f"VIDGEN_TOKEN_KEY is not set (it encrypts stored YouTube tokens); {GENERATE_KEY_HINT}",
                provider=PROVIDER,
            )
        return cls(settings.token_dir, settings.token_key)

    def path_for(self, channel_id: str) -> Path:
        if not _CHANNEL_ID.match(channel_id):
            raise ValueError(f"{channel_id!r} is not a channel id")
        return self.directory / f"{channel_id}.token"

    def exists(self, channel_id: str) -> bool:
        return self.path_for(channel_id).is_file()

    def save(self, channel_id: str, credentials: Credentials) -> Path:
        """Encrypt and write atomically; the file is created 0600 and never exists unencrypted."""
        path = self.path_for(channel_id)
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        token = self._fernet.encrypt(credentials.to_json().encode("utf-8"))
        atomic_write_bytes(path, token, mode=0o600)
        return path

    def read(self, channel_id: str) -> Credentials:
        """Decrypt without refreshing (what `vidgen channels check` needs)."""
        path = self.path_for(channel_id)
        if not path.is_file():
            raise ApiFailureError(
                f"no stored YouTube token for channel {channel_id!r} in {self.directory}; "
                f"run `vidgen channels auth {channel_id}`",
                provider=PROVIDER,
            )
        try:
            info = json.loads(self._fernet.decrypt(path.read_bytes()))
        except InvalidToken as e:
            raise ApiFailureError(
                f"the stored YouTube token for {channel_id!r} does not decrypt with VIDGEN_TOKEN_KEY "
                f"(was the key changed?); {reauth_hint(channel_id)}",
                provider=PROVIDER,
            ) from e
        except ValueError as e:
            raise ApiFailureError(
                f"the stored YouTube token for {channel_id!r} is corrupt; {reauth_hint(channel_id)}", provider=PROVIDER
            ) from e
        try:
            return Credentials.from_authorized_user_info(info)
        except ValueError as e:
            raise ApiFailureError(
                f"the stored YouTube token for {channel_id!r} is incomplete ({e}); {reauth_hint(channel_id)}",
                provider=PROVIDER,
            ) from e

    def load(
        self, channel_id: str, *, request: AuthRequest | None = None, now: datetime | None = None
    ) -> Credentials:
        """Credentials ready to use for the next hour, refreshed (and re-stored) when close to expiry."""
        credentials = self.read(channel_id)
        if not needs_refresh(credentials, now):
            return credentials
        if request is None:
            from google.auth.transport.requests import Request

            request = Request()
        try:
            credentials.refresh(request)
        except RefreshError as e:
            raise ApiFailureError(
                f"the YouTube token for {channel_id!r} could not be refreshed ({_first_line(e)}); "
                f"{reauth_hint(channel_id)}",
                provider=PROVIDER,
            ) from e
        except TransportError as e:
            raise RetriableError(
                f"could not reach Google to refresh the token for {channel_id!r}: {_first_line(e)}", provider=PROVIDER
            ) from e
        self.save(channel_id, credentials)
        return credentials


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__


def needs_refresh(credentials: Credentials, now: datetime | None = None) -> bool:
    if not credentials.token:
        return True
    if credentials.expiry is None:
        return False
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    return credentials.expiry - now < REFRESH_MARGIN  # google-auth keeps expiry as naive UTC


def run_installed_app_flow(
    channel_id: str,
    client_secrets_path: Path,
    store: TokenStore,
    *,
    host: str = "localhost",
    port: int = 0,
    open_browser: bool = False,
    timeout_seconds: int = 600,
) -> Credentials:
    """Google's installed-app consent for one channel; prints the URL, waits for the redirect, stores the token.

    `prompt=consent` makes Google issue a refresh token even when the account consented before,
    without which the stored token would stop working after an hour.
    """
    from google_auth_oauthlib.flow import InstalledAppFlow, WSGITimeoutError
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error

    client_secrets_path = Path(client_secrets_path)
    store.path_for(channel_id)  # reject a bad id before any browser round trip
    if not client_secrets_path.is_file():
        raise ApiFailureError(
            f"OAuth client secrets file not found: {client_secrets_path} (create an OAuth client of type "
            "'Desktop app' in Google Cloud console, download its JSON, and pass --client-secrets or set "
            "YOUTUBE_CLIENT_SECRETS)",
            provider=PROVIDER,
        )
    try:
        flow = InstalledAppFlow.from_client_secrets_file(str(client_secrets_path), scopes=list(SCOPES))
    except (ValueError, KeyError, json.JSONDecodeError) as e:
        raise ApiFailureError(
            f"{client_secrets_path} is not an OAuth client secrets file for an installed app: {e}", provider=PROVIDER
        ) from e
    try:
        credentials = flow.run_local_server(
            host=host,
            port=port,
            open_browser=open_browser,
            authorization_prompt_message=(
                f"Authorise YouTube uploads for channel {channel_id!r}: open this URL in a browser signed in "
                "to that channel's Google account:\n{url}"
            ),
            success_message="vidgen received the authorisation; you can close this window.",
            timeout_seconds=timeout_seconds,
            prompt="consent",
        )
    except OAuth2Error as e:
        raise ApiFailureError(f"Google refused the authorisation: {e.description or e.error}", provider=PROVIDER) from e
    except WSGITimeoutError as e:
        raise ApiFailureError(
            f"no answer from the browser within {timeout_seconds} s; run the command again", provider=PROVIDER
        ) from e
    if not credentials.refresh_token:
        raise ApiFailureError(
            "Google returned no refresh token; remove vidgen's access at https://myaccount.google.com/permissions "
            f"and {reauth_hint(channel_id)}",
            provider=PROVIDER,
        )
    store.save(channel_id, credentials)
    return credentials
