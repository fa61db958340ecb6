"""Per-channel OAuth tokens: encrypted at rest, refreshed near expiry, obtained by the installed-app flow.

Token refresh follows Google's OAuth 2.0 token endpoint (POST token_uri, form-encoded
grant_type=refresh_token; https://developers.google.com/identity/protocols/oauth2/native-app#offline);
the installed-app flow runs for real over loopback: a local redirect server (google-auth-oauthlib)
and a local stand-in token endpoint.
"""

from __future__ import annotations

import json
import stat
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from cryptography.fernet import Fernet
from google.auth import exceptions as auth_exceptions
from google.auth import transport
from google.oauth2.credentials import Credentials
from pydantic import SecretStr

from vidgen.errors import ApiFailureError, RetriableError
from vidgen.providers.settings import ProviderSettings
from vidgen.providers.youtube_auth import SCOPES, TokenStore, needs_refresh, run_installed_app_flow
from vidgen.statuses import NotionStatus

REFRESH_SECRET = "1//0g-refresh-token-that-must-never-be-on-disk-in-clear"
ACCESS_SECRET = "ya29.a0-access-token-in-clear"
CLIENT_SECRET = "GOCSPX-client-secret-value"
TOKEN_URI = "https://oauth2.googleapis.com/token"


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def credentials(expires_in: timedelta = timedelta(minutes=45), **overrides) -> Credentials:
    values = dict(
        token=ACCESS_SECRET,
        refresh_token=REFRESH_SECRET,
        token_uri=TOKEN_URI,
        client_id="1234567890-abc.apps.googleusercontent.com",
        client_secret=CLIENT_SECRET,
        scopes=list(SCOPES),
        expiry=utcnow() + expires_in,
    )
    values.update(overrides)
    return Credentials(**values)


@pytest.fixture
def key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def store(tmp_path: Path, key: str) -> TokenStore:
    return TokenStore(tmp_path / "tokens", key)


class _Response(transport.Response):
    def __init__(self, status: int, payload: dict):
        self._status, self._data = status, json.dumps(payload).encode()

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> dict:
        return {"content-type": "application/json"}

    @property
    def data(self) -> bytes:
        return self._data


class TokenEndpoint(transport.Request):
    """google-auth's HTTP interface, answering like Google's token endpoint."""

    def __init__(self, *answers: tuple[int, dict] | Exception):
        self.answers = list(answers)
        self.calls: list[dict] = []

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        self.calls.append({"url": url, "method": method, "body": body, "headers": headers or {}})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return _Response(*answer)


# --- storage ---------------------------------------------------------------------------------------
def test_tokens_on_disk_are_encrypted_and_private(store):
    path = store.save("wild_frontiers", credentials())

    raw = path.read_bytes()
    for secret in (REFRESH_SECRET, ACCESS_SECRET, CLIENT_SECRET):
        assert secret.encode() not in raw
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    back = store.read("wild_frontiers")
    assert (back.token, back.refresh_token, back.client_secret) == (ACCESS_SECRET, REFRESH_SECRET, CLIENT_SECRET)
    assert set(back.scopes) == set(SCOPES)


def test_a_different_key_cannot_read_the_token(tmp_path, store):
    store.save("wild_frontiers", credentials())
    other = TokenStore(store.directory, Fernet.generate_key())
    with pytest.raises(ApiFailureError, match="does not decrypt") as caught:
        other.read("wild_frontiers")
    assert "vidgen channels auth wild_frontiers" in str(caught.value)


def test_missing_and_corrupt_tokens_say_what_to_run(store):
    with pytest.raises(ApiFailureError, match="run `vidgen channels auth chronicle_vault`"):
        store.read("chronicle_vault")
    store.directory.mkdir(parents=True)
    store.path_for("chronicle_vault").write_bytes(b"not a fernet token")
    with pytest.raises(ApiFailureError, match="channels auth chronicle_vault"):
        store.read("chronicle_vault")


def test_channel_ids_cannot_escape_the_token_directory(store):
    with pytest.raises(ValueError):
        store.path_for("../../etc/passwd")


def test_key_comes_from_settings_and_is_checked(tmp_path):
    with pytest.raises(ApiFailureError, match="VIDGEN_TOKEN_KEY is not set"):
        TokenStore.from_settings(ProviderSettings())
    with pytest.raises(ApiFailureError, match="not a valid Fernet key"):
        TokenStore.from_settings(ProviderSettings(token_key=SecretStr("too-short")))
    store = TokenStore.from_settings(
        ProviderSettings(token_key=SecretStr(Fernet.generate_key().decode()), token_dir=tmp_path / "t")
    )
    assert store.directory == tmp_path / "t"


# --- refreshing ------------------------------------------------------------------------------------
def test_fresh_credentials_are_used_as_they_are(store):
    store.save("wild_frontiers", credentials(expires_in=timedelta(minutes=50)))
    endpoint = TokenEndpoint()
    assert store.load("wild_frontiers", request=endpoint).token == ACCESS_SECRET
    assert endpoint.calls == []


@pytest.mark.parametrize("expires_in", [timedelta(minutes=-5), timedelta(minutes=5)], ids=["expired", "near-expiry"])
def test_expired_credentials_are_refreshed_and_stored_encrypted(store, expires_in):
    store.save("wild_frontiers", credentials(expires_in=expires_in))
    endpoint = TokenEndpoint((200, {"access_token": "ya29.new-access", "expires_in": 3599, "token_type": "Bearer",
                                    "scope": " ".join(SCOPES)}))

    loaded = store.load("wild_frontiers", request=endpoint)

    assert loaded.token == "ya29.new-access"
    (call,) = endpoint.calls
    assert call["url"] == TOKEN_URI and call["method"] == "POST"
    form = parse_qs(call["body"].decode() if isinstance(call["body"], bytes) else call["body"])
    assert form["grant_type"] == ["refresh_token"]
    assert form["refresh_token"] == [REFRESH_SECRET]
    assert form["client_id"] == ["1234567890-abc.apps.googleusercontent.com"]
    raw = store.path_for("wild_frontiers").read_bytes()
    assert b"ya29.new-access" not in raw and REFRESH_SECRET.encode() not in raw
    again = store.read("wild_frontiers")
    assert again.token == "ya29.new-access" and not needs_refresh(again)


def test_a_revoked_refresh_token_asks_for_reauthorisation(store):
    store.save("wild_frontiers", credentials(expires_in=timedelta(minutes=-1)))
    endpoint = TokenEndpoint((400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}))
    with pytest.raises(ApiFailureError) as caught:
        store.load("wild_frontiers", request=endpoint)
    assert "re-run `vidgen channels auth wild_frontiers`" in str(caught.value)
    assert caught.value.notion_status is NotionStatus.ERROR_API_FAILURE
    assert REFRESH_SECRET not in str(caught.value)


def test_an_unreachable_token_endpoint_is_retriable(store):
    store.save("wild_frontiers", credentials(expires_in=timedelta(minutes=-1)))
    endpoint = TokenEndpoint(auth_exceptions.TransportError("connection reset"))
    with pytest.raises(RetriableError):
        store.load("wild_frontiers", request=endpoint)


def test_a_token_without_refresh_token_asks_for_reauthorisation(store):
    store.save("wild_frontiers", credentials(expires_in=timedelta(minutes=-1), refresh_token=None))
    with pytest.raises(ApiFailureError, match="refresh_token") as caught:
        store.load("wild_frontiers", request=TokenEndpoint())
    assert "re-run `vidgen channels auth wild_frontiers`" in str(caught.value)


# --- the installed-app flow over loopback ----------------------------------------------------------
class _TokenHandler(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        type(self).received.append(parse_qs(body))
        payload = json.dumps({"access_token": "ya29.fresh", "expires_in": 3599, "refresh_token": REFRESH_SECRET,
                              "scope": " ".join(SCOPES), "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def token_server():
    _TokenHandler.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/token"
    server.shutdown()
    server.server_close()


class _Browser:
    """Stands in for the person: reads the printed consent URL and follows Google's redirect back."""

    def __init__(self) -> None:
        self.consent_url: str | None = None
        self.thread: threading.Thread | None = None

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.startswith("https://accounts.google.com/") and self.consent_url is None:
                self.consent_url = line.strip()
                self.thread = threading.Thread(target=self._approve, daemon=True)
                self.thread.start()
        return len(text)

    def flush(self) -> None:
        pass

    def _approve(self) -> None:
        query = parse_qs(urlparse(self.consent_url).query)
        redirect = query["redirect_uri"][0].replace("localhost", "127.0.0.1")
        httpx.get(redirect, params={"code": "4/0-consent-code", "state": query["state"][0],
                                    "scope": " ".join(SCOPES)}, timeout=10)


def test_installed_app_flow_stores_an_encrypted_token(tmp_path, store, token_server, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the stand-in token endpoint is plain http
    secrets = tmp_path / "client_secret.json"
    secrets.write_text(json.dumps({"installed": {
        "client_id": "1234567890-abc.apps.googleusercontent.com",
        "client_secret": CLIENT_SECRET,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_server,
        "redirect_uris": ["http://localhost"],
    }}))
    browser = _Browser()
    monkeypatch.setattr("sys.stdout", browser)

    creds = run_installed_app_flow("wild_frontiers", secrets, store, timeout_seconds=20)

    browser.thread.join(5)
    query = parse_qs(urlparse(browser.consent_url).query)
    assert set(query["scope"][0].split()) == set(SCOPES)
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
    assert query["redirect_uri"][0].startswith("http://localhost:")
    (exchange,) = _TokenHandler.received
    assert exchange["grant_type"] == ["authorization_code"] and exchange["code"] == ["4/0-consent-code"]
    assert creds.refresh_token == REFRESH_SECRET
    raw = store.path_for("wild_frontiers").read_bytes()
    assert REFRESH_SECRET.encode() not in raw
    assert store.read("wild_frontiers").refresh_token == REFRESH_SECRET


def test_installed_app_flow_needs_the_client_secrets_file(tmp_path, store):
    with pytest.raises(ApiFailureError, match="client secrets file not found"):
        run_installed_app_flow("wild_frontiers", tmp_path / "absent.json", store)
