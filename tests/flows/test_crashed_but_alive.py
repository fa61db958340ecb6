"""The reconcile's liveness check on a real Prefect server: a heartbeat sent after a run was marked
Crashed is found through Prefect's event API (the unit tests in test_board_truth.py fake that API)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun, State, StateType

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PERSIST_WAIT_S = 30  # Prefect's event persister writes in batches


def crashed_run(marked_s_ago: float) -> FlowRun:
    marked = datetime.now(timezone.utc) - timedelta(seconds=marked_s_ago)
    return FlowRun(id=uuid4(), name="history: otters", flow_id=uuid4(), end_time=marked,
                   state=State(type=StateType.CRASHED, name="Crashed", timestamp=marked))


def heartbeat(run: FlowRun, s_ago: float) -> None:
    from prefect.events import emit_event

    emit_event("prefect.flow-run.heartbeat", resource={"prefect.resource.id": f"prefect.flow-run.{run.id}"},
               occurred=datetime.now(timezone.utc) - timedelta(seconds=s_ago))


def test_a_heartbeat_since_the_crash_is_read_from_the_server(prefect_api):
    from prefect._internal.concurrency.services import _QueueServiceBase
    from prefect.client.orchestration import get_client

    import flows.poll_notion as poll

    alive, dead = crashed_run(120), crashed_run(120)
    heartbeat(alive, s_ago=5)
    heartbeat(dead, s_ago=150)  # before it was marked
    _QueueServiceBase.drain_all(timeout=30, at_exit=False)
    deadline = time.monotonic() + PERSIST_WAIT_S
    with get_client(sync_client=True) as client:
        while not poll.crashed_but_alive(client, alive, datetime.now(timezone.utc)):
            assert time.monotonic() < deadline, f"no heartbeat of run {alive.id} read within {PERSIST_WAIT_S} s"
            time.sleep(1)
        assert not poll.crashed_but_alive(client, dead, datetime.now(timezone.utc))
