"""Smoke test for scripts/bench_orchestration.py: a tiny run on a real Prefect server (the embedded default)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "bench_orchestration.py"


@pytest.mark.integration
def test_tiny_run_never_exceeds_a_tag_limit() -> None:
    result = subprocess.run(
        [
            sys.executable, str(SCRIPT), "--videos", "1", "--channels", "2",
            "--scenes", "2", "--scale", "0.005", "--limit", "4", "--timeout", "240",
        ],
        cwd=REPO, capture_output=True, text=True, timeout=420,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "never exceeded: PASS" in output, output[-4000:]
    # Every planned step ran and was recorded: 1 video x 2 channels, 12 Notion calls + 1 script +
    # 5 steps x 2 scenes + 1 assembly each.
    assert "flow runs: 2 final (2 Completed); steps recorded: 48/48" in output, output[-4000:]
    for tag in ("gemini", "kling", "elevenlabs", "notion"):
        assert f"| {tag} " in output
    for channel in ("channel-1", "channel-2"):
        assert f"| {channel} " in output
