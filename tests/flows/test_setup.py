"""`vidgen setup` creates the limits and blocks, and running it twice changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def _limits(api_url: str) -> dict[str, tuple[int, float]]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        return {l.name: (l.limit, l.slot_decay_per_second) for l in client.read_global_concurrency_limits(limit=100)}


def test_setup_twice_leaves_the_same_limits(prefect_server, tmp_path):
    env = {
        **os.environ, **prefect_server.env, "VIDGEN_HOME": str(tmp_path / "home"), "GEMINI_API_KEY": "test-key-not-real",
        "VIDGEN_LEDGER_URL": prefect_server.ledger_url,
    }
    first = subprocess.run([str(BIN / "vidgen"), "setup"], env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    after_first = _limits(prefect_server.api_url)
    second = subprocess.run([str(BIN / "vidgen"), "setup"], env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    assert _limits(prefect_server.api_url) == after_first
    expected = {"tag:gemini": 12, "tag:kling": 8, "tag:elevenlabs": 6, "tag:notion": 3, "tag:youtube": 2}
    assert {k: v[0] for k, v in after_first.items() if k in expected} == expected
    assert after_first["notion-api"] == (1, 3.0)  # one slot decaying at 3/s: at most 3 requests in any second
    assert "secret block vidgen-gemini-api-key <- $GEMINI_API_KEY" in first.stdout
    assert "test-key-not-real" not in first.stdout + second.stdout  # secrets are never printed

    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        assert Secret.load("vidgen-gemini-api-key").get() == "test-key-not-real"
