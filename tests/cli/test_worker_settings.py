"""The settings a process that runs videos needs, kept in one place and in step with the image."""

from __future__ import annotations

import re
from pathlib import Path

from blocks.automations import HEARTBEAT_FREQUENCY_S, ZOMBIE_AFTER_S
from vidgen.cli.production_cmds import worker_settings

DOCKERFILE = Path(__file__).resolve().parents[2] / "deployments" / "Dockerfile"


def test_heartbeats_are_frequent_enough_for_the_zombie_window():
    settings = worker_settings()
    assert int(settings["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"]) == HEARTBEAT_FREQUENCY_S
    assert ZOMBIE_AFTER_S >= 3 * HEARTBEAT_FREQUENCY_S


def test_api_retries_outlast_a_server_restart():
    """Prefect's client backs off 2**n s per try: 7 retries wait about 4 minutes in all."""
    retries = int(worker_settings()["PREFECT_CLIENT_MAX_RETRIES"])
    assert sum(2**n for n in range(1, retries + 1)) >= 180


def test_the_image_sets_the_same_heartbeat_and_retries():
    env = dict(re.findall(r"(PREFECT_[A-Z_]+)=(\S+)", DOCKERFILE.read_text(encoding="utf-8")))
    for key in ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_CLIENT_MAX_RETRIES"):
        assert env[key] == worker_settings()[key], key
