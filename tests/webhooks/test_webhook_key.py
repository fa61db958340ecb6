"""The issue's attack on the webhook key, replayed against the real receiver over HTTP.

An attacker who reaches the receiver first sends an unsigned verification request with a token
of their choosing, then events signed with it. The token must never be used to check a
signature; Notion's real verification followed by `vidgen webhooks accept` must work; replies
and logs carry no token and no file path.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner
from webhook_helpers import DATA_SOURCE, Recorder, event, signed

import vidgen.webhooks.receiver as receiver_module
from vidgen.cli import app
from vidgen.config import Paths
from vidgen.webhooks import ReceiverConfig, WebhookServer, start_webhook_server
from vidgen.webhooks.store import CANDIDATE_BURST, CandidateTokens, NotACandidate, VerificationTokenStore, accept_token

ATTACKER = "attacker"
NOTION = "secret_" + "n" * 40
runner = CliRunner()


@pytest.fixture
def served(vidgen_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[WebhookServer, Recorder, list[str], list[str]]]:
    """The receiver as `vidgen serve --webhook-port` runs it (its state under VIDGEN_HOME), recording
    every key a signature is checked with."""
    checked_with: list[str] = []
    real_verify = receiver_module.verify_signature

    def spying(raw: bytes, header: str | None, token: str) -> bool:
        checked_with.append(token)
        return real_verify(raw, header, token)

    monkeypatch.setattr(receiver_module, "verify_signature", spying)
    dispatch = Recorder()
    announced: list[str] = []
    config = ReceiverConfig.from_paths(Paths.from_env(), data_source_id=DATA_SOURCE)
    server = start_webhook_server(0, dispatch, config, announce=announced.append)
    try:
        yield server, dispatch, announced, checked_with
    finally:
        server.stop()


def _post(url: str, body: dict | bytes, token: str | None = None) -> httpx.Response:
    if token is None:
        return httpx.post(url, json=body)
    raw, headers = signed(body, token)
    return httpx.post(url, content=raw, headers=headers)


def test_the_attackers_token_never_checks_a_signature_and_accept_makes_notions_the_key(
    served: tuple[WebhookServer, Recorder, list[str], list[str]], vidgen_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, dispatch, announced, checked_with = served
    caplog.set_level(logging.DEBUG)
    page = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"

    first = _post(server.url, {"verification_token": ATTACKER})  # the attacker is first
    real = _post(server.url, {"verification_token": NOTION})  # Notion's own verification: not refused
    assert (first.status_code, real.status_code) == (200, 200)
    forged = _post(server.url, event(page, "page.created"), ATTACKER)
    assert forged.status_code == 401 and dispatch.calls == []

    accepted = runner.invoke(app, ["webhooks", "accept", NOTION])  # what the person pasted into Notion
    assert accepted.exit_code == 0, accepted.output
    assert NOTION not in accepted.output and "secret_…nnnn" in accepted.output

    assert _post(server.url, event(page, "page.created"), ATTACKER).status_code == 401
    assert _post(server.url, {"verification_token": ATTACKER}).json()["outcome"] in {"pending", "too many verification requests"}
    assert _post(server.url, event(page, "page.created"), NOTION).json()["outcome"] == "dispatched"
    assert dispatch.calls == [(page, "page.created")]

    assert ATTACKER not in checked_with and set(checked_with) == {NOTION}
    assert announced[:2] == [ATTACKER, NOTION]  # each shown once, to the terminal (a new try after accept: again)
    replies = " ".join(r.text for r in (first, real, forged))
    logged = caplog.text
    for secret_or_path in (NOTION, str(vidgen_env)):
        assert secret_or_path not in replies and secret_or_path not in logged


def test_accept_refuses_a_token_no_verification_request_brought(vidgen_env: Path) -> None:
    refused = runner.invoke(app, ["webhooks", "accept", "secret_typed_wrong"])
    assert refused.exit_code == 1 and "no verification request brought this token" in " ".join(refused.output.split())
    assert not ReceiverConfig.from_paths(Paths.from_env()).token_file.exists()


def test_pending_lists_candidates_masked_unless_revealed(
    served: tuple[WebhookServer, Recorder, list[str], list[str]]
) -> None:
    server = served[0]
    _post(server.url, {"verification_token": NOTION})
    masked = runner.invoke(app, ["webhooks", "pending"])
    assert masked.exit_code == 0 and NOTION not in masked.output and "secret_…nnnn" in masked.output
    assert NOTION in runner.invoke(app, ["webhooks", "pending", "--reveal"]).output


def test_verification_requests_are_rate_limited(served: tuple[WebhookServer, Recorder, list[str], list[str]]) -> None:
    server, _, announced, _ = served
    answers = [_post(server.url, {"verification_token": f"flood-{i}"}).status_code for i in range(int(CANDIDATE_BURST) + 3)]
    assert answers.count(429) >= 3 and len(announced) <= CANDIDATE_BURST + 1


def test_candidates_expire(tmp_path: Path) -> None:
    now = [1000.0]
    candidates = CandidateTokens(tmp_path / "candidates.json", ttl_s=60, clock=lambda: now[0])
    candidates.offer(NOTION)
    now[0] += 61
    assert candidates.pending() == []
    with pytest.raises(NotACandidate):
        accept_token(VerificationTokenStore(tmp_path / "key"), candidates, NOTION)


def test_serve_has_no_flag_that_lets_a_caller_swap_the_key() -> None:
    result = runner.invoke(app, ["serve", "--replace-webhook-token"])
    assert result.exit_code == 2
    assert "replace" not in json.dumps(runner.invoke(app, ["serve", "--help"]).output)


def test_an_oversized_verification_token_is_refused_not_held(
    served: tuple[WebhookServer, Recorder, list[str], list[str]]
) -> None:
    server, _, announced, _ = served
    assert _post(server.url, {"verification_token": "x" * 100_000}).status_code == 400
    assert _post(server.url, {"verification_token": ""}).status_code == 400
    assert announced == []
