"""Smoke test for scripts/bench_webhooks.py --end-to-end: one entry each way, on the embedded default.

It checks that every figure of the table is measured (n as asked) and that the benchmark leaves no
process behind: nothing running may still name its temporary VIDGEN_HOME (PostgreSQL's data
directory, Prefect's server, the local Notion server, the worker and its runs all do)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "bench_webhooks.py"


def _processes_naming(directory: str) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            environ = proc.environ()
        except psutil.Error:
            continue
        if directory in cmdline or any(directory in value for value in environ.values()):
            found.append(f"{proc.info['pid']}: {cmdline[:200]}")
    return found


def _row(output: str, what: str) -> re.Match[str]:
    match = re.search(rf"^{re.escape(what)}\s+(\d+)\s+(-?[\d.]+)s\s+(-?[\d.]+)s", output, re.MULTILINE)
    assert match, f"no row {what!r} in:\n{output[-3000:]}"
    return match


@pytest.mark.integration
@pytest.mark.skipif(
    os.environ.get("VIDGEN_BENCH_SMOKE") != "1",
    reason="about 4 minutes (two workers, a run each way): VIDGEN_BENCH_SMOKE=1 runs it",
)
def test_tiny_end_to_end_run_measures_both_ways_and_stops_everything() -> None:
    result = subprocess.run(
        [
            sys.executable, str(SCRIPT), "--end-to-end", "--entries", "1", "--decisions", "1",
            "--poll-interval", "10", "--spacing", "0.5", "--timeout", "240",
        ],
        cwd=REPO, capture_output=True, text=True, timeout=330,
    )  # fmt: skip
    output = result.stdout + result.stderr
    # 0: goals met, 1: a goal missed on this (shared, loaded) machine; 2 would be: could not finish.
    assert result.returncode in (0, 1), output[-4000:]
    assert "load average at the start:" in output
    for way in ("via webhook", "poll alone, every 10 s"):
        for what in (f"entry -> run Running, {way}", f"decision -> run leaves Paused, {way}",
                     f"decision -> run Running again, {way}"):
            n, p50, _p95 = _row(output, what).groups()
            assert n == "1" and float(p50) > 0, what
    for what in ("  entry -> run created", "  run created -> Running", "  poll-notion run: Running -> Completed"):
        assert int(_row(output, what).group(1)) >= 1
    assert re.search(r"^stopped: worker, prefect-server \(pid \d+\), notion-server \(pid \d+\), PostgreSQL$", output, re.M), output[-2000:]
    home = re.search(r"VIDGEN_HOME (\S+)", output)
    assert home, output[-2000:]
    assert _processes_naming(home.group(1)) == []
