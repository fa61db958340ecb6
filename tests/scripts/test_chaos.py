"""Smoke test for scripts/chaos.py: its cheapest fault (a busy card put back to Queued by hand), one
video of one scene, on the embedded default. The row must say the video finished, with no second
run and nothing paid twice, and nothing the suite started may still be running. The time budget
includes the stack's start, which took 72 s on a machine just booted (cold file cache)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from test_bench_webhooks import _processes_naming

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "chaos.py"


@pytest.mark.integration
@pytest.mark.timeout(330)
def test_a_busy_card_requeued_gets_no_second_run_and_its_video_finishes() -> None:
    result = subprocess.run(
        [
            sys.executable, str(SCRIPT), "--faults", "requeue-busy", "--videos", "1", "--scenes", "1",
            "--poll-interval", "2", "--alerts-grace-s", "2", "--clip-hold-s", "15", "--timeout", "260",
        ],
        cwd=REPO, capture_output=True, text=True, timeout=320,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "load average at the start:" in output
    # fault | videos | lost | regenerated paid assets | recovered without a person | time to recover | alerts sent
    row = re.search(r"^\| requeue-busy +\| 1 +\| 0 +\| 0 \(audit trail 0\) +\| 1/1 +\| (\d+) s +\| (\d+) +\|$", output, re.M)
    assert row, output[-4000:]
    assert int(row.group(2)) == 0, "a re-queued card is no failure: nothing to alert"
    assert re.search(r"card back at (?!Queued)[A-Z][\w ]+ \d+ s after the re-queue, saying 'already in production", output), output[-4000:]
    assert re.search(r": card Upload Complete; 1 run\(s\)", output), output[-4000:]
    home = re.search(r"VIDGEN_HOME (\S+)", output)
    assert home, output[-2000:]
    assert _processes_naming(home.group(1)) == []
