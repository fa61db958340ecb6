"""The poller's schedule really produces runs: Prefect's server scheduler, not a loop of ours."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.integration


def test_the_server_schedules_the_served_poller(stack):
    # Guards the dependency pins too: with SQLAlchemy 2.1, Prefect 3.8.8's scheduler fails to insert
    # scheduled runs ("Can't evaluate bulk DML statement") and the served poller never runs.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    stack.start_worker()
    deadline = time.monotonic() + 60
    scheduled = []
    while time.monotonic() < deadline and not scheduled:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["poll-notion"])))
        scheduled = [run for run in runs if run.auto_scheduled]
        time.sleep(1)
    log = (stack.prefect.home / "prefect-server.log").read_text(errors="replace")
    assert scheduled, f"the server scheduled no poll-notion run within 60 s\n{log[-3000:]}"
    assert "bulk DML" not in log, log[-3000:]


    # `vidgen serve` serves prefect.yaml's deployments as declared: one poll at a time, late polls dropped
    with get_client(sync_client=True) as client:
        poll = client.read_deployment_by_name("poll-notion/poll-notion")
    assert poll.global_concurrency_limit is not None and poll.global_concurrency_limit.limit == 1
    assert poll.concurrency_options is not None and poll.concurrency_options.collision_strategy == "CANCEL_NEW"
    # a poll killed before it ran (no heartbeat for the zombie detector) gives the slot back after a minute
    assert poll.concurrency_options.grace_period_seconds == 60
    assert "notion" in poll.tags and poll.description.startswith("Every minute")
