"""A video's claim on a real Prefect server: a second process of the same run steps aside, a process
that lost its lease takes it back only when nobody else has, and a run that ended or suspended lets
the waiting process know. (The two-worker end-to-end cases are in scripts/chaos.py: `--workers 2`.)"""

from __future__ import annotations

import contextvars
import threading
import time
from uuid import UUID, uuid4

import pytest
from prefect.exceptions import Abort, ObjectNotFound, Pause

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def settings(**overrides):
    from vidgen.config import ClaimSettings

    return ClaimSettings(**{"ttl_s": 60, "renew_every_s": 0.3, "wait_step_s": 0.2, "wait_s": 3, **overrides})


def claim(page_id: str, run_id: UUID, state_id: UUID | None = None, **overrides):
    from tasks.claim import VideoClaim

    return VideoClaim(page_id, run_id, state_id, settings(**overrides))


def limit_slots(page_id: str) -> int | None:
    from prefect.client.orchestration import get_client

    from tasks.claim import claim_name

    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(claim_name(page_id))
    return limit.active_slots


def running_run(page_id: str):
    """A flow run of `produce-video` for the page, in a Running state this test set."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    @flow(name="claim-test")
    def video() -> None: ...

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(video, tags=[f"page:{page_id}"])
        client.set_flow_run_state(run.id, Running(), force=True)
        return client.read_flow_run(run.id)


def test_a_second_process_of_the_run_steps_aside_and_leaves_the_first_its_claim(prefect_api):
    page, run = str(uuid4()), uuid4()
    with claim(page, run) as first:
        started = time.monotonic()
        with pytest.raises(Abort, match="Another process is making this video"), claim(page, run):
            pytest.fail("the second process went on")
        assert time.monotonic() - started >= 3  # it waited its time before stepping aside
        assert first.held and limit_slots(page) == 1
        first.confirm()  # the first goes on


def test_a_process_waiting_on_a_run_that_ended_steps_aside_at_once(prefect_api):
    from prefect.client.orchestration import get_client

    from tasks.claim import claim_name

    page, run = str(uuid4()), uuid4()
    outcome: list[BaseException] = []

    def second() -> None:
        try:
            with claim(page, run, wait_s=60):
                outcome.append(AssertionError("went on"))
        except BaseException as exc:  # noqa: BLE001 - the Abort is what we look for
            outcome.append(exc)

    with claim(page, run):
        waiting = threading.Thread(target=contextvars.copy_context().run, args=(second,))  # this test's server
        waiting.start()
        time.sleep(1.0)
        assert not outcome  # still waiting while the first works
    waiting.join(timeout=30)
    assert isinstance(outcome[0], Abort) and "ended its run" in str(outcome[0])
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):  # a run that ended leaves no limit
        client.read_global_concurrency_limit_by_name(claim_name(page))


def test_a_run_that_suspends_lets_go_and_the_resumed_process_takes_the_claim(prefect_api):
    page = str(uuid4())
    run = running_run(page)
    with pytest.raises(Pause):
        with claim(page, run.id, run.state.id):
            raise Pause()
    assert limit_slots(page) == 0  # let go, not deleted: the gate's resume takes it again
    with claim(page, run.id, run.state.id) as resumed:
        assert resumed.held and limit_slots(page) == 1


def test_a_process_that_waited_while_the_run_moved_on_steps_aside(prefect_api):
    page = str(uuid4())
    run = running_run(page)
    stale_state = uuid4()  # the Running state an earlier process set, since replaced
    with pytest.raises(Abort, match="moved on"), claim(page, run.id, stale_state):
        pytest.fail("went on with a run that moved on")
    assert limit_slots(page) == 0


def test_a_lapsed_lease_is_taken_back_when_nobody_else_has_it(prefect_api):
    from prefect.client.orchestration import get_client

    page, run = str(uuid4()), uuid4()
    with claim(page, run) as live:
        with get_client(sync_client=True) as client:  # what the repossessor does after a long outage
            client.release_concurrency_slots_with_lease(live.lease_id)
        deadline = time.monotonic() + 20
        while live.held and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not live.held  # the renewal found the lease gone
        live.confirm()
        assert live.held and limit_slots(page) == 1


def test_a_lapsed_lease_another_process_took_makes_this_one_step_aside(prefect_api):
    from prefect.client.orchestration import get_client

    page, run = str(uuid4()), uuid4()
    with claim(page, run) as live:
        with get_client(sync_client=True) as client:
            client.release_concurrency_slots_with_lease(live.lease_id)
        with claim(page, run) as newer:
            deadline = time.monotonic() + 20
            while live.held and time.monotonic() < deadline:
                time.sleep(0.1)
            with pytest.raises(Abort, match="took this video over"):
                live.confirm()
            assert newer.held


def test_a_holder_that_went_silent_is_taken_over_and_steps_aside_if_it_was_alive(prefect_api):
    """A killed worker's process renews nothing: the restart takes the video over once it has watched
    the holder stay silent, not after the lease's TTL. Were the silent holder alive after all, it
    finds the claim taken at its next step and stops."""
    page, run = str(uuid4()), uuid4()
    with claim(page, run, renew_every_s=3600) as silent:  # renews nothing, as if killed
        started = time.monotonic()
        with claim(page, run, silent_after_s=2, wait_s=60) as restart:
            took_s = time.monotonic() - started
            assert restart.held and 2 <= took_s < 30
            with pytest.raises(Abort, match="took this video over"):
                silent.confirm()
            restart.confirm()  # the new holder goes on
        assert not silent.held


def test_a_holder_that_renews_is_not_taken_over(prefect_api):
    page, run = str(uuid4()), uuid4()
    with claim(page, run), pytest.raises(Abort, match="Another process is making this video"):
        with claim(page, run, silent_after_s=1, wait_s=4):
            pytest.fail("took a live holder's video over")


def test_a_run_of_the_page_that_is_not_this_one_cancels_it(prefect_api):
    from tasks.claim import VideoTakenElsewhere

    page = str(uuid4())
    other = running_run(page)
    with claim(page, other.id, other.state.id):
        with pytest.raises(VideoTakenElsewhere), claim(page, uuid4()):
            pytest.fail("two runs of one page went on")
