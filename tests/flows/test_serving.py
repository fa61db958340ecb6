"""`vidgen serve`'s shutdown: its in-flight runs are rescheduled for the next worker, never cancelled,
and the runner stops at once. The runner's Prefect-side parts are stood in for; no server runs."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from uuid import UUID, uuid4

import pytest
from prefect.runner import Runner
from prefect.runner._control_channel import ControlChannel, ControlSignalStatus
from prefect.runner._process_manager import ProcessManager
from prefect.states import Completed, Running

import flows.serving as serving

ACK, DONE, NO_ACK = ControlSignalStatus.ACKNOWLEDGED, ControlSignalStatus.ALREADY_CONCLUDED, ControlSignalStatus.NOT_ACKNOWLEDGED


class Process:
    def __init__(self, exits_on_sigterm: bool = True):
        self.alive, self.exits_on_sigterm, self.killed = True, exits_on_sigterm, False

    def is_alive(self) -> bool:
        return self.alive

    def graceful_kill(self) -> None:
        self.alive = not self.exits_on_sigterm

    def hard_kill(self) -> None:
        self.alive, self.killed = False, True


class Scope:
    def __init__(self, log: list, name: str, processes: list[Process]):
        self.log, self.name, self.processes = log, name, processes

    def cancel(self) -> None:
        self.log.append(("cancel", self.name, [p.alive for p in self.processes]))


def runner_with(runs: dict[UUID, tuple[ControlSignalStatus, object, Process]], monkeypatch) -> tuple[serving.LeavingRunner, list]:
    log: list = []
    runner = serving.LeavingRunner(limit=2)

    async def signal(run_id, intent):
        log.append(("signal", run_id, intent))
        return runs[run_id][0]

    async def read_flow_run(run_id):
        return SimpleNamespace(state=runs[run_id][1])

    async def propose_state(client, state, flow_run_id):
        log.append(("propose", flow_run_id, state.name, state.message))
        return state

    monkeypatch.setattr(serving, "propose_state", propose_state)
    runner._control_channel = SimpleNamespace(signal=signal)
    runner._client = SimpleNamespace(read_flow_run=read_flow_run)
    runner._process_manager = SimpleNamespace(flow_run_ids=lambda: set(runs), get=lambda run_id: runs[run_id][2])
    processes = [p for _s, _st, p in runs.values()]
    runner._loops_task_group = SimpleNamespace(cancel_scope=Scope(log, "loops", processes))
    return runner, log


def test_in_flight_runs_are_rescheduled_before_their_processes_stop(monkeypatch):
    a, b = sorted([uuid4(), uuid4()])
    runs = {a: (ACK, Running(), Process()), b: (NO_ACK, Running(), Process())}
    runner, log = runner_with(runs, monkeypatch)
    assert asyncio.run(runner.leave_runs_and_stop()) == [a, b]
    assert log == [
        ("signal", a, "reschedule"), ("signal", b, "reschedule"),
        ("propose", a, "AwaitingRetry", serving.LEFT_MESSAGE), ("propose", b, "AwaitingRetry", serving.LEFT_MESSAGE),
        ("cancel", "loops", [False, False]),  # the processes were stopped first
    ]
    assert runner.stopping and not any(p.alive for _s, _st, p in runs.values())


def test_a_run_that_already_ended_is_not_rescheduled(monkeypatch):
    concluded, completed, running = sorted([uuid4(), uuid4(), uuid4()])
    runs = {concluded: (DONE, Running(), Process()), completed: (ACK, Completed(), Process()), running: (ACK, Running(), Process())}
    runner, log = runner_with(runs, monkeypatch)
    assert asyncio.run(runner.leave_runs_and_stop()) == [running]
    assert [entry[1] for entry in log if entry[0] == "propose"] == [running]


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace(monkeypatch):
    run = uuid4()
    stuck = Process(exits_on_sigterm=False)  # a thread blocked in a provider call holds its exit
    runner, _log = runner_with({run: (ACK, Running(), stuck)}, monkeypatch)
    monkeypatch.setattr(serving, "STOP_GRACE_S", 0.3)
    asyncio.run(runner.leave_runs_and_stop())
    assert stuck.killed and not stuck.alive


def test_a_signal_schedules_the_shutdown_once(monkeypatch):
    runner = serving.LeavingRunner()
    with pytest.raises(SystemExit):  # not started yet: nothing is in flight
        runner.handle_sigterm()
    started: list[str] = []

    async def scenario() -> None:
        async def leave() -> list[UUID]:
            started.append("leave")
            return []

        runner._loop = asyncio.get_running_loop()
        monkeypatch.setattr(runner, "leave_runs_and_stop", leave)
        runner.handle_sigterm()
        await asyncio.sleep(0.05)
        runner.handle_sigterm()
        await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert started == ["leave"]


def test_the_runner_parts_the_shutdown_drives_are_still_there():
    """LeavingRunner uses Runner internals (as Prefect's own `flow-run execute` does with the same
    objects): an upgrade that renames them must fail here, not hang a deploy."""
    runner = Runner()
    assert isinstance(runner._process_manager, ProcessManager) and isinstance(runner._control_channel, ControlChannel)
    assert callable(ProcessManager.flow_run_ids) and callable(ProcessManager.get) and callable(ControlChannel.signal)
    assert {"ACKNOWLEDGED", "ALREADY_CONCLUDED", "NOT_ACKNOWLEDGED"} <= set(ControlSignalStatus.__members__)
    assert Runner.handle_sigterm is not serving.LeavingRunner.handle_sigterm
    import inspect

    enter = inspect.getsource(Runner.__aenter__) + inspect.getsource(Runner.start)
    assert "self._loops_task_group" in enter
    assert "signal.signal(signal.SIGTERM, self.handle_sigterm)" in inspect.getsource(Runner.start)


def test_runs_start_warm_through_prefects_own_starter_seam():
    """`serve_leaving_runs` replaces the one function Prefect's direct starter calls per run with a
    fork of the warm server; an upgrade that moves that call or changes its arguments fails here."""
    import inspect

    import prefect.flow_engine
    import prefect.runner._starter_direct as starter_direct
    from prefect.runner._starter_direct import DirectSubprocessStarter

    ours = inspect.signature(serving.run_flow_in_warm_process).parameters
    prefects = inspect.signature(prefect.flow_engine.run_flow_in_subprocess).parameters
    assert list(ours) == list(prefects)
    assert "run_flow_in_subprocess(" in inspect.getsource(DirectSubprocessStarter.start)
    assert hasattr(starter_direct, "run_flow_in_subprocess")
    assert "register_flow" in inspect.getsource(Runner.aadd_flow)  # add_flow runs take the direct starter
    assert 'get_context("spawn")' in inspect.getsource(prefect.flow_engine.run_flow_in_subprocess), (
        "Prefect's starter changed its multiprocessing context: check whether the warm start is still needed"
    )


def _child_reports(path: str) -> None:
    import sys

    with open(path, "w", encoding="utf-8") as out:
        out.write(",".join(sorted(m for m in serving.WARM_MODULES if m in sys.modules)))


def test_a_warm_process_starts_with_the_flows_already_imported(tmp_path):
    """A forked run finds Prefect and our flows imported: what makes it Running within a fraction of a second."""
    report = tmp_path / "modules"
    process = serving.warm_context().Process(target=_child_reports, args=(str(report),))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert report.read_text(encoding="utf-8").split(",") == sorted(serving.WARM_MODULES)


def test_a_served_flow_goes_to_its_run_by_reference_and_a_local_one_by_value():
    from prefect import flow

    import flows.produce_video

    assert serving.flow_reference(flows.produce_video.produce_video) == ("flows.produce_video", "produce_video")

    @flow(name="made-here")
    def made_here() -> None: ...

    assert serving.flow_reference(made_here) is made_here  # no module attribute to find it by


def test_a_new_client_waits_out_a_refused_connection_once_the_worker_says_so(monkeypatch):
    """Prefect's client retries a refused connection only once it has connected; `vidgen serve` and
    its runs make every client retry it (`retry_refused_connections`), so a call through a new client
    (a task's tag slot, taken or released) rides out a server restart instead of failing the video."""
    import httpx
    import prefect.client.base as base
    from prefect.client.base import PrefectHttpxAsyncClient, PrefectHttpxSyncClient
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    from vidgen.stack import free_port

    for client_class in (PrefectHttpxAsyncClient, PrefectHttpxSyncClient):  # restored after the test
        monkeypatch.setattr(client_class, "__init__", client_class.__init__)
        monkeypatch.setattr(client_class, "_vidgen_retries_refused", False, raising=False)
    waits: list[float] = []
    monkeypatch.setattr(base.time, "sleep", waits.append)
    closed = f"http://127.0.0.1:{free_port()}/api"

    def refused() -> None:
        with PrefectHttpxSyncClient(base_url=closed) as client, pytest.raises(httpx.ConnectError):
            client.get("/health")

    with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 2}):
        refused()
        assert waits == []  # Prefect's own: a client that never connected fails at once
        serving.retry_refused_connections()
        serving.retry_refused_connections()  # idempotent: one wrapper, not two
        refused()
        assert len(waits) == 2
    assert PrefectHttpxAsyncClient(base_url=closed)._has_connected
