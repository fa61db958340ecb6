"""Result files come only from where the providers keep them: https on their domains, or the configured
API address itself (a proxy, or the tests' stand-ins on loopback), and every redirect is checked again."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from vidgen.errors import ApiFailureError
from vidgen.providers.kie import DownloadPolicy, KieMarketClient
from vidgen.providers.settings import ProviderSettings


def _client(handler, **kwargs) -> tuple[KieMarketClient, list[str]]:
    fetched: list[str] = []

    def recording(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return handler(request)

    return KieMarketClient("key", provider="kie", transport=httpx.MockTransport(recording), **kwargs), fetched


def _bytes(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"mp4 bytes")


def test_https_on_a_provider_domain_downloads(tmp_path: Path) -> None:
    client, fetched = _client(_bytes)
    client.download("https://tempfile.aiquickdraw.com/kling/result-1.mp4", tmp_path / "a.mp4")
    assert (tmp_path / "a.mp4").read_bytes() == b"mp4 bytes" and len(fetched) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://tempfile.aiquickdraw.com/kling/result-1.mp4",  # not https
        "https://attacker.example/result.mp4",
        "https://aiquickdraw.com.attacker.example/result.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
    ],
)
def test_other_urls_are_refused_before_any_request(tmp_path: Path, url: str) -> None:
    client, fetched = _client(_bytes)
    with pytest.raises(ApiFailureError, match="refusing to download"):
        client.download(url, tmp_path / "a.mp4")
    assert fetched == [] and not (tmp_path / "a.mp4").exists()


def test_a_redirect_to_another_host_is_refused(tmp_path: Path) -> None:
    def redirecting(request: httpx.Request) -> httpx.Response:
        if request.url.host == "tempfile.aiquickdraw.com":
            return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        return _bytes(request)

    client, fetched = _client(redirecting)
    with pytest.raises(ApiFailureError, match="refusing to download"):
        client.download("https://tempfile.aiquickdraw.com/kling/result-1.mp4", tmp_path / "a.mp4")
    assert fetched == ["https://tempfile.aiquickdraw.com/kling/result-1.mp4"]


def test_a_redirect_within_the_providers_domains_is_followed(tmp_path: Path) -> None:
    def redirecting(request: httpx.Request) -> httpx.Response:
        if request.url.host == "tempfile.aiquickdraw.com":
            return httpx.Response(302, headers={"Location": "https://file.redpandaai.co/r.mp4"})
        return _bytes(request)

    client, fetched = _client(redirecting)
    client.download("https://tempfile.aiquickdraw.com/kling/result-1.mp4", tmp_path / "a.mp4")
    assert fetched[-1] == "https://file.redpandaai.co/r.mp4"


def test_configuration_names_the_hosts_and_a_configured_stand_in_on_loopback_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDGEN_DOWNLOAD_HOSTS", "cdn.example.org")
    monkeypatch.setenv("KIE_BASE_URL", "http://127.0.0.1:8899")
    policy = DownloadPolicy.from_settings(ProviderSettings.from_env())
    assert policy.allows("https://eu.cdn.example.org/r.mp4")
    assert not policy.allows("https://tempfile.aiquickdraw.com/r.mp4")  # the list replaces the default
    assert policy.allows("http://127.0.0.1:8899/kling-results/t.mp4")  # the configured API address itself
    assert not policy.allows("http://127.0.0.1:8900/elsewhere")
